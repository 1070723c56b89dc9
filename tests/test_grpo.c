/* GRPO: advantage variants against hand-computed values, the objective's
 * gradient against finite differences (surrogate with clipping, KL, entropy
 * bonus), clipping zeroing gradients on the right side only, the three loss
 * aggregations, the k3 KL value, an end-to-end run that must learn to emit a
 * target token; and the entropy analysis built on the same objectives. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rl/analyze.h"
#include "rl/grpo.h"
#include "nn/model_hf.h"
#include "test.h"
#include "test_models.h"

static egrc_backend *be;


static void check_adv(const char *name, const float *got, const double *want, int n) {
    for (int i = 0; i < n; i++)
        CHECK_MSG(fabs(got[i] - want[i]) <= 1e-5 * fmax(1.0, fabs(want[i])), "%s[%d] = %.7g, want %.7g", name, i,
                  (double)got[i], want[i]);
}

static void test_advantages(void) {
    egrc_error err;
    float adv[8];
    unsigned char keep[8];
    int zero_var;
    egrc_adv_config cfg = {EGRC_ADV_GRPO, 4, 1.0f, 1.0f, 0, 0};
    /* [1,0,0,1]: mean 0.5, n-1 std sqrt(1/3); [0.2 x4]: zero variance */
    const float r1[8] = {1, 0, 0, 1, 0.2f, 0.2f, 0.2f, 0.2f};
    CHECK(egrc_advantages(&cfg, r1, NULL, 8, adv, keep, &zero_var, &err) == 0);
    const double z = 0.5 / (sqrt(1.0 / 3.0) + 1e-6);
    check_adv("grpo", adv, (const double[]){z, -z, -z, z, 0, 0, 0, 0}, 8);
    CHECK(zero_var == 1);
    for (int i = 0; i < 8; i++) CHECK(keep[i] == 1);
    cfg.filter_zero_variance = 1;
    cfg.positive_only = 1;
    CHECK(egrc_advantages(&cfg, r1, NULL, 8, adv, keep, &zero_var, &err) == 0);
    check_adv("grpo+positive", adv, (const double[]){z, 0, 0, z, 0, 0, 0, 0}, 8);
    for (int i = 0; i < 8; i++) CHECK(keep[i] == (i < 4));

    egrc_adv_config dr = {EGRC_ADV_DR_GRPO, 2, 1.0f, 1.0f, 0, 0};
    const float r2[4] = {3, 1, 0.5f, 0.5f};
    CHECK(egrc_advantages(&dr, r2, NULL, 4, adv, NULL, &zero_var, &err) == 0);
    check_adv("dr_grpo", adv, (const double[]){1, -1, 0, 0}, 4);
    CHECK(zero_var == 1);

    /* absolute beta R: stage 1's advantage, all-equal groups are still counted */
    egrc_adv_config abs_cfg = {EGRC_ADV_ABSOLUTE, 3, 2.0f, 1.0f, 1, 0};
    const float r3[6] = {0.5f, 0, 1, 0.25f, 0.25f, 0.25f};
    CHECK(egrc_advantages(&abs_cfg, r3, NULL, 6, adv, keep, &zero_var, &err) == 0);
    check_adv("absolute", adv, (const double[]){1, 0, 2, 0.5, 0.5, 0.5}, 6);
    CHECK(zero_var == 1 && keep[3] == 1);

    /* decomposed, groups of 4. Group 1: acc [1,1,1,0]: mean .75, std .5 -> A_acc [.5,.5,.5,-1.5];
     * len among correct [.9,.5,.7]: mean .7, std .2 -> A_len [1,-1,0]; w = 1:
     * [1.5, 0.5 - 1 -> floored at 0, 0.5, -1.5].
     * Group 2, all correct: A_acc = 0; len [.8,.6,.7,.7]: mean .7, std sqrt(.02/3). */
    egrc_adv_config dec = {EGRC_ADV_DECOMPOSED, 4, 1.0f, 1.0f, 0, 0};
    const float acc[8] = {1, 1, 1, 0, 1, 1, 1, 1}, len[8] = {0.9f, 0.5f, 0.7f, 0, 0.8f, 0.6f, 0.7f, 0.7f};
    CHECK(egrc_advantages(&dec, acc, len, 8, adv, keep, &zero_var, &err) == 0);
    const double s2 = 0.1 / (sqrt(0.02 / 3.0) + 1e-6);
    check_adv("decomposed", adv, (const double[]){1.5, 0, 0.5, -1.5, s2, -s2, 0, 0}, 8);
    CHECK(zero_var == 0);
    dec.length_weight = 0.5f;
    CHECK(egrc_advantages(&dec, acc, len, 8, adv, keep, &zero_var, &err) == 0);
    check_adv("decomposed w=.5", adv, (const double[]){1.0, 0, 0.5, -1.5, s2 / 2, -s2 / 2, 0, 0}, 8);
    /* wrong samples' length terms never count, even when nonzero */
    const float acc2[4] = {1, 0, 0, 1}, len2[4] = {0.5f, 0.9f, 0.1f, 0.5f};
    CHECK(egrc_advantages(&dec, acc2, len2, 4, adv, keep, &zero_var, &err) == 0);
    check_adv("decomposed wrong", adv, (const double[]){z, -z, -z, z}, 4);
    CHECK(egrc_advantages(&dec, acc2, NULL, 4, adv, keep, &zero_var, &err) != 0);
    CHECK(egrc_advantages(&cfg, r1, NULL, 7, adv, keep, &zero_var, &err) != 0);
}

/* A hand-built batch: random tokens with the given prompt and completion
 * lengths; the rollout log-probs are the model's own (ratio 1). */
static int build_rollout(egrc_model *m, egrc_rollout *r, int n, const int *prompt, const int *completion, int max_new,
                         uint64_t seed) {
    egrc_error err;
    int max_prompt = 0;
    for (int i = 0; i < n; i++) max_prompt = prompt[i] > max_prompt ? prompt[i] : max_prompt;
    if (egrc_rollout_alloc(r, n, max_prompt, max_new, &err)) return -1;
    egrc_rng rng;
    egrc_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        r->prompt_len[i] = prompt[i];
        r->length[i] = completion[i];
        for (int t = 0; t < prompt[i] + completion[i]; t++)
            r->tokens[i * r->stride + t] = (int32_t)egrc_rng_below(&rng, (uint32_t)m->cfg.vocab_size);
    }
    int rc = egrc_grpo_reference_logprobs(m, r, 0, r->logprob, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return rc;
}

enum { NB = 4, BUDGET = 6 };
static const int prompt_lens[NB] = {3, 5, 2, 4}, completion_lens[NB] = {6, 2, 5, 1};

static double objective(egrc_model *m, const egrc_grpo_config *cfg, const egrc_rollout *r, const float *adv,
                        const unsigned char *keep, const float *ref) {
    double loss = 0.0;
    egrc_error err;
    CHECK_MSG(egrc_grpo_loss(m, cfg, r, adv, keep, ref, 0, r->n, 0, &loss, &err) == 0, "%s", err.msg);
    return loss;
}

static float *gradient(egrc_model *m, const egrc_grpo_config *cfg, const egrc_rollout *r, const float *adv,
                       const unsigned char *keep, const float *ref) {
    double loss;
    egrc_error err;
    egrc_model_zero_grad(m);
    CHECK_MSG(egrc_grpo_loss(m, cfg, r, adv, keep, ref, 0, r->n, 1, &loss, &err) == 0, "%s", err.msg);
    float *g = malloc(m->n_params * sizeof(float));
    be->ops->download(be, g, m->grads, m->n_params * sizeof(float));
    return g;
}

static double max_abs(const float *x, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* Central differences of step h on the 8 largest-gradient parameters and 8 random ones. */
static void check_fd(const char *name, egrc_model *m, const egrc_grpo_config *cfg, const egrc_rollout *r,
                     const float *adv, const float *ref, double h) {
    float *g = gradient(m, cfg, r, adv, NULL, ref);
    float *params = malloc(m->n_params * sizeof(float));
    be->ops->download(be, params, m->params, m->n_params * sizeof(float));
    size_t picks[16];
    for (int k = 0; k < 8; k++) {
        size_t best = 0;
        for (size_t i = 0; i < m->n_params; i++) {
            int taken = 0;
            for (int q = 0; q < k; q++) taken |= picks[q] == i;
            if (!taken && fabsf(g[i]) > fabsf(g[best])) best = i;
        }
        picks[k] = best;
    }
    egrc_rng rng;
    egrc_rng_seed(&rng, 17);
    for (int k = 8; k < 16; k++) picks[k] = egrc_rng_below(&rng, (uint32_t)m->n_params);
    const double scale = max_abs(g, m->n_params);
    CHECK_MSG(scale > 1e-4, "%s: gradient vanished (%g)", name, scale);
    for (int k = 0; k < 16; k++) {
        size_t i = picks[k];
        float saved = params[i];
        params[i] = saved + (float)h;
        egrc_model_set_params(m, params);
        double plus = objective(m, cfg, r, adv, NULL, ref);
        params[i] = saved - (float)h;
        egrc_model_set_params(m, params);
        double minus = objective(m, cfg, r, adv, NULL, ref);
        params[i] = saved;
        double fd = (plus - minus) / (2.0 * h);
        CHECK_MSG(fabs(fd - g[i]) <= 2e-2 * scale, "%s: param %zu: analytic %.6g, finite difference %.6g (scale %.3g)",
                  name, i, (double)g[i], fd, scale);
    }
    egrc_model_set_params(m, params);
    free(params);
    free(g);
}

/* Old log-probs shifted by offsets that put every ratio well inside or well
 * outside [0.8, 1.2]: ratio = exp(-offset) in {1.65, 1.105, 1, 0.905, 0.61}. */
static void shift_logprobs(egrc_rollout *r, const float *base, float *out) {
    static const float offsets[] = {-0.5f, -0.1f, 0.0f, 0.1f, 0.5f};
    for (int i = 0; i < r->n; i++)
        for (int j = 0; j < r->length[i]; j++) {
            size_t k = (size_t)i * r->max_new + j;
            out[k] = base[k] + offsets[(i * 3 + j) % 5];
        }
}

static void test_gradients_and_clipping(void) {
    egrc_model *m = test_load_fixture(be, "tiny-qwen2");
    egrc_rollout r;
    if (!m || build_rollout(m, &r, NB, prompt_lens, completion_lens, BUDGET, 21)) return;
    const size_t per_token = (size_t)NB * BUDGET;
    float *own = malloc(per_token * sizeof(float)), *ref = malloc(per_token * sizeof(float));
    memcpy(own, r.logprob, per_token * sizeof(float));
    shift_logprobs(&r, own, r.logprob);
    const float adv[NB] = {1.0f, -0.5f, 0.7f, -1.2f}, zero_adv[NB] = {0};
    egrc_grpo_config cfg = egrc_grpo_defaults();
    const egrc_loss_agg aggs[3] = {EGRC_AGG_SEQ_MEAN_TOKEN_MEAN, EGRC_AGG_SEQ_MEAN_TOKEN_SUM, EGRC_AGG_TOKEN_MEAN};
    for (int a = 0; a < 3; a++) {
        cfg.agg = aggs[a];
        check_fd("clipped surrogate", m, &cfg, &r, adv, NULL, 1e-3);
    }
    /* KL alone (zero advantages), then everything together with an asymmetric clip */
    for (size_t k = 0; k < per_token; k++) ref[k] = own[k] - 0.3f + 0.15f * (float)(k % 5);
    cfg.agg = EGRC_AGG_SEQ_MEAN_TOKEN_MEAN;
    cfg.kl_coef = 0.5f;
    check_fd("k3 KL", m, &cfg, &r, zero_adv, ref, 1e-3);
    /* The entropy bonus alone: a near-uniform tiny model has small entropy
     * gradients, so this check gets its own scale and a larger (smooth) step. */
    cfg.kl_coef = 0.0f;
    cfg.entropy_coef = 1.0f;
    check_fd("entropy bonus", m, &cfg, &r, zero_adv, NULL, 1e-2);
    cfg.kl_coef = 0.5f;
    cfg.entropy_coef = 0.1f;
    cfg.clip_low = 0.3f;
    cfg.clip_high = 0.25f;
    check_fd("surrogate + KL + entropy", m, &cfg, &r, adv, ref, 1e-3);

    /* Clipping: ratio 1.65 with A > 0, or 0.61 with A < 0, is clipped (no
     * gradient, loss -clip(ratio) A); the opposite signs are not. */
    cfg = egrc_grpo_defaults();
    cfg.agg = EGRC_AGG_TOKEN_MEAN;
    const float pos[NB] = {1, 1, 1, 1}, neg[NB] = {-1, -1, -1, -1};
    for (int side = 0; side < 2; side++) {
        const float shift = side == 0 ? -0.5f : 0.5f; /* old = own + shift: ratio = exp(-shift) */
        for (size_t k = 0; k < per_token; k++) r.logprob[k] = own[k] + shift;
        const float *clipped_adv = side == 0 ? pos : neg, *free_adv = side == 0 ? neg : pos;
        float *g = gradient(m, &cfg, &r, clipped_adv, NULL, NULL);
        CHECK_MSG(max_abs(g, m->n_params) == 0.0, "side %d: clipped tokens still give gradient %g", side,
                  max_abs(g, m->n_params));
        free(g);
        double want = side == 0 ? -1.2 : 0.8; /* -clip(ratio) * A */
        CHECK_CLOSE(objective(m, &cfg, &r, clipped_adv, NULL, NULL), want, 1e-5);
        g = gradient(m, &cfg, &r, free_adv, NULL, NULL);
        CHECK(max_abs(g, m->n_params) > 1e-4);
        free(g);
        CHECK_CLOSE(objective(m, &cfg, &r, free_adv, NULL, NULL), exp(-shift) * (side == 0 ? 1.0 : -1.0), 1e-5);
    }
    egrc_rollout_free(&r);
    free(own);
    free(ref);
    egrc_model_free(m);
}

/* At ratio 1 the surrogate is -A per token, so each aggregation has a closed
 * form in the lengths (6, 2, 5, 1; budget 6); the k3 KL of known log-prob
 * gaps is exp(d) - d - 1; filtered sequences do not count. */
static void test_aggregation_and_kl(void) {
    egrc_model *m = test_load_fixture(be, "tiny-gpt2");
    egrc_rollout r;
    if (!m || build_rollout(m, &r, NB, prompt_lens, completion_lens, BUDGET, 22)) return;
    const float adv[NB] = {1.0f, -0.5f, 0.7f, -1.2f};
    const double L[NB] = {6, 2, 5, 1};
    egrc_grpo_config cfg = egrc_grpo_defaults();
    double seq_mean = 0.0, seq_sum = 0.0, tok_sum = 0.0;
    for (int i = 0; i < NB; i++) {
        seq_mean += -adv[i] / NB;
        seq_sum += -adv[i] * L[i] / BUDGET / NB;
        tok_sum += -adv[i] * L[i];
    }
    cfg.agg = EGRC_AGG_SEQ_MEAN_TOKEN_MEAN;
    CHECK_CLOSE(objective(m, &cfg, &r, adv, NULL, NULL), seq_mean, 1e-5);
    cfg.agg = EGRC_AGG_SEQ_MEAN_TOKEN_SUM;
    CHECK_CLOSE(objective(m, &cfg, &r, adv, NULL, NULL), seq_sum, 1e-5);
    cfg.agg = EGRC_AGG_TOKEN_MEAN;
    CHECK_CLOSE(objective(m, &cfg, &r, adv, NULL, NULL), tok_sum / 14.0, 1e-5);
    const unsigned char keep[NB] = {1, 0, 1, 1};
    CHECK_CLOSE(objective(m, &cfg, &r, adv, keep, NULL), -(6 * 1.0 + 5 * 0.7 - 1.2) / 12.0, 1e-5);

    /* KL: ref = own + d, d in {-0.3, ..., 0.3}, zero advantages, token mean */
    const size_t per_token = (size_t)NB * BUDGET;
    float *ref = calloc(per_token, sizeof(float));
    double want_kl = 0.0;
    for (int i = 0; i < NB; i++)
        for (int j = 0; j < r.length[i]; j++) {
            size_t k = (size_t)i * BUDGET + j;
            double d = -0.3 + 0.15 * (double)(k % 5);
            ref[k] = r.logprob[k] + (float)d;
            want_kl += exp(d) - d - 1.0;
        }
    const float zero_adv[NB] = {0};
    cfg.kl_coef = 2.0f;
    CHECK_CLOSE(objective(m, &cfg, &r, zero_adv, NULL, ref), 2.0 * want_kl / 14.0, 1e-4);
    /* a reference equal to the policy: KL 0 and no gradient */
    float *g = gradient(m, &cfg, &r, zero_adv, NULL, r.logprob);
    CHECK(max_abs(g, m->n_params) < 1e-6);
    CHECK(fabs(objective(m, &cfg, &r, zero_adv, NULL, r.logprob)) < 1e-6);
    free(g);
    free(ref);
    egrc_rollout_free(&r);
    egrc_model_free(m);
}

/* The analysis against quantities recomputed here from full logits: token
 * count, histogram and high/low split, mean |e_a - p| per split, the tail's
 * token counts; gradient cosines of +-identical objectives are +-1. */
static void test_analysis(void) {
    egrc_model *m = test_load_fixture(be, "tiny-qwen2");
    if (!m) return;
    /* sharpen the output distributions (lm_head x 30) so p_a and sum p^2 vary well away from uniform */
    float *params = malloc(m->n_params * sizeof(float));
    be->ops->download(be, params, m->params, m->n_params * sizeof(float));
    for (size_t i = 0; i < (size_t)m->cfg.vocab_size * m->cfg.d_model; i++) params[m->lm_head + i] *= 30.0f;
    egrc_model_set_params(m, params);
    free(params);
    egrc_rollout r;
    if (build_rollout(m, &r, NB, prompt_lens, completion_lens, BUDGET, 23)) return;
    const int V = m->cfg.vocab_size;
    const float adv[NB] = {1.0f, -0.5f, 0.7f, -1.2f}, flipped[NB] = {-1.0f, 0.5f, -0.7f, 1.2f};
    const float other[NB] = {0.3f, 0.9f, -0.2f, 0.4f};
    egrc_analyze_config cfg = egrc_analyze_defaults();
    cfg.micro_batch = 3; /* two micro-batches */
    egrc_analysis a;
    egrc_error err;
    CHECK_MSG(egrc_analyze(m, &r, adv, adv, &cfg, &a, &err) == 0, "%s", err.msg);
    CHECK(a.tokens == 14 && a.n_bins == 10);
    long binned = 0, tail = 0;
    for (int b = 0; b < a.n_bins; b++) binned += a.bins[b].count;
    for (int t = 0; t < a.n_top; t++) tail += a.top[t].high;
    CHECK(binned == 14 && a.high.count + a.low.count == 14);
    CHECK(a.high.count == 3); /* entropy ties are measure-zero: the top 20% of 14 from index 11 on */
    CHECK(tail == a.high.count);
    CHECK(a.has_gradients && fabs(a.cos_high - 1.0) < 1e-5 && fabs(a.cos_low - 1.0) < 1e-5);

    /* reference: full logits of the batch, token by token */
    int32_t tokens[NB * 16], targets[NB * 16];
    int index[NB], T;
    int rows = egrc_rollout_batch(&r, 0, NB, NULL, tokens, targets, index, &T);
    float *logits = malloc((size_t)rows * T * V * sizeof(float));
    CHECK(egrc_model_forward(m, tokens, targets, rows, T, NULL, &err) == 0);
    egrc_model_download_logits(m, logits);
    double grad_high = 0.0, grad_low = 0.0, sum_h = 0.0;
    for (int b = 0; b < rows; b++) {
        for (int j = 0; j < r.length[b]; j++) {
            const float *z = logits + ((size_t)b * T + r.prompt_len[b] + j - 1) * V;
            double max = z[0], sum = 0.0, sum_p2 = 0.0, h = 0.0;
            for (int v = 1; v < V; v++) max = fmax(max, z[v]);
            for (int v = 0; v < V; v++) sum += exp(z[v] - max);
            for (int v = 0; v < V; v++) {
                double p = exp(z[v] - max) / sum;
                sum_p2 += p * p;
                h -= p * log(p);
            }
            int32_t target = r.tokens[b * r.stride + r.prompt_len[b] + j];
            double p_a = exp(z[target] - max) / sum, g = sqrt(1.0 - 2.0 * p_a + sum_p2);
            sum_h += h;
            if (h >= a.high_threshold - 1e-6) grad_high += g;
            else grad_low += g;
        }
    }
    CHECK_CLOSE(a.mean_entropy, sum_h / 14.0, 1e-5);
    printf("analysis: mean entropy %.3f, |e_a - p| high %.4f low %.4f\n", a.mean_entropy, a.high.logit_grad, a.low.logit_grad);
    CHECK_CLOSE(a.high.logit_grad, grad_high / (double)a.high.count, 1e-5);
    CHECK_CLOSE(a.low.logit_grad, grad_low / (double)a.low.count, 1e-5);
    CHECK_CLOSE(a.high.acc_grad, a.high.comp_grad, 1e-6);
    free(logits);

    char *json = egrc_analysis_to_json(&a);
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    CHECK(root && cJSON_GetNumberValue(cJSON_GetObjectItem(root, "tokens")) == 14.0);
    CHECK(root && cJSON_GetArraySize(cJSON_GetObjectItem(root, "bins")) == 10);
    cJSON_Delete(root);
    free(json);
    egrc_analysis_free(&a);

    CHECK(egrc_analyze(m, &r, adv, flipped, &cfg, &a, &err) == 0);
    CHECK(fabs(a.cos_high + 1.0) < 1e-5 && fabs(a.cos_low + 1.0) < 1e-5);
    egrc_analysis_free(&a);
    CHECK(egrc_analyze(m, &r, adv, other, &cfg, &a, &err) == 0);
    /* the low tokens span all four sequences, so differently weighted objectives point apart */
    CHECK_MSG(fabs(a.cos_low) < 1.0 - 1e-3 && a.norm_acc_low > 0.0 && a.norm_comp_low > 0.0, "cosine %g", a.cos_low);
    egrc_analysis_free(&a);
    cfg.high_fraction = 1.5f;
    CHECK(egrc_analyze(m, &r, adv, other, &cfg, &a, &err) != 0);
    egrc_rollout_free(&r);
    egrc_model_free(m);
}

/* Reward = fraction of completion tokens equal to TARGET; a fresh GPT-2-style
 * model with a 16-token vocabulary must raise it clearly within 30 rollout batches. */
static void test_end_to_end_learns(void) {
    enum { TARGET = 3, PROMPTS = 4, G = 8, N = PROMPTS * G, PLEN = 4, NEW = 8, STEPS = 30, WINDOW = 5 };
    egrc_error err;
    egrc_model_config mc;
    CHECK(egrc_config_preset("gpt2-tiny", &mc, &err) == 0);
    mc.vocab_size = 16;
    egrc_model *m = egrc_model_create(be, &mc, &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) return;
    egrc_model_init_random(m, 5);
    int32_t prompts[N * PLEN];
    int lens[N];
    egrc_rng rng;
    egrc_rng_seed(&rng, 8);
    for (int p = 0; p < PROMPTS; p++) {
        int32_t prompt[PLEN];
        for (int t = 0; t < PLEN; t++) prompt[t] = (int32_t)egrc_rng_below(&rng, 16);
        for (int g = 0; g < G; g++) {
            memcpy(prompts + (p * G + g) * PLEN, prompt, sizeof prompt);
            lens[p * G + g] = PLEN;
        }
    }
    egrc_sampling_config sc = egrc_sampling_defaults();
    sc.max_new_tokens = NEW;
    egrc_grpo_config cfg = egrc_grpo_defaults();
    cfg.adv.group_size = G;
    cfg.optim = egrc_optim_defaults(STEPS);
    cfg.optim.lr = 1e-2f;
    cfg.optim.min_lr = 1e-2f;
    cfg.optim.weight_decay = 0.0f;
    cfg.epochs = 2;
    cfg.mini_batch = N / 2;
    double first = 0.0, last = 0.0;
    int step = 0;
    for (int s = 0; s < STEPS; s++) {
        egrc_rollout r;
        sc.seed = 1000u + (uint64_t)s * N;
        if (egrc_generate(m, prompts, lens, N, PLEN, &sc, &r, &err)) {
            CHECK_MSG(0, "%s", err.msg);
            break;
        }
        float reward[N];
        double mean = 0.0;
        for (int i = 0; i < N; i++) {
            int hits = 0;
            for (int j = 0; j < r.length[i]; j++) hits += egrc_rollout_completion(&r, i)[j] == TARGET;
            reward[i] = (float)hits / (float)r.length[i];
            mean += reward[i] / N;
        }
        if (s < WINDOW) first += mean / WINDOW;
        if (s >= STEPS - WINDOW) last += mean / WINDOW;
        egrc_grpo_stats st;
        CHECK_MSG(egrc_grpo_step(m, NULL, &cfg, &r, reward, NULL, &step, &st, &err) == 0, "%s", err.msg);
        CHECK(st.optimizer_steps == 4);
        /* sequences with advantage 0 (every one, once a group's rewards are all
         * equal) skip their forward/backward: the per-token stats cover the rest */
        int zero_adv = 0;
        for (int g = 0; g < N; g += G) {
            int equal = 1;
            for (int i = g + 1; i < g + G; i++) equal &= reward[i] == reward[g];
            zero_adv += equal ? G : 0;
        }
        CHECK(st.skipped_sequences >= cfg.epochs * zero_adv);
        CHECK(isfinite(st.loss) && isfinite(st.grad_norm));
        if (st.skipped_sequences < cfg.epochs * N) {
            CHECK(st.ratio_mean > 0.5f && st.ratio_mean < 2.0f);
            CHECK(st.clip_fraction >= 0.0f && st.clip_fraction <= 1.0f && st.entropy > 0.0f);
        }
        egrc_rollout_free(&r);
    }
    CHECK(step == 4 * STEPS);
    printf("end-to-end: mean reward %.3f over the first %d steps, %.3f over the last %d\n", first, WINDOW, last,
           WINDOW);
    CHECK_MSG(last > first + 0.25, "reward did not rise: %.3f -> %.3f", first, last);
    egrc_model_free(m);
}

int main(void) {
    egrc_error err;
    be = egrc_backend_open("cpu", 0, &err);
    if (!be) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    test_advantages();
    test_gradients_and_clipping();
    test_aggregation_and_kl();
    test_analysis();
    test_end_to_end_learns();
    egrc_backend_close(be);
    return test_finish("test_grpo");
}
