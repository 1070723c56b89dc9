/* Entropy analysis: one forward sweep collects per-token entropy, target
 * probability and sum p^2; optional backward sweeps give the objectives'
 * parameter gradients restricted to high- or low-entropy tokens. */
#include "analyze.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"

egrc_analyze_config egrc_analyze_defaults(void) {
    egrc_analyze_config c = {10, 0.2f, 20, 0, 1};
    return c;
}

void egrc_analysis_free(egrc_analysis *a) {
    free(a->bins);
    free(a->top);
    memset(a, 0, sizeof *a);
}

/* Per completion token, in batch order (sequence by sequence, token by token). */
typedef struct token_stats {
    float *entropy, *logit_grad;
    int32_t *token;
    int *seq;
    unsigned char *high;
} token_stats;

/* Host staging and two device vectors for the sum p^2 pass. */
typedef struct sweep {
    int micro;
    int32_t *tokens, *targets;
    int *index;
    float *loss, *entropy, *lse, *lse2, *dloss;
    float *d_loss2, *d_lse2;
} sweep;

static void sweep_free(egrc_model *m, sweep *s) {
    free(s->tokens);
    free(s->targets);
    free(s->index);
    free(s->loss);
    free(s->entropy);
    free(s->lse);
    free(s->lse2);
    free(s->dloss);
    if (s->d_loss2) m->be->ops->free(m->be, s->d_loss2);
    if (s->d_lse2) m->be->ops->free(m->be, s->d_lse2);
}

static int sweep_init(egrc_model *m, sweep *s, const egrc_rollout *r, int micro, egrc_error *err) {
    const size_t n = (size_t)micro * r->stride;
    s->micro = micro;
    s->tokens = malloc(n * sizeof(int32_t));
    s->targets = malloc(n * sizeof(int32_t));
    s->index = malloc((size_t)micro * sizeof(int));
    s->loss = malloc(n * sizeof(float));
    s->entropy = malloc(n * sizeof(float));
    s->lse = malloc(n * sizeof(float));
    s->lse2 = malloc(n * sizeof(float));
    s->dloss = malloc(n * sizeof(float));
    if (!s->tokens || !s->targets || !s->index || !s->loss || !s->entropy || !s->lse || !s->lse2 || !s->dloss)
        return egrc_fail(err, "out of host memory for the analysis");
    s->d_loss2 = m->be->ops->alloc(m->be, n * sizeof(float), err);
    s->d_lse2 = s->d_loss2 ? m->be->ops->alloc(m->be, n * sizeof(float), err) : NULL;
    return s->d_lse2 ? 0 : -1;
}

/* Forward sweep: entropy, and |e_a - p| from p_a = exp(-loss) and
 * sum p^2 = exp(lse(2z) - 2 lse(z)). The logits are doubled in place with
 * `add` (exact in any act_dtype) and run through cross_entropy_forward again,
 * so no (N,V) probabilities leave the device. */
static int forward_sweep(egrc_model *m, const egrc_rollout *r, sweep *s, token_stats *ts, egrc_error *err) {
    egrc_backend *be = m->be;
    const int V = m->cfg.vocab_size;
    long k = 0;
    for (int first = 0; first < r->n; first += s->micro) {
        int T, rows = egrc_rollout_batch(r, first, r->n - first < s->micro ? r->n - first : s->micro, NULL,
                                         s->tokens, s->targets, s->index, &T);
        const size_t N = (size_t)rows * T;
        if (egrc_model_forward(m, s->tokens, s->targets, rows, T, NULL, err)) return -1;
        egrc_model_download_losses(m, s->loss);
        egrc_model_download_entropy(m, s->entropy);
        be->ops->download(be, s->lse, m->lse, N * sizeof(float));
        be->ops->add(be, m->logits, m->logits, N * (size_t)V);
        be->ops->cross_entropy_forward(be, s->d_loss2, s->d_lse2, NULL, m->logits, m->targets, (int)N, V);
        if (egrc_backend_download(be, s->lse2, s->d_lse2, N * sizeof(float), err)) return -1;
        for (int b = 0; b < rows; b++) {
            const int i = s->index[b];
            for (int j = 0; j < r->length[i]; j++, k++) {
                const size_t pos = (size_t)b * T + r->prompt_len[i] + j - 1;
                double p_a = exp(-(double)s->loss[pos]), sum_p2 = exp((double)s->lse2[pos] - 2.0 * s->lse[pos]);
                double sq = 1.0 - 2.0 * p_a + sum_p2; /* cancels when p_a -> 1: clamp rounding below 0 */
                ts->entropy[k] = s->entropy[pos];
                ts->logit_grad[k] = (float)sqrt(sq > 0.0 ? sq : 0.0);
                ts->token[k] = s->targets[pos];
                ts->seq[k] = i;
            }
        }
    }
    return 0;
}

/* Gradient of sum over selected tokens of adv[seq] * loss / count, into host g. */
static int masked_gradient(egrc_model *m, const egrc_rollout *r, sweep *s, const token_stats *ts, int want_high,
                           long count, const float *adv, float *g, egrc_error *err) {
    egrc_model_zero_grad(m);
    long k = 0;
    for (int first = 0; first < r->n; first += s->micro) {
        int T, rows = egrc_rollout_batch(r, first, r->n - first < s->micro ? r->n - first : s->micro, NULL,
                                         s->tokens, s->targets, s->index, &T);
        memset(s->dloss, 0, (size_t)rows * T * sizeof(float));
        for (int b = 0; b < rows; b++) {
            const int i = s->index[b];
            for (int j = 0; j < r->length[i]; j++, k++)
                if (ts->high[k] == want_high)
                    s->dloss[(size_t)b * T + r->prompt_len[i] + j - 1] = adv[i] / (float)count;
        }
        if (egrc_model_forward(m, s->tokens, s->targets, rows, T, NULL, err) ||
            egrc_model_backward_weighted(m, s->dloss, NULL, err))
            return -1;
    }
    return egrc_backend_download(m->be, g, m->grads, m->n_params * sizeof(float), err);
}

static void cosine(const float *a, const float *b, size_t n, double *cos, double *norm_a, double *norm_b) {
    double dot = 0.0, aa = 0.0, bb = 0.0;
    for (size_t i = 0; i < n; i++) {
        dot += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    *norm_a = sqrt(aa);
    *norm_b = sqrt(bb);
    *cos = aa > 0.0 && bb > 0.0 ? dot / (*norm_a * *norm_b) : 0.0;
}

static void bucket_add(egrc_entropy_bucket *b, double h, double grad, double acc, double comp) {
    b->count++;
    b->mean_entropy += h;
    b->logit_grad += grad;
    b->acc_grad += fabs(acc) * grad;
    b->comp_grad += fabs(comp) * grad;
}

static void bucket_finish(egrc_entropy_bucket *b) {
    if (!b->count) return;
    b->mean_entropy /= (double)b->count;
    b->logit_grad /= (double)b->count;
    b->acc_grad /= (double)b->count;
    b->comp_grad /= (double)b->count;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int cmp_token_count(const void *a_, const void *b_) {
    const egrc_token_count *a = a_, *b = b_;
    if (a->high != b->high) return a->high > b->high ? -1 : 1;
    return (a->token > b->token) - (a->token < b->token);
}

/* Histogram, high/low split and the tail's tokens, from the per-token stats. */
static int summarise(const egrc_model *m, const egrc_analyze_config *cfg, token_stats *ts, long n,
                     const float *adv_acc, const float *adv_comp, egrc_analysis *out, egrc_error *err) {
    const int V = m->cfg.vocab_size;
    float *sorted = malloc((size_t)n * sizeof(float));
    egrc_token_count *counts = calloc((size_t)V, sizeof *counts);
    out->bins = calloc((size_t)cfg->bins, sizeof *out->bins);
    if (!sorted || !counts || !out->bins) {
        free(sorted);
        free(counts);
        return egrc_fail(err, "out of host memory for the analysis");
    }
    memcpy(sorted, ts->entropy, (size_t)n * sizeof(float));
    qsort(sorted, (size_t)n, sizeof(float), cmp_float);
    long cut = (long)((1.0 - cfg->high_fraction) * (double)n);
    out->high_threshold = sorted[cut < n ? cut : n - 1];
    free(sorted);

    const double width = log((double)V) / cfg->bins;
    out->n_bins = cfg->bins;
    for (int b = 0; b < cfg->bins; b++) {
        out->bins[b].lo = (float)(b * width);
        out->bins[b].hi = (float)((b + 1) * width);
    }
    out->high.lo = out->low.hi = out->high_threshold;
    out->high.hi = out->bins[cfg->bins - 1].hi;
    for (int v = 0; v < V; v++) counts[v].token = v;
    double sum_h = 0.0;
    for (long k = 0; k < n; k++) {
        const double h = ts->entropy[k], g = ts->logit_grad[k];
        const double a = adv_acc[ts->seq[k]], c = adv_comp[ts->seq[k]];
        int b = (int)(h / width);
        b = b < 0 ? 0 : b >= cfg->bins ? cfg->bins - 1 : b;
        bucket_add(&out->bins[b], h, g, a, c);
        ts->high[k] = ts->entropy[k] >= out->high_threshold;
        bucket_add(ts->high[k] ? &out->high : &out->low, h, g, a, c);
        counts[ts->token[k]].all++;
        counts[ts->token[k]].high += ts->high[k];
        sum_h += h;
    }
    for (int b = 0; b < cfg->bins; b++) bucket_finish(&out->bins[b]);
    bucket_finish(&out->high);
    bucket_finish(&out->low);
    out->tokens = n;
    out->mean_entropy = sum_h / (double)n;

    qsort(counts, (size_t)V, sizeof *counts, cmp_token_count);
    int top = 0;
    while (top < cfg->top_tokens && top < V && counts[top].high > 0) top++;
    out->top = malloc((size_t)(top ? top : 1) * sizeof *out->top);
    if (!out->top) {
        free(counts);
        return egrc_fail(err, "out of host memory for the analysis");
    }
    memcpy(out->top, counts, (size_t)top * sizeof *out->top);
    out->n_top = top;
    free(counts);
    return 0;
}

int egrc_analyze(egrc_model *m, const egrc_rollout *r, const float *adv_acc, const float *adv_comp,
                 const egrc_analyze_config *cfg, egrc_analysis *out, egrc_error *err) {
    memset(out, 0, sizeof *out);
    if (cfg->bins < 1 || !(cfg->high_fraction > 0.0f && cfg->high_fraction < 1.0f) || cfg->top_tokens < 0)
        return egrc_fail(err, "analysis: bins %d (>= 1), high fraction %g (in (0, 1)), top tokens %d (>= 0)",
                         cfg->bins, cfg->high_fraction, cfg->top_tokens);
    long n = 0;
    for (int i = 0; i < r->n; i++) n += r->length[i];
    if (n == 0) return egrc_fail(err, "analysis: the completions are empty");
    const int micro = cfg->micro_batch > 0 && cfg->micro_batch < r->n ? cfg->micro_batch : r->n;
    token_stats ts = {malloc((size_t)n * sizeof(float)), malloc((size_t)n * sizeof(float)),
                      malloc((size_t)n * sizeof(int32_t)), malloc((size_t)n * sizeof(int)), malloc((size_t)n)};
    sweep s = {0};
    float *g_acc = NULL, *g_comp = NULL;
    int rc = -1;
    if (!ts.entropy || !ts.logit_grad || !ts.token || !ts.seq || !ts.high) {
        egrc_fail(err, "out of host memory for %ld analysed tokens", n);
        goto done;
    }
    if (sweep_init(m, &s, r, micro, err) || forward_sweep(m, r, &s, &ts, err) ||
        summarise(m, cfg, &ts, n, adv_acc, adv_comp, out, err))
        goto done;
    if (cfg->gradients) {
        g_acc = malloc(m->n_params * sizeof(float));
        g_comp = malloc(m->n_params * sizeof(float));
        if (!g_acc || !g_comp) {
            egrc_fail(err, "out of host memory for two gradient copies (%zu parameters)", m->n_params);
            goto done;
        }
        for (int want_high = 1; want_high >= 0; want_high--) {
            long count = want_high ? out->high.count : out->low.count;
            if (count == 0) continue;
            if (masked_gradient(m, r, &s, &ts, want_high, count, adv_acc, g_acc, err) ||
                masked_gradient(m, r, &s, &ts, want_high, count, adv_comp, g_comp, err))
                goto done;
            if (want_high) cosine(g_acc, g_comp, m->n_params, &out->cos_high, &out->norm_acc_high, &out->norm_comp_high);
            else cosine(g_acc, g_comp, m->n_params, &out->cos_low, &out->norm_acc_low, &out->norm_comp_low);
        }
        egrc_model_zero_grad(m);
        out->has_gradients = 1;
    }
    rc = 0;
done:
    free(ts.entropy);
    free(ts.logit_grad);
    free(ts.token);
    free(ts.seq);
    free(ts.high);
    sweep_free(m, &s);
    free(g_acc);
    free(g_comp);
    if (rc) {
        egrc_analysis_free(out);
        egrc_error_prefix(err, "entropy analysis");
    }
    return rc;
}

static void print_bucket(FILE *f, const char *label, const egrc_entropy_bucket *b) {
    fprintf(f, "%-16s %8ld %9.3f %10.4f %12.4f %12.4f\n", label, b->count, b->mean_entropy, b->logit_grad, b->acc_grad,
            b->comp_grad);
}

void egrc_analysis_print(const egrc_analysis *a, FILE *f) {
    fprintf(f, "%ld completion tokens, mean entropy %.3f nats, high-entropy threshold %.3f\n", a->tokens,
            a->mean_entropy, (double)a->high_threshold);
    fprintf(f, "%-16s %8s %9s %10s %12s %12s\n", "entropy", "tokens", "mean H", "|e_a - p|", "acc |A||.|",
            "comp |A||.|");
    for (int b = 0; b < a->n_bins; b++) {
        char label[32];
        snprintf(label, sizeof label, "[%.2f, %.2f)", (double)a->bins[b].lo, (double)a->bins[b].hi);
        print_bucket(f, label, &a->bins[b]);
    }
    print_bucket(f, "high (top)", &a->high);
    print_bucket(f, "low (rest)", &a->low);
    fprintf(f, "high-entropy tokens (id: count at high positions / all positions):");
    for (int t = 0; t < a->n_top; t++) fprintf(f, " %d: %ld/%ld", a->top[t].token, a->top[t].high, a->top[t].all);
    fprintf(f, "\n");
    if (a->has_gradients)
        fprintf(f, "accuracy vs compression gradient cosine: high %.4f (norms %.4g, %.4g), low %.4f (norms %.4g, %.4g)\n",
                a->cos_high, a->norm_acc_high, a->norm_comp_high, a->cos_low, a->norm_acc_low, a->norm_comp_low);
}

static cJSON *bucket_json(const egrc_entropy_bucket *b) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "lo", b->lo);
    cJSON_AddNumberToObject(o, "hi", b->hi);
    cJSON_AddNumberToObject(o, "count", (double)b->count);
    cJSON_AddNumberToObject(o, "mean_entropy", b->mean_entropy);
    cJSON_AddNumberToObject(o, "logit_grad", b->logit_grad);
    cJSON_AddNumberToObject(o, "acc_grad", b->acc_grad);
    cJSON_AddNumberToObject(o, "comp_grad", b->comp_grad);
    return o;
}

char *egrc_analysis_to_json(const egrc_analysis *a) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddNumberToObject(root, "tokens", (double)a->tokens);
    cJSON_AddNumberToObject(root, "mean_entropy", a->mean_entropy);
    cJSON_AddNumberToObject(root, "high_threshold", a->high_threshold);
    cJSON *bins = cJSON_AddArrayToObject(root, "bins");
    for (int b = 0; b < a->n_bins; b++) cJSON_AddItemToArray(bins, bucket_json(&a->bins[b]));
    cJSON_AddItemToObject(root, "high", bucket_json(&a->high));
    cJSON_AddItemToObject(root, "low", bucket_json(&a->low));
    cJSON *top = cJSON_AddArrayToObject(root, "top_tokens");
    for (int t = 0; t < a->n_top; t++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "token", a->top[t].token);
        cJSON_AddNumberToObject(o, "high", (double)a->top[t].high);
        cJSON_AddNumberToObject(o, "all", (double)a->top[t].all);
        cJSON_AddItemToArray(top, o);
    }
    if (a->has_gradients) {
        cJSON *g = cJSON_AddObjectToObject(root, "gradient_cosine");
        cJSON_AddNumberToObject(g, "high", a->cos_high);
        cJSON_AddNumberToObject(g, "low", a->cos_low);
        cJSON_AddNumberToObject(g, "norm_acc_high", a->norm_acc_high);
        cJSON_AddNumberToObject(g, "norm_comp_high", a->norm_comp_high);
        cJSON_AddNumberToObject(g, "norm_acc_low", a->norm_acc_low);
        cJSON_AddNumberToObject(g, "norm_comp_low", a->norm_comp_low);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

int egrc_analysis_write_json(const egrc_analysis *a, const char *path, egrc_error *err) {
    char *text = egrc_analysis_to_json(a);
    if (!text) return egrc_fail(err, "%s: out of memory formatting the analysis", path);
    int rc = egrc_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}
