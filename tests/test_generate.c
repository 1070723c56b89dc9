/* Rollouts: KV-cache decoding against full forwards (logits, T=1 log-probs and
 * entropies) on the three tiny fixtures with mixed prompt lengths, greedy
 * equivalences (temperature -> 0, top-k 1, tiny top-p), determinism and
 * independence from batch composition, stop tokens and budgets, and the
 * sampler's truncation on hand-made distributions; rollouts through the CPU
 * backend's sample op equal, bit for bit, host-side sampling, and so do
 * rollouts whose decode steps are padded and replayed from recorded graphs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/generate.h"
#include "nn/model_hf.h"
#include "test.h"
#include "test_models.h"

static egrc_backend *be;
static const char *const models[] = {"tiny-gpt2", "tiny-qwen2", "tiny-llama"};


static void random_tokens(int32_t *out, int n, int vocab, uint64_t seed) {
    egrc_rng rng;
    egrc_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) out[i] = (int32_t)egrc_rng_below(&rng, (uint32_t)vocab);
}

/* Logits of the last position of seq (T tokens) by a full forward. */
static void full_last_logits(egrc_model *m, const int32_t *seq, int T, float *out) {
    egrc_error err;
    const int V = m->cfg.vocab_size;
    float *all = malloc((size_t)T * V * sizeof(float));
    CHECK_MSG(egrc_model_forward(m, seq, NULL, 1, T, NULL, &err) == 0, "%s", err.msg);
    egrc_model_download_logits(m, all);
    memcpy(out, all + (size_t)(T - 1) * V, (size_t)V * sizeof(float));
    free(all);
}

/* Every logit within 1e-5 of the row's largest magnitude. */
static int logits_close(const float *a, const float *b, int V) {
    float scale = 0.0f, worst = 0.0f;
    for (int v = 0; v < V; v++) {
        scale = fmaxf(scale, fabsf(b[v]));
        worst = fmaxf(worst, fabsf(a[v] - b[v]));
    }
    if (worst > 1e-5f * scale) fprintf(stderr, "  logits differ by %g (scale %g)\n", worst, scale);
    return worst <= 1e-5f * scale;
}

/* Three prompts of different lengths, each continued by its own number of
 * teacher-forced tokens; the rows are fed in reverse slot order and drop out
 * as their continuations end, so slots and positions differ per row. */
static void test_kv_cache_matches_full_forward(const char *name) {
    egrc_model *m = test_load_fixture(be, name);
    if (!m) return;
    enum { N = 3, MAXP = 9, MAXK = 6, STRIDE = MAXP + MAXK };
    const int V = m->cfg.vocab_size, lens[N] = {5, 9, 2}, extra[N] = {6, 3, 5};
    int32_t seqs[N * STRIDE];
    random_tokens(seqs, N * STRIDE, V, 11);
    float *want = malloc((size_t)V * sizeof(float));
    egrc_error err;
    egrc_decoder *d = egrc_decoder_create(m, N, STRIDE, &err);
    CHECK_MSG(d != NULL, "%s", err.msg);
    if (!d) goto out;
    CHECK_MSG(egrc_decoder_prefill(d, seqs, lens, N, STRIDE, &err) == 0, "%s", err.msg);
    for (int i = 0; i < N; i++) {
        CHECK(egrc_decoder_length(d, i) == lens[i]);
        full_last_logits(m, seqs + i * STRIDE, lens[i], want);
        CHECK_MSG(logits_close(egrc_decoder_logits(d) + (size_t)i * V, want, V), "%s prefill row %d", name, i);
    }
    for (int j = 0; j < MAXK; j++) {
        int32_t tokens[N];
        int slots[N], n = 0;
        for (int i = N - 1; i >= 0; i--) {
            if (j >= extra[i]) continue;
            slots[n] = i;
            tokens[n++] = seqs[i * STRIDE + lens[i] + j];
        }
        CHECK_MSG(egrc_decoder_step(d, tokens, slots, n, &err) == 0, "%s", err.msg);
        const float *got = egrc_decoder_logits(d), *lse = egrc_decoder_lse(d), *ent = egrc_decoder_entropy(d);
        for (int r = 0; r < n; r++) {
            int i = slots[r], T = lens[i] + j + 1;
            full_last_logits(m, seqs + i * STRIDE, T, want);
            CHECK_MSG(logits_close(got + (size_t)r * V, want, V), "%s step %d row %d", name, j, i);
            double max = want[0], sum = 0.0, sum_px = 0.0;
            for (int v = 1; v < V; v++) max = fmax(max, want[v]);
            for (int v = 0; v < V; v++) {
                sum += exp(want[v] - max);
                sum_px += exp(want[v] - max) * want[v];
            }
            CHECK_CLOSE(lse[r], max + log(sum), 1e-5);
            CHECK_CLOSE(ent[r], max + log(sum) - sum_px / sum, 1e-4);
        }
    }
    CHECK(egrc_decoder_length(d, 0) == lens[0] + extra[0]);
    /* a slot at capacity refuses another token */
    int32_t tok = 1;
    int slot = 1;
    for (int k = egrc_decoder_length(d, 1); k < STRIDE; k++) CHECK(egrc_decoder_step(d, &tok, &slot, 1, &err) == 0);
    CHECK(egrc_decoder_step(d, &tok, &slot, 1, &err) != 0);
out:
    egrc_decoder_free(d);
    free(want);
    egrc_model_free(m);
}

/* Completion i of a rollout as a row of tokens. */
static const int32_t *completion(const egrc_rollout *r, int i) { return egrc_rollout_completion(r, i); }

static int same_completion(const egrc_rollout *a, int i, const egrc_rollout *b, int k) {
    return a->length[i] == b->length[k] &&
           memcmp(completion(a, i), completion(b, k), (size_t)a->length[i] * sizeof(int32_t)) == 0;
}

enum { NP = 4, PSTRIDE = 7, BUDGET = 8 };
static const int plens[NP] = {3, 7, 1, 5};

static int generate(egrc_model *m, const int32_t *prompts, const int *lens, int n, const egrc_sampling_config *cfg,
                    egrc_rollout *out) {
    egrc_error err;
    int rc = egrc_generate(m, prompts, lens, n, PSTRIDE, cfg, out, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return rc;
}

/* Greedy by construction (T = 0 and T below the threshold) and greedy by
 * truncation (top-k 1, tiny top-p at T = 1) all equal egrc_model_greedy. */
static void test_greedy_equivalences(const char *name) {
    egrc_model *m = test_load_fixture(be, name);
    if (!m) return;
    int32_t prompts[NP * PSTRIDE], want[PSTRIDE + BUDGET];
    random_tokens(prompts, NP * PSTRIDE, m->cfg.vocab_size, 5);
    egrc_sampling_config variants[4];
    for (int k = 0; k < 4; k++) {
        variants[k] = egrc_sampling_defaults();
        variants[k].max_new_tokens = BUDGET;
        variants[k].seed = 99;
    }
    variants[0].temperature = 0.0f;
    variants[1].temperature = 1e-6f;
    variants[2].top_k = 1;
    variants[3].top_p = 1e-6f;
    for (int k = 0; k < 4; k++) {
        egrc_rollout r;
        if (generate(m, prompts, plens, NP, &variants[k], &r)) continue;
        for (int i = 0; i < NP; i++) {
            memcpy(want, prompts + i * PSTRIDE, (size_t)plens[i] * sizeof(int32_t));
            egrc_error err;
            CHECK(egrc_model_greedy(m, want, plens[i], BUDGET, &err) == 0);
            CHECK(r.length[i] == BUDGET && r.finish[i] == EGRC_FINISH_LENGTH);
            CHECK_MSG(memcmp(completion(&r, i), want + plens[i], BUDGET * sizeof(int32_t)) == 0,
                      "%s variant %d prompt %d differs from greedy", name, k, i);
            CHECK(memcmp(r.tokens + i * r.stride, prompts + i * PSTRIDE, (size_t)plens[i] * sizeof(int32_t)) == 0);
            /* the sampling distribution of a greedy/top-1 draw is a point mass */
            for (int j = 0; j < BUDGET; j++) CHECK(fabsf(r.sample_logprob[i * BUDGET + j]) < 1e-6f);
        }
        egrc_rollout_free(&r);
    }
    egrc_model_free(m);
}

/* Same seed, same tokens; a sequence's tokens do not depend on its neighbours. */
static void test_determinism_and_batch_independence(void) {
    egrc_model *m = test_load_fixture(be, "tiny-qwen2");
    if (!m) return;
    int32_t prompts[NP * PSTRIDE];
    random_tokens(prompts, NP * PSTRIDE, m->cfg.vocab_size, 6);
    egrc_sampling_config cfg = egrc_sampling_defaults();
    cfg.max_new_tokens = BUDGET;
    cfg.temperature = 0.9f;
    cfg.top_p = 0.95f;
    cfg.seed = 1234;
    egrc_rollout a, b, c;
    if (generate(m, prompts, plens, NP, &cfg, &a) || generate(m, prompts, plens, NP, &cfg, &b)) return;
    for (int i = 0; i < NP; i++) {
        CHECK(same_completion(&a, i, &b, i));
        CHECK(memcmp(a.logprob + i * BUDGET, b.logprob + i * BUDGET, BUDGET * sizeof(float)) == 0);
    }
    egrc_rollout_free(&b);
    /* each prompt alone, and the last two together, with the seed its index had */
    for (int i = 0; i < NP; i++) {
        egrc_sampling_config alone = cfg;
        alone.seed = cfg.seed + (uint64_t)i;
        if (generate(m, prompts + i * PSTRIDE, &plens[i], 1, &alone, &c)) continue;
        CHECK_MSG(same_completion(&a, i, &c, 0), "prompt %d alone differs from its row in the batch", i);
        for (int j = 0; j < c.length[0]; j++) CHECK_CLOSE(c.logprob[j], a.logprob[i * BUDGET + j], 1e-5);
        egrc_rollout_free(&c);
    }
    egrc_sampling_config tail = cfg;
    tail.seed = cfg.seed + 2;
    if (generate(m, prompts + 2 * PSTRIDE, &plens[2], 2, &tail, &c) == 0) {
        CHECK(same_completion(&a, 2, &c, 0) && same_completion(&a, 3, &c, 1));
        egrc_rollout_free(&c);
    }
    cfg.seed = 4321;
    if (generate(m, prompts, plens, NP, &cfg, &b) == 0) {
        int differ = 0;
        for (int i = 0; i < NP; i++) differ += !same_completion(&a, i, &b, i);
        CHECK_MSG(differ > 0, "another seed gave the same completions");
        egrc_rollout_free(&b);
    }
    egrc_rollout_free(&a);
    egrc_model_free(m);
}

/* egrc_generate as it was before sampling became a backend op: the decoder's
 * host outputs (logits, lse, entropy) sampled on the host with
 * egrc_sample_token, one generator per sequence. The reference for the op. */
static int host_sampled_generate(egrc_model *m, const int32_t *prompts, const int *lens, int n,
                                 const egrc_sampling_config *cfg, egrc_rollout *out) {
    egrc_error err;
    const int V = m->cfg.vocab_size;
    int max_prompt = 0;
    for (int i = 0; i < n; i++) max_prompt = lens[i] > max_prompt ? lens[i] : max_prompt;
    CHECK(egrc_rollout_alloc(out, n, max_prompt, cfg->max_new_tokens, &err) == 0);
    egrc_decoder *d = egrc_decoder_create(m, n, max_prompt + cfg->max_new_tokens - 1, &err);
    CHECK_MSG(d != NULL, "%s", err.msg);
    egrc_sampler *samplers = calloc((size_t)n, sizeof *samplers);
    egrc_rng *rngs = calloc((size_t)n, sizeof *rngs);
    int *active = calloc((size_t)n, sizeof *active), *slots = calloc((size_t)n, sizeof *slots);
    int32_t *next = calloc((size_t)n, sizeof *next);
    for (int i = 0; i < n; i++) {
        CHECK(egrc_sampler_init(&samplers[i], V, &err) == 0);
        egrc_rng_seed(&rngs[i], cfg->seed + (uint64_t)i);
        active[i] = i;
        out->prompt_len[i] = lens[i];
        memcpy(out->tokens + (size_t)i * out->stride, prompts + (size_t)i * PSTRIDE, (size_t)lens[i] * sizeof(int32_t));
    }
    CHECK_MSG(egrc_decoder_prefill(d, prompts, lens, n, PSTRIDE, &err) == 0, "%s", err.msg);
    for (int n_active = n; n_active > 0;) {
        const float *logits = egrc_decoder_logits(d), *lse = egrc_decoder_lse(d), *ent = egrc_decoder_entropy(d);
        int kept = 0;
        for (int r = 0; r < n_active; r++) {
            const int i = active[r], j = out->length[i];
            const float *row = logits + (size_t)r * V;
            egrc_sample s = egrc_sample_token(&samplers[i], row, cfg, &rngs[i]);
            const size_t k = (size_t)i * out->max_new + j;
            egrc_rollout_completion(out, i)[j] = s.token;
            out->logprob[k] = row[s.token] - lse[r];
            out->entropy[k] = ent[r];
            out->sample_logprob[k] = s.logprob;
            out->sample_entropy[k] = s.entropy;
            out->length[i] = j + 1;
            if (egrc_sampling_is_stop(cfg, s.token)) out->finish[i] = EGRC_FINISH_STOP;
            else if (j + 1 == out->max_new) out->finish[i] = EGRC_FINISH_LENGTH;
            else {
                slots[kept] = i;
                next[kept++] = s.token;
            }
        }
        for (int r = 0; r < kept; r++) active[r] = slots[r];
        n_active = kept;
        if (n_active) CHECK_MSG(egrc_decoder_step(d, next, active, n_active, &err) == 0, "%s", err.msg);
    }
    for (int i = 0; i < n; i++) egrc_sampler_free(&samplers[i]);
    free(samplers);
    free(rngs);
    free(active);
    free(slots);
    free(next);
    egrc_decoder_free(d);
    return 0;
}

static int same_floats(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

/* The CPU backend's sample op (which egrc_generate now uses) gives, bit for
 * bit, what host-side sampling gave: tokens, lengths, finish reasons and all
 * four per-token statistics, over greedy, temperature, top-p, top-k, both,
 * stop tokens and repeated prompts (GRPO groups). */
static void test_sample_op_matches_host_sampling(const char *name) {
    egrc_model *m = test_load_fixture(be, name);
    if (!m) return;
    CHECK(be->ops->sample != NULL);
    /* the same backend without the op: egrc_generate's host-sampling path */
    egrc_backend_ops host_ops = *be->ops;
    host_ops.sample = NULL;
    egrc_backend host_be = *be;
    host_be.ops = &host_ops;
    egrc_model *host_m = test_load_fixture(&host_be, name);
    CHECK(host_m != NULL);
    enum { N = 8, B = 12 };
    int32_t prompts[N * PSTRIDE];
    int lens[N];
    random_tokens(prompts, N * PSTRIDE, m->cfg.vocab_size, 21);
    for (int i = 0; i < N; i++) lens[i] = plens[i % NP];
    /* rows 4..7 repeat rows 0..3, as a GRPO group does */
    memcpy(prompts + 4 * PSTRIDE, prompts, 4 * PSTRIDE * sizeof(int32_t));
    struct { float t, p; int k, stop; } variants[] = {
        {0.0f, 1.0f, 0, 0}, {1.0f, 1.0f, 0, 0},  {0.7f, 1.0f, 0, 0},  {1.0f, 0.9f, 0, 0}, {0.6f, 0.95f, 0, 1},
        {1.0f, 1.0f, 5, 0}, {0.8f, 0.8f, 20, 1}, {1.3f, 0.5f, 3, 0},  {1.0f, 1e-6f, 0, 0}, {2.0f, 1.0f, 1, 0},
    };
    for (size_t k = 0; k < sizeof variants / sizeof variants[0]; k++) {
        egrc_sampling_config cfg = egrc_sampling_defaults();
        cfg.max_new_tokens = B;
        cfg.temperature = variants[k].t;
        cfg.top_p = variants[k].p;
        cfg.top_k = variants[k].k;
        cfg.seed = 1000 + k;
        egrc_rollout want, got;
        egrc_error err;
        if (variants[k].stop) {
            /* stop tokens that this seed's sequences emit: they must end there */
            host_sampled_generate(m, prompts, lens, N, &cfg, &want);
            cfg.n_stop = 2;
            cfg.stop_tokens[0] = completion(&want, 0)[2];
            cfg.stop_tokens[1] = completion(&want, 5)[6];
            egrc_rollout_free(&want);
        }
        host_sampled_generate(m, prompts, lens, N, &cfg, &want);
        CHECK_MSG(egrc_generate(m, prompts, lens, N, PSTRIDE, &cfg, &got, &err) == 0, "%s", err.msg);
        const size_t per = (size_t)N * B;
        int same = memcmp(want.tokens, got.tokens, (size_t)N * want.stride * sizeof(int32_t)) == 0 &&
                   memcmp(want.length, got.length, N * sizeof(int)) == 0 &&
                   memcmp(want.finish, got.finish, N * sizeof(egrc_finish)) == 0 &&
                   same_floats(want.logprob, got.logprob, per) && same_floats(want.entropy, got.entropy, per) &&
                   same_floats(want.sample_logprob, got.sample_logprob, per) &&
                   same_floats(want.sample_entropy, got.sample_entropy, per);
        CHECK_MSG(same, "%s variant %zu (T %g, top-p %g, top-k %d): the sample op differs from host sampling", name,
                  k, (double)cfg.temperature, (double)cfg.top_p, cfg.top_k);
        egrc_rollout host;
        if (host_m && egrc_generate(host_m, prompts, lens, N, PSTRIDE, &cfg, &host, &err) == 0) {
            same = memcmp(host.tokens, got.tokens, (size_t)N * got.stride * sizeof(int32_t)) == 0 &&
                   same_floats(host.logprob, got.logprob, per) && same_floats(host.entropy, got.entropy, per) &&
                   same_floats(host.sample_logprob, got.sample_logprob, per) &&
                   same_floats(host.sample_entropy, got.sample_entropy, per);
            CHECK_MSG(same, "%s variant %zu: egrc_generate without the sample op differs", name, k);
            egrc_rollout_free(&host);
        }
        if (variants[k].stop) CHECK(got.finish[0] == EGRC_FINISH_STOP && got.length[0] <= 3);
        egrc_rollout_free(&want);
        egrc_rollout_free(&got);
    }
    egrc_model_free(host_m);
    egrc_model_free(m);
}

/* ---- graphs: the CPU backend with recording graph ops ----
 * The core's side of graphs (core/nn/generate.c: padded row buckets, a direct
 * first step per bucket, capture, replay, stale graphs) checked on the CPU:
 * graph_begin makes the decode ops record their arguments instead of
 * running, graph_launch runs the recording. Anything else called while
 * recording (upload, download, alloc, ...) is counted as a violation. */
typedef enum recorded_op {
    REC_EMBEDDING, REC_LAYERNORM, REC_RMSNORM, REC_MATMUL, REC_ROPE, REC_KV_WRITE,
    REC_ATTENTION, REC_ADD, REC_SWIGLU, REC_GELU, REC_SAMPLE, REC_ZERO
} recorded_op;

typedef struct recorded {
    recorded_op op;
    void *p[7];
    int i[8];
    float f;
    size_t n;
} recorded;

struct egrc_graph {
    recorded *ops;
    int n;
    unsigned generation;
};

static struct {
    const egrc_backend_ops *cpu;
    int decline;         /* graph_begin declines, as with EGRC_GPU_GRAPHS=0 */
    int stale_every;     /* > 0: every so many launches the "scratch" moves */
    unsigned generation; /* what graphs point at, as the GPU backends' memory_generation */
    recorded *rec;       /* the open capture */
    int n_rec, capturing, violations, captures, launches, live;
    int most_sampled_rows; /* the most rows one sample op ran, captured or not */
} fake;

static recorded *record(recorded_op op) {
    recorded *grown = realloc(fake.rec, (size_t)(fake.n_rec + 1) * sizeof *grown);
    if (!grown) abort();
    fake.rec = grown;
    recorded *r = &fake.rec[fake.n_rec++];
    memset(r, 0, sizeof *r);
    r->op = op;
    return r;
}

static void rec_embedding(egrc_backend *b, void *out, const int32_t *tokens, const int32_t *positions,
                          const void *wte, const void *wpe, int N, int C) {
    if (!fake.capturing) {
        fake.cpu->embedding_forward(b, out, tokens, positions, wte, wpe, N, C);
        return;
    }
    recorded *r = record(REC_EMBEDDING);
    r->p[0] = out, r->p[1] = (void *)tokens, r->p[2] = (void *)positions, r->p[3] = (void *)wte, r->p[4] = (void *)wpe;
    r->i[0] = N, r->i[1] = C;
}

static void rec_layernorm(egrc_backend *b, void *out, float *mean, float *rstd, const void *inp, const void *w,
                          const void *bias, int N, int C, float eps) {
    if (!fake.capturing) {
        fake.cpu->layernorm_forward(b, out, mean, rstd, inp, w, bias, N, C, eps);
        return;
    }
    recorded *r = record(REC_LAYERNORM);
    r->p[0] = out, r->p[1] = mean, r->p[2] = rstd, r->p[3] = (void *)inp, r->p[4] = (void *)w, r->p[5] = (void *)bias;
    r->i[0] = N, r->i[1] = C, r->f = eps;
}

static void rec_rmsnorm(egrc_backend *b, void *out, float *rstd, const void *inp, const void *w, int N, int C,
                        float eps) {
    if (!fake.capturing) {
        fake.cpu->rmsnorm_forward(b, out, rstd, inp, w, N, C, eps);
        return;
    }
    recorded *r = record(REC_RMSNORM);
    r->p[0] = out, r->p[1] = rstd, r->p[2] = (void *)inp, r->p[3] = (void *)w;
    r->i[0] = N, r->i[1] = C, r->f = eps;
}

static void rec_matmul(egrc_backend *b, void *out, const void *inp, const void *w, const void *bias, int N, int C,
                       int OC) {
    if (!fake.capturing) {
        fake.cpu->matmul_forward(b, out, inp, w, bias, N, C, OC);
        return;
    }
    recorded *r = record(REC_MATMUL);
    r->p[0] = out, r->p[1] = (void *)inp, r->p[2] = (void *)w, r->p[3] = (void *)bias;
    r->i[0] = N, r->i[1] = C, r->i[2] = OC;
}

static void rec_rope(egrc_backend *b, void *qkv, const int32_t *positions, int N, int H, int KV, int D, float theta) {
    if (!fake.capturing) {
        fake.cpu->rope_forward(b, qkv, positions, N, H, KV, D, theta);
        return;
    }
    recorded *r = record(REC_ROPE);
    r->p[0] = qkv, r->p[1] = (void *)positions;
    r->i[0] = N, r->i[1] = H, r->i[2] = KV, r->i[3] = D, r->f = theta;
}

static void rec_kv_write(egrc_backend *b, void *k, void *v, const void *qkv, const int32_t *slots,
                         const int32_t *positions, int N, int H, int KV, int D, int cap) {
    if (!fake.capturing) {
        fake.cpu->kv_cache_write(b, k, v, qkv, slots, positions, N, H, KV, D, cap);
        return;
    }
    recorded *r = record(REC_KV_WRITE);
    r->p[0] = k, r->p[1] = v, r->p[2] = (void *)qkv, r->p[3] = (void *)slots, r->p[4] = (void *)positions;
    r->i[0] = N, r->i[1] = H, r->i[2] = KV, r->i[3] = D, r->i[4] = cap;
}

static void rec_attention(egrc_backend *b, void *out, const void *qkv, const void *k, const void *v,
                          const int32_t *slots, const int32_t *lens, int N, int H, int KV, int D, int cap) {
    if (!fake.capturing) {
        fake.cpu->attention_decode(b, out, qkv, k, v, slots, lens, N, H, KV, D, cap);
        return;
    }
    recorded *r = record(REC_ATTENTION);
    r->p[0] = out, r->p[1] = (void *)qkv, r->p[2] = (void *)k, r->p[3] = (void *)v, r->p[4] = (void *)slots;
    r->p[5] = (void *)lens;
    r->i[0] = N, r->i[1] = H, r->i[2] = KV, r->i[3] = D, r->i[4] = cap;
}

static void rec_add(egrc_backend *b, void *dst, const void *src, size_t n) {
    if (!fake.capturing) {
        fake.cpu->add(b, dst, src, n);
        return;
    }
    recorded *r = record(REC_ADD);
    r->p[0] = dst, r->p[1] = (void *)src, r->n = n;
}

static void rec_swiglu(egrc_backend *b, void *out, const void *gate_up, int N, int hidden) {
    if (!fake.capturing) {
        fake.cpu->swiglu_forward(b, out, gate_up, N, hidden);
        return;
    }
    recorded *r = record(REC_SWIGLU);
    r->p[0] = out, r->p[1] = (void *)gate_up, r->i[0] = N, r->i[1] = hidden;
}

static void rec_gelu(egrc_backend *b, void *out, const void *inp, size_t n) {
    if (!fake.capturing) {
        fake.cpu->gelu_forward(b, out, inp, n);
        return;
    }
    recorded *r = record(REC_GELU);
    r->p[0] = out, r->p[1] = (void *)inp, r->n = n;
}

static void rec_sample(egrc_backend *b, egrc_sample_result *out, const void *logits, const egrc_sample_request *req,
                       int N, int V) {
    if (N > fake.most_sampled_rows) fake.most_sampled_rows = N;
    if (!fake.capturing) {
        fake.cpu->sample(b, out, logits, req, N, V);
        return;
    }
    recorded *r = record(REC_SAMPLE);
    r->p[0] = out, r->p[1] = (void *)logits, r->p[2] = (void *)req, r->i[0] = N, r->i[1] = V;
}

static void rec_zero(egrc_backend *b, void *ptr, size_t bytes) {
    if (!fake.capturing) {
        fake.cpu->zero(b, ptr, bytes);
        return;
    }
    recorded *r = record(REC_ZERO);
    r->p[0] = ptr, r->n = bytes;
}

static void replay(egrc_backend *b, const recorded *r) {
    const egrc_backend_ops *c = fake.cpu;
    void *const *p = r->p;
    const int *i = r->i;
    switch (r->op) {
    case REC_EMBEDDING: c->embedding_forward(b, p[0], p[1], p[2], p[3], p[4], i[0], i[1]); break;
    case REC_LAYERNORM: c->layernorm_forward(b, p[0], p[1], p[2], p[3], p[4], p[5], i[0], i[1], r->f); break;
    case REC_RMSNORM: c->rmsnorm_forward(b, p[0], p[1], p[2], p[3], i[0], i[1], r->f); break;
    case REC_MATMUL: c->matmul_forward(b, p[0], p[1], p[2], p[3], i[0], i[1], i[2]); break;
    case REC_ROPE: c->rope_forward(b, p[0], p[1], i[0], i[1], i[2], i[3], r->f); break;
    case REC_KV_WRITE: c->kv_cache_write(b, p[0], p[1], p[2], p[3], p[4], i[0], i[1], i[2], i[3], i[4]); break;
    case REC_ATTENTION: c->attention_decode(b, p[0], p[1], p[2], p[3], p[4], p[5], i[0], i[1], i[2], i[3], i[4]); break;
    case REC_ADD: c->add(b, p[0], p[1], r->n); break;
    case REC_SWIGLU: c->swiglu_forward(b, p[0], p[1], i[0], i[1]); break;
    case REC_GELU: c->gelu_forward(b, p[0], p[1], r->n); break;
    case REC_SAMPLE: c->sample(b, p[0], p[1], p[2], i[0], i[1]); break;
    case REC_ZERO: c->zero(b, p[0], r->n); break;
    }
}

/* What may not happen during a capture. */
static void *rec_alloc(egrc_backend *b, size_t bytes, egrc_error *err) {
    fake.violations += fake.capturing;
    return fake.cpu->alloc(b, bytes, err);
}
static void rec_free(egrc_backend *b, void *ptr) {
    fake.violations += fake.capturing;
    fake.cpu->free(b, ptr);
}
static void rec_upload(egrc_backend *b, void *dst, const void *src, size_t bytes) {
    fake.violations += fake.capturing;
    fake.cpu->upload(b, dst, src, bytes);
}
static void rec_download(egrc_backend *b, void *dst, const void *src, size_t bytes) {
    fake.violations += fake.capturing;
    fake.cpu->download(b, dst, src, bytes);
}
static void rec_synchronize(egrc_backend *b) {
    fake.violations += fake.capturing;
    fake.cpu->synchronize(b);
}

static int rec_graph_begin(egrc_backend *b, egrc_error *err) {
    if (fake.decline) return egrc_fail(err, "graphs are off");
    fake.violations += fake.capturing; /* nested */
    fake.capturing = 1;
    fake.n_rec = 0;
    return 0;
}

static egrc_graph *rec_graph_end(egrc_backend *b, egrc_error *err) {
    fake.violations += !fake.capturing;
    fake.capturing = 0;
    egrc_graph *g = malloc(sizeof *g);
    if (!g) abort();
    g->ops = fake.rec, g->n = fake.n_rec, g->generation = fake.generation;
    fake.rec = NULL;
    fake.n_rec = 0;
    fake.captures++;
    fake.live++;
    return g;
}

static int rec_graph_launch(egrc_backend *b, egrc_graph *g) {
    fake.violations += fake.capturing;
    if (g->generation != fake.generation) return EGRC_GRAPH_STALE;
    fake.launches++;
    for (int k = 0; k < g->n; k++) replay(b, &g->ops[k]);
    /* as if the scratch had grown after this replay */
    if (fake.stale_every > 0 && fake.launches % fake.stale_every == 0) fake.generation++;
    return 0;
}

static void rec_graph_free(egrc_backend *b, egrc_graph *g) {
    fake.live--;
    free(g->ops);
    free(g);
}

/* Bit for bit the same rollouts (same n, budget and stride). */
static int same_rollouts(const egrc_rollout *want, const egrc_rollout *got) {
    const size_t per = (size_t)want->n * want->max_new;
    return memcmp(want->tokens, got->tokens, (size_t)want->n * want->stride * sizeof(int32_t)) == 0 &&
           memcmp(want->length, got->length, (size_t)want->n * sizeof(int)) == 0 &&
           same_floats(want->logprob, got->logprob, per) && same_floats(want->entropy, got->entropy, per) &&
           same_floats(want->sample_logprob, got->sample_logprob, per) &&
           same_floats(want->sample_entropy, got->sample_entropy, per);
}

/* Rows that shrink through the buckets (stop tokens of the plain run, so
 * sequences end at different steps) under greedy and truncated sampling:
 * bit for bit the plain CPU backend's rollouts, with graphs declined
 * (padding only), recorded and replayed, and replayed with graphs going
 * stale now and then; nothing but ops is called while capturing. */
static void test_graph_steps_match_direct(const char *name) {
    egrc_model *plain = test_load_fixture(be, name);
    if (!plain) return;
    egrc_backend_ops ops = *be->ops;
    fake.cpu = be->ops;
    ops.embedding_forward = rec_embedding, ops.layernorm_forward = rec_layernorm, ops.rmsnorm_forward = rec_rmsnorm;
    ops.matmul_forward = rec_matmul, ops.rope_forward = rec_rope, ops.kv_cache_write = rec_kv_write;
    ops.attention_decode = rec_attention, ops.add = rec_add, ops.swiglu_forward = rec_swiglu;
    ops.gelu_forward = rec_gelu, ops.sample = rec_sample, ops.zero = rec_zero;
    ops.alloc = rec_alloc, ops.free = rec_free, ops.upload = rec_upload, ops.download = rec_download;
    ops.synchronize = rec_synchronize;
    ops.graph_begin = rec_graph_begin, ops.graph_end = rec_graph_end;
    ops.graph_launch = rec_graph_launch, ops.graph_free = rec_graph_free;
    egrc_backend graph_be = *be;
    graph_be.ops = &ops;
    egrc_model *m = test_load_fixture(&graph_be, name);
    CHECK(m != NULL);
    enum { N = 5, B = 12 };
    int32_t prompts[2 * N * PSTRIDE]; /* N prompts, then the same N again */
    int lens[2 * N];
    random_tokens(prompts, N * PSTRIDE, plain->cfg.vocab_size, 31);
    memcpy(prompts + N * PSTRIDE, prompts, N * PSTRIDE * sizeof *prompts);
    for (int i = 0; i < 2 * N; i++) lens[i] = plens[i % N % NP];
    for (int variant = 0; m && variant < 2; variant++) {
        egrc_sampling_config cfg = egrc_sampling_defaults();
        cfg.max_new_tokens = B;
        cfg.seed = 500 + variant;
        if (variant == 0) cfg.temperature = 0.0f;
        else cfg.temperature = 0.8f, cfg.top_p = 0.9f, cfg.top_k = 20;
        egrc_rollout want;
        if (generate(plain, prompts, lens, N, &cfg, &want)) continue;
        cfg.n_stop = 3;
        cfg.stop_tokens[0] = completion(&want, 0)[2];
        cfg.stop_tokens[1] = completion(&want, 2)[5];
        cfg.stop_tokens[2] = completion(&want, 4)[8];
        egrc_rollout_free(&want);
        if (generate(plain, prompts, lens, N, &cfg, &want)) continue;
        int shrinks = 0;
        for (int i = 0; i < N; i++) shrinks += want.length[i] < B;
        CHECK_MSG(shrinks >= 2, "%s: only %d sequences stop early: the buckets are not exercised", name, shrinks);
        const char *modes[] = {"declined", "replayed", "replayed, going stale"};
        for (int mode = 0; mode < 3; mode++) {
            egrc_generate_release(m); /* each mode starts from no decoder and no graphs */
            CHECK(fake.live == 0);
            fake.decline = mode == 0;
            fake.stale_every = mode == 2 ? 3 : 0;
            fake.captures = fake.launches = fake.violations = 0;
            egrc_rollout got;
            if (generate(m, prompts, lens, N, &cfg, &got)) continue;
            CHECK_MSG(same_rollouts(&want, &got), "%s variant %d, graphs %s: differs from the plain backend", name,
                      variant, modes[mode]);
            CHECK_MSG(fake.violations == 0, "%s, graphs %s: %d calls that cannot be captured", name, modes[mode],
                      fake.violations);
            CHECK(!fake.capturing);
            CHECK(got.graph_steps == fake.launches);
            /* the model keeps the decoder, and with it the live graphs, only while graphs are on */
            CHECK((m->rollout_decoder != NULL) == (mode != 0) && (fake.live > 0) == (mode != 0));
            if (mode == 0) CHECK(fake.captures == 0 && got.graph_steps == 0);
            else CHECK_MSG(fake.captures >= 1 && got.graph_steps > got.decode_steps / 2,
                           "%s, graphs %s: %d captures, %d of %d steps replayed", name, modes[mode], fake.captures,
                           got.graph_steps, got.decode_steps);
            if (mode == 2) CHECK(fake.captures >= 2);
            egrc_rollout_free(&got);
            if (mode != 1) continue;
            /* Later calls reuse the kept decoder. The second meets every bucket
             * of the first captured or warmed, so every step replays a graph;
             * the third has a graph for every bucket, so it captures nothing. */
            for (int call = 2; call <= 3; call++) {
                const int captures_before = fake.captures;
                if (generate(m, prompts, lens, N, &cfg, &got)) break;
                CHECK_MSG(same_rollouts(&want, &got), "%s variant %d: call %d differs", name, variant, call);
                CHECK_MSG(got.graph_steps == got.decode_steps, "%s variant %d: call %d replays %d of %d steps", name,
                          variant, call, got.graph_steps, got.decode_steps);
                if (call == 3) CHECK(fake.captures == captures_before);
                CHECK(fake.violations == 0);
                egrc_rollout_free(&got);
            }
            /* After a call of 2N rows, the kept decoder has room for 2N, yet an
             * N-row call pads no step beyond N rows, as a fresh decoder would. */
            if (generate(m, prompts, lens, 2 * N, &cfg, &got)) continue;
            egrc_rollout_free(&got);
            fake.most_sampled_rows = 0;
            if (generate(m, prompts, lens, N, &cfg, &got)) continue;
            CHECK_MSG(same_rollouts(&want, &got), "%s variant %d: N rows after 2N differ", name, variant);
            CHECK_MSG(fake.most_sampled_rows == N, "%s variant %d: a step of %d rows in an N = %d call", name, variant,
                      fake.most_sampled_rows, N);
            egrc_rollout_free(&got);
        }
        egrc_rollout_free(&want);
    }
    egrc_model_free(m);
    CHECK(fake.live == 0); /* freeing the model freed its decoder's graphs */
    egrc_model_free(plain);
}

/* A stop token ends its sequence (and is kept); others run to the budget. */
static void test_stop_tokens_and_budget(void) {
    egrc_model *m = test_load_fixture(be, "tiny-llama");
    if (!m) return;
    int32_t prompts[NP * PSTRIDE];
    random_tokens(prompts, NP * PSTRIDE, m->cfg.vocab_size, 8);
    egrc_sampling_config cfg = egrc_sampling_defaults();
    cfg.temperature = 0.0f;
    cfg.max_new_tokens = BUDGET;
    egrc_rollout g, r;
    if (generate(m, prompts, plens, NP, &cfg, &g)) return;
    /* stop on sequence 0's fourth greedy token: it must end at that token's first occurrence */
    int32_t stop = completion(&g, 0)[3];
    cfg.stop_tokens[0] = stop;
    cfg.n_stop = 1;
    if (generate(m, prompts, plens, NP, &cfg, &r) == 0) {
        for (int i = 0; i < NP; i++) {
            int first = -1;
            for (int j = 0; j < BUDGET && first < 0; j++)
                if (completion(&g, i)[j] == stop) first = j;
            int want_len = first >= 0 ? first + 1 : BUDGET;
            CHECK_MSG(r.length[i] == want_len, "sequence %d: length %d, want %d", i, r.length[i], want_len);
            CHECK(r.finish[i] == (first >= 0 ? EGRC_FINISH_STOP : EGRC_FINISH_LENGTH));
            CHECK(memcmp(completion(&r, i), completion(&g, i), (size_t)r.length[i] * sizeof(int32_t)) == 0);
            for (int j = r.length[i]; j < BUDGET; j++) CHECK(r.logprob[i * BUDGET + j] == 0.0f);
        }
        CHECK(r.length[0] <= 4);
        egrc_rollout_free(&r);
    }
    egrc_rollout_free(&g);
    cfg.n_stop = 0;
    cfg.max_new_tokens = 1;
    if (generate(m, prompts, plens, NP, &cfg, &r) == 0) {
        for (int i = 0; i < NP; i++) CHECK(r.length[i] == 1 && r.finish[i] == EGRC_FINISH_LENGTH);
        CHECK(r.decode_steps == 0);
        egrc_rollout_free(&r);
    }
    egrc_model_free(m);
}

/* The rollout's T=1 log-probs and entropies equal those of the training
 * forward over [prompt + completion] (the PPO ratio's denominator), also in a
 * right-padded batch; without truncation at T=1 the sampling log-prob equals them. */
static void test_rollout_logprobs_match_training(const char *name) {
    egrc_model *m = test_load_fixture(be, name);
    if (!m) return;
    int32_t prompts[NP * PSTRIDE];
    random_tokens(prompts, NP * PSTRIDE, m->cfg.vocab_size, 9);
    egrc_sampling_config cfg = egrc_sampling_defaults();
    cfg.max_new_tokens = BUDGET;
    cfg.temperature = 0.7f;
    cfg.top_p = 0.9f;
    cfg.top_k = 50;
    cfg.seed = 3;
    for (int pass = 0; pass < 2; pass++) {
        egrc_rollout r;
        if (generate(m, prompts, plens, NP, &cfg, &r)) return;
        const int T = r.stride;
        int32_t *tokens = calloc((size_t)NP * T, sizeof(int32_t)), *targets = malloc((size_t)NP * T * sizeof(int32_t));
        float *loss = malloc((size_t)NP * T * sizeof(float)), *ent = malloc((size_t)NP * T * sizeof(float));
        for (int i = 0; i < NP * T; i++) targets[i] = -1;
        for (int i = 0; i < NP; i++) {
            int len = r.prompt_len[i] + r.length[i];
            memcpy(tokens + i * T, r.tokens + i * r.stride, (size_t)len * sizeof(int32_t));
            for (int t = r.prompt_len[i]; t < len; t++) targets[i * T + t - 1] = tokens[i * T + t];
        }
        egrc_error err;
        CHECK_MSG(egrc_model_forward(m, tokens, targets, NP, T, NULL, &err) == 0, "%s", err.msg);
        egrc_model_download_losses(m, loss);
        egrc_model_download_entropy(m, ent);
        for (int i = 0; i < NP; i++) {
            for (int j = 0; j < r.length[i]; j++) {
                int pos = i * T + r.prompt_len[i] + j - 1;
                float lp = r.logprob[i * BUDGET + j], h = r.entropy[i * BUDGET + j];
                CHECK_MSG(fabsf(lp + loss[pos]) <= 1e-5f * fmaxf(1.0f, fabsf(lp)), "%s: log-prob %g vs %g", name,
                          lp, -loss[pos]);
                CHECK_MSG(fabsf(h - ent[pos]) <= 1e-5f * fmaxf(1.0f, h), "%s: entropy %g vs %g", name, h, ent[pos]);
                float slp = r.sample_logprob[i * BUDGET + j], sh = r.sample_entropy[i * BUDGET + j];
                CHECK(slp <= 1e-6f && sh >= -1e-6f);
                if (pass == 1) {
                    CHECK_CLOSE(slp, lp, 1e-5);
                    CHECK_CLOSE(sh, h, 1e-5);
                } else {
                    /* truncating to a nucleus at T < 1 sharpens: the kept token is likelier */
                    CHECK(slp >= lp - 1e-6f);
                }
            }
        }
        free(tokens);
        free(targets);
        free(loss);
        free(ent);
        egrc_rollout_free(&r);
        cfg.temperature = 1.0f;
        cfg.top_p = 1.0f;
        cfg.top_k = 0;
    }
    egrc_model_free(m);
}

static void test_bad_requests(void) {
    egrc_model *m = test_load_fixture(be, "tiny-gpt2"); /* 64 learned positions */
    if (!m) return;
    int32_t prompt[60] = {0};
    int len = 60;
    egrc_sampling_config cfg = egrc_sampling_defaults();
    cfg.max_new_tokens = 8;
    egrc_rollout r;
    egrc_error err;
    CHECK(egrc_generate(m, prompt, &len, 1, 60, &cfg, &r, &err) != 0);
    CHECK(strstr(err.msg, "positions") != NULL);
    cfg.max_new_tokens = 4;
    CHECK_MSG(egrc_generate(m, prompt, &len, 1, 60, &cfg, &r, &err) == 0, "%s", err.msg);
    egrc_rollout_free(&r);
    cfg.top_p = 0.0f;
    CHECK(egrc_generate(m, prompt, &len, 1, 60, &cfg, &r, &err) != 0);
    cfg.top_p = 1.0f;
    cfg.stop_tokens[0] = m->cfg.vocab_size;
    cfg.n_stop = 1;
    CHECK(egrc_generate(m, prompt, &len, 1, 60, &cfg, &r, &err) != 0);
    cfg.n_stop = 0;
    prompt[3] = -4;
    CHECK(egrc_generate(m, prompt, &len, 1, 60, &cfg, &r, &err) != 0);
    egrc_model_free(m);
}

/* Hand-made distribution p = (0.5, 0.3, 0.15, 0.05): top-k and top-p keep the
 * right tokens, report the renormalised log-prob and entropy, and sample in
 * the renormalised proportions. */
static void test_sampler_truncation(void) {
    const double p[4] = {0.5, 0.3, 0.15, 0.05};
    float logits[4];
    for (int v = 0; v < 4; v++) logits[v] = (float)log(p[v]) + 2.0f; /* a shift changes nothing */
    egrc_sampler s;
    egrc_error err;
    CHECK(egrc_sampler_init(&s, 4, &err) == 0);
    egrc_rng rng;
    egrc_rng_seed(&rng, 77);
    struct {
        float top_p;
        int top_k;
        double mass; /* kept probability mass */
        int keep;
    } cases[] = {{1.0f, 0, 1.0, 4}, {1.0f, 2, 0.8, 2}, {0.7f, 0, 0.8, 2}, {0.85f, 0, 0.95, 3}, {0.9f, 3, 0.95, 3},
                 {0.45f, 0, 0.5, 1}, {0.9f, 2, 0.8, 2}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        egrc_sampling_config cfg = egrc_sampling_defaults();
        cfg.top_p = cases[c].top_p;
        cfg.top_k = cases[c].top_k;
        double want_h = 0.0;
        for (int v = 0; v < cases[c].keep; v++) want_h -= p[v] / cases[c].mass * log(p[v] / cases[c].mass);
        int counts[4] = {0};
        const int draws = 20000;
        for (int k = 0; k < draws; k++) {
            egrc_sample x = egrc_sample_token(&s, logits, &cfg, &rng);
            CHECK(x.token >= 0 && x.token < cases[c].keep);
            if (x.token < 0 || x.token >= 4) continue;
            counts[x.token]++;
            if (k < 50) {
                CHECK_CLOSE(x.logprob, log(p[x.token] / cases[c].mass), 1e-5);
                CHECK_CLOSE(x.entropy, want_h, 1e-5);
            }
        }
        for (int v = 0; v < cases[c].keep; v++)
            CHECK_MSG(fabs((double)counts[v] / draws - p[v] / cases[c].mass) < 0.015, "case %zu token %d: %d of %d",
                      c, v, counts[v], draws);
    }
    /* temperature 0.5 squares the probabilities before renormalising */
    egrc_sampling_config cold = egrc_sampling_defaults();
    cold.temperature = 0.5f;
    double z = 0.0;
    for (int v = 0; v < 4; v++) z += p[v] * p[v];
    egrc_sample x = egrc_sample_token(&s, logits, &cold, &rng);
    CHECK_CLOSE(x.logprob, log(p[x.token] * p[x.token] / z), 1e-5);
    /* ties go to the lower id */
    float flat[4] = {1.0f, 3.0f, 3.0f, 0.0f};
    egrc_sampling_config greedy = egrc_sampling_defaults();
    greedy.temperature = 0.0f;
    CHECK(egrc_sample_token(&s, flat, &greedy, &rng).token == 1);
    greedy.temperature = 1.0f;
    greedy.top_k = 1;
    CHECK(egrc_sample_token(&s, flat, &greedy, &rng).token == 1);
    egrc_sampler_free(&s);
    /* A long tail below the first candidate threshold: p = (0.4, 0.2, 0.1) and
     * 997 tokens sharing 0.3. top_p 0.55 is a share of the whole mass, so the
     * nucleus is the first two tokens (0.6), not one (0.4 >= 0.55 * 0.7). */
    enum { WIDE = 1000 };
    float *wide = malloc(WIDE * sizeof(float));
    for (int v = 0; v < WIDE; v++) wide[v] = (float)log(v == 0 ? 0.4 : v == 1 ? 0.2 : v == 2 ? 0.1 : 0.3 / 997.0);
    CHECK(egrc_sampler_init(&s, WIDE, &err) == 0);
    egrc_sampling_config nucleus = egrc_sampling_defaults();
    nucleus.top_p = 0.55f;
    int seen[2] = {0};
    for (int k = 0; k < 400; k++) {
        egrc_sample y = egrc_sample_token(&s, wide, &nucleus, &rng);
        CHECK(y.token == 0 || y.token == 1);
        if (y.token == 0 || y.token == 1) seen[y.token]++;
        CHECK_CLOSE(y.logprob, log((y.token == 0 ? 0.4 : 0.2) / 0.6), 1e-5);
    }
    CHECK(seen[0] > 0 && seen[1] > 0);
    /* top_p 0.8 needs the tail: sampling then covers more than the three large tokens */
    nucleus.top_p = 0.8f;
    int tail = 0;
    for (int k = 0; k < 400; k++) tail += egrc_sample_token(&s, wide, &nucleus, &rng).token >= 3;
    CHECK(tail > 0);
    free(wide);
    egrc_sampler_free(&s);
}

int main(void) {
    egrc_error err;
    be = egrc_backend_open("cpu", 0, &err);
    if (!be) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        test_kv_cache_matches_full_forward(models[i]);
        test_greedy_equivalences(models[i]);
        test_rollout_logprobs_match_training(models[i]);
        test_sample_op_matches_host_sampling(models[i]);
        test_graph_steps_match_direct(models[i]);
    }
    test_determinism_and_batch_independence();
    test_stop_tokens_and_budget();
    test_bad_requests();
    test_sampler_truncation();
    egrc_backend_close(be);
    return test_finish("test_generate");
}
