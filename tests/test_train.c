/* Training: a 10-step AdamW run on tiny-qwen2 against an independent PyTorch
 * trajectory (tests/data/tiny-qwen2/adamw10.safetensors, made by
 * tools/make_fixtures.py), the learning-rate schedule, gradient accumulation,
 * bit-identical resume from a checkpoint, and the Hugging Face save/load round
 * trip. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/checkpoint.h"
#include "nn/model_hf.h"
#include "io/safetensors.h"
#include "test.h"
#include "test_models.h"
#include "nn/train.h"

static egrc_backend *be;


/* HF's causal-LM targets: position t predicts t+1; the last is ignored. */
static void shift_targets(const int32_t *tokens, int32_t *targets, int rows, int T) {
    for (int r = 0; r < rows; r++)
        for (int t = 0; t < T; t++) targets[r * T + t] = t + 1 < T ? tokens[r * T + t + 1] : -1;
}

static float max_abs(const float *x, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

static void test_matches_pytorch_adamw(void) {
    egrc_error err;
    egrc_safetensors *ref = egrc_safetensors_open(EGRC_TEST_DATA "/tiny-qwen2/adamw10.safetensors", &err);
    CHECK_MSG(ref != NULL, "%s", err.msg);
    egrc_model *m = test_load_fixture(be, "tiny-qwen2");
    if (!ref || !m) return;
    enum { STEPS = 10, B = 4, T = 16 };
    int64_t batches64[STEPS * B * T];
    float want_loss[STEPS], want_lr[STEPS], want_norm[STEPS];
    CHECK(egrc_st_tensor_to_i64(egrc_safetensors_find(ref, "batches"), batches64, STEPS * B * T, &err) == 0);
    CHECK(egrc_st_tensor_to_f32(egrc_safetensors_find(ref, "losses"), want_loss, STEPS, &err) == 0);
    CHECK(egrc_st_tensor_to_f32(egrc_safetensors_find(ref, "lrs"), want_lr, STEPS, &err) == 0);
    CHECK(egrc_st_tensor_to_f32(egrc_safetensors_find(ref, "grad_norms"), want_norm, STEPS, &err) == 0);

    egrc_optim_config cfg = {1e-2f, 1e-3f, 3, STEPS, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    int32_t tokens[B * T], targets[B * T];
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < B * T; i++) tokens[i] = (int32_t)batches64[s * B * T + i];
        shift_targets(tokens, targets, B, T);
        float loss, norm;
        CHECK_CLOSE(egrc_lr_at(&cfg, s), want_lr[s], 1e-6);
        CHECK(egrc_train_step(m, &cfg, s, tokens, targets, 1, B, T, 1.0f, &loss, &norm, &err) == 0);
        CHECK_CLOSE(loss, want_loss[s], 1e-4);
        CHECK_CLOSE(norm, want_norm[s], 1e-4);
    }
    /* Final weights, tensor by tensor in HF layout. */
    int count;
    egrc_hf_tensor *tensors = egrc_hf_tensors(m, &count);
    float *params = malloc(m->n_params * sizeof(float)), *mine = malloc(m->n_params * sizeof(float));
    float *want = malloc(m->n_params * sizeof(float));
    m->be->ops->download(m->be, params, m->params, m->n_params * sizeof(float));
    for (int i = 0; i < count; i++) {
        char key[128];
        size_t n = (size_t)tensors[i].rows * tensors[i].cols;
        snprintf(key, sizeof key, "final.%s", tensors[i].name);
        const egrc_st_tensor *t = egrc_safetensors_find(ref, key);
        CHECK_MSG(t != NULL, "fixture lacks %s", key);
        if (!t || egrc_st_tensor_to_f32(t, want, (int64_t)n, &err)) continue;
        egrc_hf_export(&tensors[i], params, mine);
        float worst = 0.0f;
        for (size_t j = 0; j < n; j++) worst = fmaxf(worst, fabsf(mine[j] - want[j]));
        CHECK_MSG(worst <= 1e-4f * fmaxf(1.0f, max_abs(want, n)), "%s: max abs error %g", key, worst);
    }
    free(want), free(mine), free(params), free(tensors);
    egrc_model_free(m);
    egrc_safetensors_close(ref);
}

static void test_schedule(void) {
    egrc_optim_config cfg = {1.0f, 0.1f, 4, 12, 0.9f, 0.95f, 1e-8f, 0.0f, 0.0f};
    CHECK_CLOSE(egrc_lr_at(&cfg, 0), 0.25, 1e-7);
    CHECK_CLOSE(egrc_lr_at(&cfg, 3), 1.0, 1e-7);
    CHECK_CLOSE(egrc_lr_at(&cfg, 4), 1.0, 1e-7);
    CHECK_CLOSE(egrc_lr_at(&cfg, 8), 0.55, 1e-6); /* halfway down the cosine */
    CHECK_CLOSE(egrc_lr_at(&cfg, 12), 0.1, 1e-6);
    CHECK_CLOSE(egrc_lr_at(&cfg, 50), 0.1, 1e-6); /* stays at the floor */
}

/* Two micro-batches of 2 rows accumulate to the gradient of one batch of 4
 * (equal valid-token counts, so the means agree). */
static void test_gradient_accumulation(void) {
    egrc_error err;
    egrc_model *m = test_load_fixture(be, "tiny-llama");
    if (!m) return;
    enum { B = 4, T = 8 };
    int32_t tokens[B * T], targets[B * T];
    egrc_rng rng;
    egrc_rng_seed(&rng, 5);
    for (int i = 0; i < B * T; i++) tokens[i] = (int32_t)egrc_rng_below(&rng, 512);
    shift_targets(tokens, targets, B, T);
    float *whole = malloc(m->n_params * sizeof(float)), *accumulated = malloc(m->n_params * sizeof(float));
    float loss;
    egrc_model_zero_grad(m);
    CHECK(egrc_model_forward(m, tokens, targets, B, T, &loss, &err) == 0 && egrc_model_backward(m, 1.0f, &err) == 0);
    m->be->ops->download(m->be, whole, m->grads, m->n_params * sizeof(float));
    egrc_model_zero_grad(m);
    for (int k = 0; k < 2; k++) {
        CHECK(egrc_model_forward(m, tokens + k * 2 * T, targets + k * 2 * T, 2, T, &loss, &err) == 0);
        CHECK(egrc_model_backward(m, 0.5f, &err) == 0);
    }
    m->be->ops->download(m->be, accumulated, m->grads, m->n_params * sizeof(float));
    float worst = 0.0f;
    for (size_t i = 0; i < m->n_params; i++) worst = fmaxf(worst, fabsf(whole[i] - accumulated[i]));
    CHECK_MSG(worst <= 1e-5f * max_abs(whole, m->n_params), "accumulated gradient differs by %g", worst);
    free(whole), free(accumulated);
    egrc_model_free(m);
}

static void random_batch(egrc_rng *rng, int32_t *tokens, int32_t *targets, int B, int T) {
    for (int i = 0; i < B * T; i++) tokens[i] = (int32_t)egrc_rng_below(rng, 512);
    shift_targets(tokens, targets, B, T);
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

/* loss_weight scales the gradient, not the reported loss: the same batch at
 * weight 0.25 gives the same loss and a gradient norm a quarter as large. */
static void test_loss_weight(void) {
    egrc_error err;
    enum { B = 2, T = 8 };
    egrc_optim_config cfg = {1e-3f, 1e-4f, 0, 4, 0.9f, 0.95f, 1e-8f, 0.0f, 0.0f};
    int32_t tokens[B * T], targets[B * T];
    egrc_rng rng;
    egrc_rng_seed(&rng, 7);
    random_batch(&rng, tokens, targets, B, T);
    egrc_model *a = test_load_fixture(be, "tiny-qwen2"), *b = test_load_fixture(be, "tiny-qwen2");
    if (a && b) {
        float loss_a, loss_b, norm_a, norm_b;
        CHECK(egrc_train_step(a, &cfg, 0, tokens, targets, 1, B, T, 1.0f, &loss_a, &norm_a, &err) == 0);
        CHECK(egrc_train_step(b, &cfg, 0, tokens, targets, 1, B, T, 0.25f, &loss_b, &norm_b, &err) == 0);
        CHECK_CLOSE(loss_b, loss_a, 1e-7);
        CHECK_CLOSE(norm_b, 0.25f * norm_a, 1e-6);
        CHECK(norm_a > 0.0f);
    }
    egrc_model_free(a);
    egrc_model_free(b);
}

/* A new optimizer run on a trained model starts from zero moments: after a
 * reset, a step on model a (trained before, moments non-zero) equals the
 * same step on model b, a fresh copy of a's weights. */
static void test_reset_optimizer(void) {
    egrc_error err;
    enum { B = 2, T = 8 };
    egrc_optim_config cfg = {1e-3f, 1e-4f, 0, 4, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    int32_t tokens[B * T], targets[B * T];
    egrc_rng rng;
    egrc_rng_seed(&rng, 11);
    egrc_model *a = test_load_fixture(be, "tiny-qwen2"), *b = test_load_fixture(be, "tiny-qwen2");
    float *pa = NULL, *pb = NULL;
    if (a && b && (pa = malloc(a->n_params * sizeof(float))) && (pb = malloc(b->n_params * sizeof(float)))) {
        for (int s = 0; s < 2; s++) {
            random_batch(&rng, tokens, targets, B, T);
            CHECK(egrc_train_step(a, &cfg, s, tokens, targets, 1, B, T, 1.0f, NULL, NULL, &err) == 0);
        }
        be->ops->download(be, pa, a->params, a->n_params * sizeof(float));
        egrc_model_set_params(b, pa);
        egrc_model_reset_optimizer(a);
        random_batch(&rng, tokens, targets, B, T);
        CHECK(egrc_train_step(a, &cfg, 0, tokens, targets, 1, B, T, 1.0f, NULL, NULL, &err) == 0);
        CHECK(egrc_train_step(b, &cfg, 0, tokens, targets, 1, B, T, 1.0f, NULL, NULL, &err) == 0);
        be->ops->download(be, pa, a->params, a->n_params * sizeof(float));
        be->ops->download(be, pb, b->params, b->n_params * sizeof(float));
        CHECK(memcmp(pa, pb, a->n_params * sizeof(float)) == 0);
    }
    free(pa);
    free(pb);
    egrc_model_free(a);
    egrc_model_free(b);
}

/* Train 6 steps straight; train 3, checkpoint, reload into a fresh model and
 * train 3 more: the weights and losses must be identical to the bit. */
static void test_resume_is_bit_identical(void) {
    egrc_error err;
    enum { B = 2, T = 8, STEPS = 6, SPLIT = 3 };
    egrc_optim_config cfg = {5e-3f, 5e-4f, 2, STEPS, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    int32_t tokens[B * T], targets[B * T];
    float straight_loss[STEPS], resumed_loss[STEPS];

    egrc_model *a = test_load_fixture(be, "tiny-qwen2");
    if (!a) return;
    egrc_rng rng;
    egrc_rng_seed(&rng, 99);
    for (int s = 0; s < STEPS; s++) {
        random_batch(&rng, tokens, targets, B, T);
        CHECK(egrc_train_step(a, &cfg, s, tokens, targets, 1, B, T, 1.0f, &straight_loss[s], NULL, &err) == 0);
    }

    char dir[] = "/tmp/egrc_test_ckpt_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[600];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    egrc_model *b = test_load_fixture(be, "tiny-qwen2");
    egrc_rng_seed(&rng, 99);
    for (int s = 0; s < SPLIT; s++) {
        random_batch(&rng, tokens, targets, B, T);
        CHECK(egrc_train_step(b, &cfg, s, tokens, targets, 1, B, T, 1.0f, &resumed_loss[s], NULL, &err) == 0);
    }
    CHECK_MSG(egrc_checkpoint_save(path, b, SPLIT, &rng, &err) == 0, "%s", err.msg);
    CHECK_MSG(count_files(dir) == 1, "the atomic write left %d files", count_files(dir));
    egrc_model_free(b);

    egrc_model *c = test_load_fixture(be, "tiny-qwen2");
    egrc_rng restored;
    int step = -1;
    CHECK_MSG(egrc_checkpoint_load(path, c, &step, &restored, &err) == 0, "%s", err.msg);
    CHECK(step == SPLIT);
    for (int s = step; s < STEPS; s++) {
        random_batch(&restored, tokens, targets, B, T);
        CHECK(egrc_train_step(c, &cfg, s, tokens, targets, 1, B, T, 1.0f, &resumed_loss[s], NULL, &err) == 0);
    }
    CHECK(memcmp(straight_loss, resumed_loss, sizeof straight_loss) == 0);
    float *pa = malloc(a->n_params * sizeof(float)), *pc = malloc(c->n_params * sizeof(float));
    a->be->ops->download(a->be, pa, a->params, a->n_params * sizeof(float));
    c->be->ops->download(c->be, pc, c->params, c->n_params * sizeof(float));
    CHECK_MSG(memcmp(pa, pc, a->n_params * sizeof(float)) == 0, "resumed weights differ from the straight run");

    /* A checkpoint for another architecture is refused, naming the file. */
    egrc_model *other = test_load_fixture(be, "tiny-llama");
    CHECK(egrc_checkpoint_load(path, other, &step, &restored, &err) == -1 && strstr(err.msg, "different model config"));
    egrc_model_free(other);
    /* A failed save (folder missing) reports and leaves the old file alone. */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/missing/checkpoint.safetensors", dir);
    CHECK(egrc_checkpoint_save(bad, c, STEPS, &restored, &err) == -1);
    CHECK(egrc_checkpoint_load(path, c, &step, &restored, &err) == 0 && step == SPLIT);

    unlink(path);
    rmdir(dir);
    free(pa), free(pc);
    egrc_model_free(a);
    egrc_model_free(c);
}

/* save_hf then load_hf gives the same weights and the same logits. */
static void test_hf_round_trip(const char *name) {
    egrc_error err;
    egrc_model *m = test_load_fixture(be, name);
    if (!m) return;
    char dir[] = "/tmp/egrc_test_hf_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK_MSG(egrc_model_save_hf(m, dir, NULL, &err) == 0, "%s", err.msg);
    egrc_model *back = egrc_model_load_hf(be, dir, &err);
    CHECK_MSG(back != NULL, "%s: %s", name, err.msg);
    if (back) {
        CHECK(back->n_params == m->n_params);
        float *p1 = malloc(m->n_params * sizeof(float)), *p2 = malloc(m->n_params * sizeof(float));
        be->ops->download(be, p1, m->params, m->n_params * sizeof(float));
        be->ops->download(be, p2, back->params, m->n_params * sizeof(float));
        CHECK_MSG(memcmp(p1, p2, m->n_params * sizeof(float)) == 0, "%s: weights changed in the round trip", name);
        CHECK(back->cfg.tied_embeddings == m->cfg.tied_embeddings && back->cfg.rope_theta == m->cfg.rope_theta &&
              back->cfg.n_kv_head == m->cfg.n_kv_head && back->cfg.norm_eps == m->cfg.norm_eps);
        free(p1), free(p2);
        egrc_model_free(back);
    }
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/generation_config.json", dir); /* copied from the fixture */
    CHECK_MSG(unlink(path) == 0, "%s: generation_config.json not saved", name);
    CHECK_MSG(rmdir(dir) == 0, "save_hf left extra files in %s", dir);
    egrc_model_free(m);
}

int main(void) {
    egrc_error err;
    be = egrc_backend_open("cpu", 0, &err);
    CHECK_MSG(be != NULL, "%s", err.msg);
    if (!be) return test_finish("test_train");
    test_schedule();
    test_matches_pytorch_adamw();
    test_gradient_accumulation();
    test_loss_weight();
    test_reset_optimizer();
    test_resume_is_bit_identical();
    test_hf_round_trip("tiny-gpt2");
    test_hf_round_trip("tiny-qwen2");
    test_hf_round_trip("tiny-llama");
    egrc_backend_close(be);
    return test_finish("test_train");
}
