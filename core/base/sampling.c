/* Host-side next-token sampling. The tempered weights w_v = exp((x_v - max) / T)
 * are computed once per token; truncation (top-k, top-p) sorts only a prefix
 * of candidates found by thresholding the weights, so a peaked distribution
 * over a large vocabulary costs one pass plus a small sort. */
#include "sampling.h"

#include <math.h>
#include <stdlib.h>

egrc_sampling_config egrc_sampling_defaults(void) {
    egrc_sampling_config c = {0};
    c.temperature = 1.0f;
    c.top_p = 1.0f;
    c.top_k = 0;
    c.max_new_tokens = 256;
    return c;
}

int egrc_sampling_validate(const egrc_sampling_config *cfg, int vocab_size, egrc_error *err) {
    if (!isfinite(cfg->temperature) || cfg->temperature < 0.0f)
        return egrc_fail(err, "sampling: temperature must be a finite value >= 0, got %g", cfg->temperature);
    if (!(cfg->top_p > 0.0f && cfg->top_p <= 1.0f))
        return egrc_fail(err, "sampling: top_p must lie in (0, 1], got %g", cfg->top_p);
    if (cfg->max_new_tokens < 1)
        return egrc_fail(err, "sampling: max_new_tokens must be at least 1, got %d", cfg->max_new_tokens);
    if (cfg->n_stop < 0 || cfg->n_stop > EGRC_MAX_STOP_TOKENS)
        return egrc_fail(err, "sampling: %d stop tokens (at most %d)", cfg->n_stop, EGRC_MAX_STOP_TOKENS);
    for (int i = 0; i < cfg->n_stop; i++)
        if (cfg->stop_tokens[i] < 0 || cfg->stop_tokens[i] >= vocab_size)
            return egrc_fail(err, "sampling: stop token %d is outside the vocabulary (0..%d)", cfg->stop_tokens[i],
                             vocab_size - 1);
    return 0;
}

int egrc_sampling_is_stop(const egrc_sampling_config *cfg, int32_t token) {
    for (int i = 0; i < cfg->n_stop; i++)
        if (cfg->stop_tokens[i] == token) return 1;
    return 0;
}

int egrc_sampler_init(egrc_sampler *s, int vocab, egrc_error *err) {
    s->vocab = vocab;
    s->weights = malloc((size_t)vocab * sizeof *s->weights);
    s->candidates = malloc((size_t)vocab * sizeof *s->candidates);
    if (!s->weights || !s->candidates) {
        egrc_sampler_free(s);
        return egrc_fail(err, "out of host memory for a %d-token sampler", vocab);
    }
    return 0;
}

void egrc_sampler_free(egrc_sampler *s) {
    free(s->weights);
    free(s->candidates);
    s->weights = NULL;
    s->candidates = NULL;
}

/* Heavier first, then lower id: a total order, so results never depend on qsort's stability. */
static int by_weight_desc(const void *a_, const void *b_) {
    const egrc_sample_candidate *a = a_, *b = b_;
    if (a->weight != b->weight) return a->weight > b->weight ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Collects the tokens with weight >= threshold (a prefix of the sorted order,
 * ties included), lowering the threshold until the prefix is large enough:
 * top-k needs k tokens; top-p alone needs top_p of the total mass. */
static int collect_candidates(egrc_sampler *s, double total, int need_k, float top_p) {
    static const float thresholds[] = {1e-3f, 1e-7f, 1e-20f, 0.0f};
    int count = 0;
    for (size_t t = 0; t < sizeof thresholds / sizeof thresholds[0]; t++) {
        double mass = 0.0;
        count = 0;
        for (int v = 0; v < s->vocab; v++) {
            if (s->weights[v] >= thresholds[t]) {
                s->candidates[count].weight = s->weights[v];
                s->candidates[count].id = v;
                count++;
                mass += s->weights[v];
            }
        }
        if (need_k > 0 ? count >= need_k : mass >= top_p * total) break;
    }
    qsort(s->candidates, (size_t)count, sizeof *s->candidates, by_weight_desc);
    return count;
}

egrc_sample egrc_sample_token(egrc_sampler *s, const float *logits, const egrc_sampling_config *cfg, egrc_rng *rng) {
    const float u = cfg->temperature <= EGRC_GREEDY_TEMPERATURE ? 0.0f : egrc_rng_uniform(rng);
    return egrc_sample_token_u(s, logits, cfg->temperature, cfg->top_p, cfg->top_k, u);
}

egrc_sample egrc_sample_token_u(egrc_sampler *s, const float *logits, float temperature, float top_p, int top_k,
                                float u_draw) {
    const int V = s->vocab;
    int best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    egrc_sample out = {best, 0.0f, 0.0f};
    if (temperature <= EGRC_GREEDY_TEMPERATURE) return out;

    /* log w_v = (x_v - max) / T exactly; the weights themselves may underflow to 0. */
    const double inv_t = 1.0 / temperature, max_logit = logits[best];
    double total = 0.0;
    for (int v = 0; v < V; v++) {
        s->weights[v] = (float)exp((logits[v] - max_logit) * inv_t);
        total += s->weights[v];
    }
    /* u < 1 and the final partial sum equals kept_mass exactly (same order),
     * so the walk always stops; the argmax (weight 1) is always kept. */
    const double u = u_draw;
    const int truncate = (top_k > 0 && top_k < V) || top_p < 1.0f;
    double kept_mass = 0.0, sum_w_logw = 0.0, target;
    int token = -1;
    if (!truncate) {
        kept_mass = total;
        target = u * kept_mass;
        double cum = 0.0;
        for (int v = 0; v < V; v++) {
            double w = s->weights[v];
            if (w <= 0.0) continue;
            sum_w_logw += w * (logits[v] - max_logit) * inv_t;
            cum += w;
            if (token < 0 && cum > target) token = v;
        }
    } else {
        const int need_k = top_k > 0 && top_k < V ? top_k : 0;
        int n = collect_candidates(s, total, need_k, top_p);
        if (need_k > 0 && n > need_k) n = need_k;
        /* without top-k the nucleus is a share of the whole mass, not of the candidates' */
        double topk_mass = need_k > 0 ? 0.0 : total;
        for (int i = 0; i < n && need_k > 0; i++) topk_mass += s->candidates[i].weight;
        /* nucleus: the smallest prefix whose share of the top-k mass reaches top_p (at least one token) */
        int keep = 0;
        for (double cum = 0.0; keep < n;) {
            cum += s->candidates[keep++].weight;
            if (cum >= top_p * topk_mass) break;
        }
        for (int i = 0; i < keep; i++) kept_mass += s->candidates[i].weight;
        target = u * kept_mass;
        double cum = 0.0;
        for (int i = 0; i < keep; i++) {
            double w = s->candidates[i].weight;
            int id = s->candidates[i].id;
            if (w <= 0.0) continue;
            sum_w_logw += w * (logits[id] - max_logit) * inv_t;
            cum += w;
            if (token < 0 && cum > target) token = id;
        }
    }
    double log_mass = log(kept_mass);
    out.token = token;
    out.logprob = (float)((logits[token] - max_logit) * inv_t - log_mass);
    /* H = -sum p log p with p = w / mass: log(mass) - sum(w log w) / mass */
    out.entropy = (float)(log_mass - sum_w_logw / kept_mass);
    return out;
}
