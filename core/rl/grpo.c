/* GRPO: advantages, the PPO-clipped per-token objective reduced to
 * per-token weights dJ/d(loss_i) and dJ/dH_i for the model's weighted
 * backward, and the mini-batch update loop. The rollout's T=1 log-probs are
 * the "old" policy: they equal the training forward's (test_generate checks
 * it), so the first pass over a fresh batch starts at ratio 1. */
#include "grpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EGRC_ADV_STD_EPS 1e-6

egrc_grpo_config egrc_grpo_defaults(void) {
    egrc_grpo_config c;
    memset(&c, 0, sizeof c);
    c.adv.mode = EGRC_ADV_GRPO;
    c.adv.group_size = 8;
    c.adv.beta = 1.0f;
    c.adv.length_weight = 1.0f;
    c.clip_low = 0.2f;
    c.clip_high = 0.2f;
    c.agg = EGRC_AGG_SEQ_MEAN_TOKEN_MEAN;
    c.epochs = 1;
    c.optim = egrc_optim_defaults(1);
    c.optim.lr = 1e-6f;
    c.optim.min_lr = 1e-6f;
    c.optim.weight_decay = 0.0f;
    return c;
}

/* Mean of the group's x over samples with gate > 0 (all when gate is NULL),
 * and 1 / (std + eps) with the n-1 std (0 std for fewer than 2 samples). */
static void group_stats(const float *x, const float *gate, int G, double *mean, double *inv_scale) {
    double sum = 0.0, sq = 0.0;
    int count = 0;
    for (int i = 0; i < G; i++) {
        if (gate && !(gate[i] > 0.0f)) continue;
        sum += x[i];
        count++;
    }
    *mean = count ? sum / count : 0.0;
    for (int i = 0; i < G; i++)
        if (!gate || gate[i] > 0.0f) sq += (x[i] - *mean) * (x[i] - *mean);
    double std = count > 1 ? sqrt(sq / (count - 1)) : 0.0;
    *inv_scale = 1.0 / (std + EGRC_ADV_STD_EPS);
}

static int all_equal(const float *x, int G) {
    for (int i = 1; i < G; i++)
        if (x[i] != x[0]) return 0;
    return 1;
}

int egrc_advantages(const egrc_adv_config *cfg, const float *reward, const float *length_reward, int n, float *adv,
                    unsigned char *keep, int *zero_variance_groups, egrc_error *err) {
    const int G = cfg->group_size;
    if (G < 1 || n < 1 || n % G != 0) return egrc_fail(err, "advantages: %d samples do not form groups of %d", n, G);
    if (cfg->mode == EGRC_ADV_DECOMPOSED && !length_reward)
        return egrc_fail(err, "advantages: the decomposed mode needs the length reward term");
    int zero_variance = 0;
    for (int g = 0; g < n; g += G) {
        const float *R = reward + g, *len = length_reward ? length_reward + g : NULL;
        float *A = adv + g;
        const int equal = all_equal(R, G) && (cfg->mode != EGRC_ADV_DECOMPOSED || all_equal(len, G));
        zero_variance += equal;
        double mean, inv_scale;
        switch (cfg->mode) {
        case EGRC_ADV_GRPO:
        case EGRC_ADV_DR_GRPO:
            group_stats(R, NULL, G, &mean, &inv_scale);
            for (int i = 0; i < G; i++)
                A[i] = (float)((R[i] - mean) * (cfg->mode == EGRC_ADV_GRPO ? inv_scale : 1.0));
            break;
        case EGRC_ADV_ABSOLUTE:
            for (int i = 0; i < G; i++) A[i] = cfg->beta * R[i];
            break;
        case EGRC_ADV_DECOMPOSED: {
            group_stats(R, NULL, G, &mean, &inv_scale);
            double len_mean, len_inv_scale;
            group_stats(len, R, G, &len_mean, &len_inv_scale);
            for (int i = 0; i < G; i++) {
                double a_acc = (R[i] - mean) * inv_scale;
                double a_len = R[i] > 0.0f ? (len[i] - len_mean) * len_inv_scale : 0.0;
                double a = a_acc + cfg->length_weight * a_len;
                A[i] = (float)(a_acc > 0.0 && a < 0.0 ? 0.0 : a);
            }
            break;
        }
        default:
            return egrc_fail(err, "advantages: unknown mode %d", (int)cfg->mode);
        }
        const int drop = equal && cfg->filter_zero_variance;
        for (int i = 0; i < G; i++) {
            if ((cfg->positive_only && A[i] < 0.0f) || drop) A[i] = 0.0f;
            if (keep) keep[g + i] = !drop;
        }
    }
    if (zero_variance_groups) *zero_variance_groups = zero_variance;
    return 0;
}

/* Host staging for micro-batches of up to `rows` sequences of r. */
typedef struct workspace {
    int32_t *tokens, *targets;
    int *index;
    float *loss, *entropy, *dloss, *dentropy;
} workspace;

static void workspace_free(workspace *w) {
    free(w->tokens);
    free(w->targets);
    free(w->index);
    free(w->loss);
    free(w->entropy);
    free(w->dloss);
    free(w->dentropy);
}

static int workspace_init(workspace *w, const egrc_rollout *r, int rows, egrc_error *err) {
    const size_t n = (size_t)rows * r->stride;
    w->tokens = malloc(n * sizeof(int32_t));
    w->targets = malloc(n * sizeof(int32_t));
    w->index = malloc((size_t)rows * sizeof(int));
    w->loss = malloc(n * sizeof(float));
    w->entropy = malloc(n * sizeof(float));
    w->dloss = malloc(n * sizeof(float));
    w->dentropy = malloc(n * sizeof(float));
    if (!w->tokens || !w->targets || !w->index || !w->loss || !w->entropy || !w->dloss || !w->dentropy) {
        workspace_free(w);
        return egrc_fail(err, "out of host memory for %d training rows of %d", rows, r->stride);
    }
    return 0;
}

int egrc_grpo_reference_logprobs(egrc_model *ref, const egrc_rollout *r, int micro_batch, float *out,
                                 egrc_error *err) {
    const int micro = micro_batch > 0 && micro_batch < r->n ? micro_batch : r->n;
    workspace w = {0};
    if (workspace_init(&w, r, micro, err)) return -1;
    memset(out, 0, (size_t)r->n * r->max_new * sizeof(float));
    int rc = 0;
    for (int first = 0; first < r->n && rc == 0; first += micro) {
        int T, count = r->n - first < micro ? r->n - first : micro;
        int rows = egrc_rollout_batch(r, first, count, NULL, w.tokens, w.targets, w.index, &T);
        rc = egrc_model_forward(ref, w.tokens, w.targets, rows, T, NULL, err);
        if (rc) break;
        egrc_model_download_losses(ref, w.loss);
        for (int b = 0; b < rows; b++) {
            const int i = w.index[b];
            for (int j = 0; j < r->length[i]; j++)
                out[(size_t)i * r->max_new + j] = -w.loss[(size_t)b * T + r->prompt_len[i] + j - 1];
        }
    }
    workspace_free(&w);
    return rc ? egrc_error_prefix(err, "reference log-probs") : 0;
}

/* Token statistics summed over passes. */
typedef struct tally {
    double ratio, kl, entropy;
    long tokens, clipped;
    int skipped;
} tally;

/* One mini-batch: the objective (and, with backward, its accumulated
 * gradient), micro-batch by micro-batch. *kept receives the number of
 * sequences that count (0: nothing to optimise). */
static int minibatch(egrc_model *m, const egrc_grpo_config *cfg, const egrc_rollout *r, const float *adv,
                     const unsigned char *keep, const float *ref_logprob, int first, int count, int backward,
                     double *loss, int *kept, tally *t, egrc_error *err) {
    *loss = 0.0;
    int S = 0;
    long tokens = 0;
    for (int i = first; i < first + count; i++) {
        if (keep && !keep[i]) continue;
        S++;
        tokens += r->length[i];
    }
    *kept = S;
    if (S == 0 || tokens == 0) return 0;
    if (cfg->kl_coef != 0.0f && !ref_logprob) return egrc_fail(err, "GRPO loss: kl_coef needs reference log-probs");
    const int micro = cfg->micro_batch > 0 && cfg->micro_batch < count ? cfg->micro_batch : count;
    /* A sequence whose advantage is 0 contributes nothing to the gradient
     * unless a KL or entropy term acts on it: it still counts in the
     * normalisation above, but its forward and backward are skipped (the
     * method's stage 1 gives most samples A = 0). */
    unsigned char *compute = malloc((size_t)(first + count));
    if (!compute) return egrc_fail(err, "out of host memory");
    const int terms_on_all = cfg->kl_coef != 0.0f || cfg->entropy_coef != 0.0f;
    for (int i = first; i < first + count; i++) {
        compute[i] = (!keep || keep[i]) && (terms_on_all || adv[i] != 0.0f);
        t->skipped += (!keep || keep[i]) && !compute[i];
    }
    workspace w = {0};
    if (workspace_init(&w, r, micro, err)) {
        free(compute);
        return -1;
    }
    const float lo = 1.0f - cfg->clip_low, hi = 1.0f + cfg->clip_high;
    double total = 0.0;
    int rc = 0;
    for (int a = first; a < first + count; a += micro) {
        int T, rows = egrc_rollout_batch(r, a, first + count - a < micro ? first + count - a : micro, compute,
                                         w.tokens, w.targets, w.index, &T);
        if (rows == 0) continue;
        if ((rc = egrc_model_forward(m, w.tokens, w.targets, rows, T, NULL, err))) break;
        egrc_model_download_losses(m, w.loss);
        egrc_model_download_entropy(m, w.entropy);
        const size_t N = (size_t)rows * T;
        memset(w.dloss, 0, N * sizeof(float));
        memset(w.dentropy, 0, N * sizeof(float));
        for (int b = 0; b < rows; b++) {
            const int i = w.index[b], len = r->length[i];
            const double A = adv[i];
            /* weight of one token's loss in the aggregate */
            const double wt = cfg->agg == EGRC_AGG_SEQ_MEAN_TOKEN_MEAN  ? 1.0 / ((double)S * len)
                              : cfg->agg == EGRC_AGG_SEQ_MEAN_TOKEN_SUM ? 1.0 / ((double)S * r->max_new)
                                                                        : 1.0 / (double)tokens;
            for (int j = 0; j < len; j++) {
                const size_t pos = (size_t)b * T + r->prompt_len[i] + j - 1, k = (size_t)i * r->max_new + j;
                const double logp = -w.loss[pos], ratio = exp(logp - r->logprob[k]);
                const double clipped_ratio = ratio < lo ? lo : ratio > hi ? hi : ratio;
                /* -min(ratio A, clip(ratio) A): where the clipped term is the smaller one it is
                 * constant in logp, so the token gives no surrogate gradient. */
                double l, dl_dlogp;
                if (clipped_ratio * A < ratio * A) {
                    l = -clipped_ratio * A;
                    dl_dlogp = 0.0;
                    t->clipped++;
                } else {
                    l = -ratio * A;
                    dl_dlogp = -ratio * A; /* d ratio / d logp = ratio */
                }
                if (cfg->kl_coef != 0.0f) {
                    const double delta = ref_logprob[k] - logp, k3 = exp(delta) - delta - 1.0;
                    l += cfg->kl_coef * k3;
                    dl_dlogp += cfg->kl_coef * (1.0 - exp(delta));
                    t->kl += k3;
                }
                l -= cfg->entropy_coef * w.entropy[pos];
                total += wt * l;
                /* the model's loss_i is -logp, so dJ/d(loss_i) = -dJ/d(logp) */
                w.dloss[pos] = (float)(-wt * dl_dlogp);
                w.dentropy[pos] = (float)(-wt * cfg->entropy_coef);
                t->ratio += ratio;
                t->entropy += w.entropy[pos];
                t->tokens++;
            }
        }
        if (backward && (rc = egrc_model_backward_weighted(m, w.dloss, cfg->entropy_coef != 0.0f ? w.dentropy : NULL,
                                                           err)))
            break;
    }
    workspace_free(&w);
    free(compute);
    *loss = total;
    return rc ? egrc_error_prefix(err, "GRPO mini-batch at sequence %d", first) : 0;
}

int egrc_grpo_loss(egrc_model *m, const egrc_grpo_config *cfg, const egrc_rollout *r, const float *adv,
                   const unsigned char *keep, const float *ref_logprob, int first, int count, int backward,
                   double *loss, egrc_error *err) {
    if (first < 0 || count < 1 || first + count > r->n)
        return egrc_fail(err, "GRPO loss: sequences [%d, %d) outside the batch of %d", first, first + count, r->n);
    tally t = {0};
    int kept;
    return minibatch(m, cfg, r, adv, keep, ref_logprob, first, count, backward, loss, &kept, &t, err);
}

int egrc_grpo_step(egrc_model *policy, egrc_model *ref, const egrc_grpo_config *cfg, const egrc_rollout *r,
                   const float *reward, const float *length_reward, int *step, egrc_grpo_stats *stats,
                   egrc_error *err) {
    memset(stats, 0, sizeof *stats);
    if (cfg->kl_coef != 0.0f && !ref) return egrc_fail(err, "GRPO: kl_coef %g needs a reference model", cfg->kl_coef);
    if (cfg->epochs < 1) return egrc_fail(err, "GRPO: epochs must be at least 1, got %d", cfg->epochs);
    const int n = r->n;
    float *adv = malloc((size_t)n * sizeof(float)), *ref_logprob = NULL;
    unsigned char *keep = malloc((size_t)n);
    int rc = -1;
    if (!adv || !keep) {
        egrc_fail(err, "out of host memory");
        goto done;
    }
    if (egrc_advantages(&cfg->adv, reward, length_reward, n, adv, keep, &stats->zero_variance_groups, err)) goto done;
    for (int i = 0; i < n; i++) {
        stats->reward_mean += reward[i] / (float)n;
        stats->advantage_mean += adv[i] / (float)n;
        stats->filtered_sequences += !keep[i];
    }
    if (cfg->kl_coef != 0.0f) {
        ref_logprob = malloc((size_t)n * r->max_new * sizeof(float));
        if (!ref_logprob) {
            egrc_fail(err, "out of host memory");
            goto done;
        }
        if (egrc_grpo_reference_logprobs(ref, r, cfg->micro_batch, ref_logprob, err)) goto done;
    }
    const int mini = cfg->mini_batch > 0 && cfg->mini_batch < n ? cfg->mini_batch : n;
    tally t = {0};
    double loss_sum = 0.0, norm_sum = 0.0;
    for (int e = 0; e < cfg->epochs; e++) {
        for (int first = 0; first < n; first += mini) {
            double loss;
            int kept;
            egrc_model_zero_grad(policy);
            if (minibatch(policy, cfg, r, adv, keep, ref_logprob, first, n - first < mini ? n - first : mini, 1, &loss,
                          &kept, &t, err))
                goto done;
            if (kept == 0) continue;
            float norm;
            if (egrc_model_optimizer_step(policy, &cfg->optim, *step, &norm, err)) goto done;
            (*step)++;
            loss_sum += loss;
            norm_sum += norm;
            stats->optimizer_steps++;
        }
    }
    if (stats->optimizer_steps) {
        stats->loss = (float)(loss_sum / stats->optimizer_steps);
        stats->grad_norm = (float)(norm_sum / stats->optimizer_steps);
    }
    stats->skipped_sequences = t.skipped;
    if (t.tokens) {
        stats->ratio_mean = (float)(t.ratio / t.tokens);
        stats->clip_fraction = (float)t.clipped / (float)t.tokens;
        stats->kl = (float)(t.kl / t.tokens);
        stats->entropy = (float)(t.entropy / t.tokens);
    }
    rc = 0;
done:
    free(adv);
    free(keep);
    free(ref_logprob);
    return rc;
}
