/* Finite-difference checks of every backward op of the CPU backend.
 *
 * For an op y = f(x) and a fixed random projection R, the scalar
 * L = sum(y * R) (accumulated in double) has dL/dx = backward(dout = R). Each
 * check perturbs sampled input elements by +-h and compares the central
 * difference with the analytic gradient, relative to the gradient's largest
 * magnitude. It also checks the contract's accumulate-vs-overwrite rule by
 * pre-filling gradient buffers with a known value. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "base/rng.h"
#include "test.h"

#define STEP 1e-2
#define TOLERANCE 2e-2
#define PREFILL 0.25f
#define SAMPLES 48

static egrc_backend *be;
static egrc_rng rng;

static float *random_buffer(size_t n, float scale) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = scale * egrc_rng_normal(&rng);
    return x;
}

static float *filled(size_t n, float value) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = value;
    return x;
}

/* An op under test: run() recomputes the output from the current inputs. */
typedef struct op_case {
    void (*run)(struct op_case *c);
    float *out;
    size_t out_n;
    float *projection; /* R */
    void *state;
} op_case;

static double projected_loss(op_case *c) {
    c->run(c);
    double sum = 0.0;
    for (size_t i = 0; i < c->out_n; i++) sum += (double)c->out[i] * c->projection[i];
    return sum;
}

/* Compares analytic[i] (minus `prefill`, for accumulating outputs) with the
 * central difference in x[i] over sampled i. */
static void check_gradient(const char *name, op_case *c, float *x, size_t n, const float *analytic, float prefill) {
    double max_analytic = 1e-6, max_error = 0.0;
    for (size_t i = 0; i < n; i++) max_analytic = fmax(max_analytic, fabs(analytic[i] - prefill));
    for (int s = 0; s < SAMPLES; s++) {
        size_t i = n <= SAMPLES ? (size_t)s % n : egrc_rng_below(&rng, (uint32_t)n);
        float saved = x[i];
        x[i] = saved + (float)STEP;
        double plus = projected_loss(c);
        x[i] = saved - (float)STEP;
        double minus = projected_loss(c);
        x[i] = saved;
        double numeric = (plus - minus) / (2.0 * STEP);
        max_error = fmax(max_error, fabs(numeric - (analytic[i] - prefill)));
    }
    c->run(c);
    CHECK_MSG(max_error <= TOLERANCE * max_analytic, "%s: max error %.3e vs max gradient %.3e", name, max_error,
              max_analytic);
}

/* ---- matmul ---- */
typedef struct { float *inp, *w, *bias; int N, C, OC; } matmul_state;
static void run_matmul(op_case *c) {
    matmul_state *s = c->state;
    be->ops->matmul_forward(be, c->out, s->inp, s->w, s->bias, s->N, s->C, s->OC);
}
static void test_matmul(int N, int with_bias) {
    const int C = 7, OC = 6;
    matmul_state s = {random_buffer((size_t)N * C, 1), random_buffer(OC * C, 1), with_bias ? random_buffer(OC, 1) : NULL,
                      N, C, OC};
    op_case c = {run_matmul, filled((size_t)N * OC, 0), (size_t)N * OC, random_buffer((size_t)N * OC, 1), &s};
    float *dinp = filled((size_t)N * C, PREFILL), *dw = filled(OC * C, PREFILL), *db = filled(OC, PREFILL);
    be->ops->matmul_backward(be, dinp, dw, with_bias ? db : NULL, c.projection, s.inp, s.w, N, C, OC);
    check_gradient("matmul dinp (overwritten)", &c, s.inp, (size_t)N * C, dinp, 0.0f);
    check_gradient("matmul dw (accumulated)", &c, s.w, OC * C, dw, PREFILL);
    if (with_bias) check_gradient("matmul dbias (accumulated)", &c, s.bias, OC, db, PREFILL);
    free(dinp), free(dw), free(db), free(c.out), free(c.projection), free(s.inp), free(s.w), free(s.bias);
}

/* ---- layernorm / rmsnorm ---- */
typedef struct { float *inp, *w, *b, *mean, *rstd; int N, C, rms; } norm_state;
static void run_norm(op_case *c) {
    norm_state *s = c->state;
    if (s->rms) be->ops->rmsnorm_forward(be, c->out, s->rstd, s->inp, s->w, s->N, s->C, 1e-5f);
    else be->ops->layernorm_forward(be, c->out, s->mean, s->rstd, s->inp, s->w, s->b, s->N, s->C, 1e-5f);
}
static void test_norm(int rms) {
    const int N = 4, C = 16;
    norm_state s = {random_buffer(N * C, 1), random_buffer(C, 1), random_buffer(C, 1), filled(N, 0), filled(N, 0), N, C,
                    rms};
    op_case c = {run_norm, filled(N * C, 0), (size_t)N * C, random_buffer(N * C, 1), &s};
    run_norm(&c);
    float *dinp = filled(N * C, PREFILL), *dw = filled(C, PREFILL), *db = filled(C, PREFILL);
    if (rms) be->ops->rmsnorm_backward(be, dinp, dw, c.projection, s.inp, s.w, s.rstd, N, C);
    else be->ops->layernorm_backward(be, dinp, dw, db, c.projection, s.inp, s.w, s.mean, s.rstd, N, C);
    check_gradient(rms ? "rmsnorm dinp (accumulated)" : "layernorm dinp (accumulated)", &c, s.inp, (size_t)N * C, dinp,
                   PREFILL);
    check_gradient(rms ? "rmsnorm dw" : "layernorm dw", &c, s.w, C, dw, PREFILL);
    if (!rms) check_gradient("layernorm db", &c, s.b, C, db, PREFILL);
    free(dinp), free(dw), free(db), free(c.out), free(c.projection);
    free(s.inp), free(s.w), free(s.b), free(s.mean), free(s.rstd);
}

/* ---- activations ---- */
typedef struct { float *inp; int N, hidden, swiglu; } act_state;
static void run_act(op_case *c) {
    act_state *s = c->state;
    if (s->swiglu) be->ops->swiglu_forward(be, c->out, s->inp, s->N, s->hidden);
    else be->ops->gelu_forward(be, c->out, s->inp, (size_t)s->N * s->hidden);
}
static void test_activation(int swiglu) {
    const int N = 3, hidden = 10;
    size_t in_n = (size_t)N * hidden * (swiglu ? 2 : 1);
    act_state s = {random_buffer(in_n, 1.5f), N, hidden, swiglu};
    op_case c = {run_act, filled((size_t)N * hidden, 0), (size_t)N * hidden, random_buffer((size_t)N * hidden, 1), &s};
    float *dinp = filled(in_n, PREFILL);
    if (swiglu) be->ops->swiglu_backward(be, dinp, c.projection, s.inp, N, hidden);
    else be->ops->gelu_backward(be, dinp, s.inp, c.projection, in_n);
    check_gradient(swiglu ? "swiglu dinp (overwritten)" : "gelu dinp (overwritten)", &c, s.inp, in_n, dinp, 0.0f);
    free(dinp), free(c.out), free(c.projection), free(s.inp);
}

/* ---- rope ---- */
typedef struct { float *inp; int32_t *pos; int N, H, KV, D; } rope_state;
static void run_rope(op_case *c) {
    rope_state *s = c->state;
    memcpy(c->out, s->inp, c->out_n * sizeof(float));
    be->ops->rope_forward(be, c->out, s->pos, s->N, s->H, s->KV, s->D, 10000.0f);
}
static void test_rope(void) {
    const int N = 5, H = 4, KV = 2, D = 8;
    size_t n = (size_t)N * (H + 2 * KV) * D;
    int32_t pos[5] = {0, 1, 7, 30, 500};
    rope_state s = {random_buffer(n, 1), pos, N, H, KV, D};
    op_case c = {run_rope, filled(n, 0), n, random_buffer(n, 1), &s};
    float *dinp = malloc(n * sizeof(float));
    memcpy(dinp, c.projection, n * sizeof(float));
    be->ops->rope_backward(be, dinp, pos, N, H, KV, D, 10000.0f);
    check_gradient("rope dqkv (in place)", &c, s.inp, n, dinp, 0.0f);
    free(dinp), free(c.out), free(c.projection), free(s.inp);
}

/* ---- attention (GQA: 4 query heads over 2 kv heads) ---- */
typedef struct { float *qkv, *scratch; int B, T, H, KV, D; } attention_state;
static void run_attention(op_case *c) {
    attention_state *s = c->state;
    be->ops->attention_forward(be, c->out, s->scratch, s->qkv, s->B, s->T, s->H, s->KV, s->D);
}
static void test_attention(int H, int KV) {
    const int B = 2, T = 6, D = 4;
    size_t n_qkv = (size_t)B * T * (H + 2 * KV) * D, n_out = (size_t)B * T * H * D;
    attention_state s = {random_buffer(n_qkv, 1), malloc(be->ops->attention_scratch_bytes(be, B, T, H)), B, T, H, KV, D};
    op_case c = {run_attention, filled(n_out, 0), n_out, random_buffer(n_out, 1), &s};
    run_attention(&c);
    float *dqkv = filled(n_qkv, PREFILL);
    be->ops->attention_backward(be, dqkv, c.projection, s.qkv, c.out, s.scratch, B, T, H, KV, D);
    check_gradient(KV < H ? "attention dqkv, grouped heads" : "attention dqkv", &c, s.qkv, n_qkv, dqkv, 0.0f);
    /* Causality: the output at t must not depend on the input at s > t. */
    float *before = malloc(n_out * sizeof(float));
    memcpy(before, c.out, n_out * sizeof(float));
    s.qkv[(size_t)(T - 1) * (H + 2 * KV) * D + (size_t)H * D] += 5.0f; /* last position's first k value, batch 0 */
    run_attention(&c);
    int leaked = 0;
    for (int t = 0; t < T - 1; t++)
        for (int j = 0; j < H * D; j++) leaked |= c.out[(size_t)t * H * D + j] != before[(size_t)t * H * D + j];
    CHECK_MSG(!leaked, "attention output before the last position changed when the last key changed");
    free(before), free(dqkv), free(c.out), free(c.projection), free(s.qkv), free(s.scratch);
}

/* ---- embedding ---- */
typedef struct { float *wte, *wpe; int32_t *tokens, *pos; int N, C; } embedding_state;
static void run_embedding(op_case *c) {
    embedding_state *s = c->state;
    be->ops->embedding_forward(be, c->out, s->tokens, s->pos, s->wte, s->wpe, s->N, s->C);
}
static void test_embedding(void) {
    const int V = 6, P = 4, N = 5, C = 3;
    int32_t tokens[5] = {1, 4, 1, 0, 5}, pos[5] = {0, 1, 2, 3, 0}; /* repeated token and position */
    embedding_state s = {random_buffer(V * C, 1), random_buffer(P * C, 1), tokens, pos, N, C};
    op_case c = {run_embedding, filled(N * C, 0), (size_t)N * C, random_buffer(N * C, 1), &s};
    float *dwte = filled(V * C, PREFILL), *dwpe = filled(P * C, PREFILL);
    be->ops->embedding_backward(be, dwte, dwpe, c.projection, tokens, pos, N, C);
    check_gradient("embedding dwte (accumulated)", &c, s.wte, (size_t)V * C, dwte, PREFILL);
    check_gradient("embedding dwpe (accumulated)", &c, s.wpe, (size_t)P * C, dwpe, PREFILL);
    free(dwte), free(dwpe), free(c.out), free(c.projection), free(s.wte), free(s.wpe);
}

/* ---- cross-entropy: the op's output is the per-row loss; dloss plays R ---- */
typedef struct { float *logits, *lse, *entropy; int32_t *targets; int N, V; } xent_state;
static void run_xent(op_case *c) {
    xent_state *s = c->state;
    be->ops->cross_entropy_forward(be, c->out, s->lse, s->entropy, s->logits, s->targets, s->N, s->V);
}
static void run_xent_entropy(op_case *c) {
    xent_state *s = c->state;
    float loss[16];
    be->ops->cross_entropy_forward(be, loss, s->lse, c->out, s->logits, s->targets, s->N, s->V);
}
static void test_cross_entropy(void) {
    const int N = 4, V = 9;
    int32_t targets[4] = {3, -1, 0, 8};
    xent_state s = {random_buffer(N * V, 2), filled(N, 0), filled(N, 0), targets, N, V};
    op_case c = {run_xent, filled(N, 0), N, random_buffer(N, 1), &s};
    run_xent(&c);
    float *dlogits = filled(N * V, PREFILL);
    be->ops->cross_entropy_backward(be, dlogits, s.logits, s.lse, s.entropy, c.projection, NULL, targets, N, V);
    check_gradient("cross-entropy dlogits (overwritten)", &c, s.logits, (size_t)N * V, dlogits, 0.0f);
    /* The entropy term: the op's output is now the entropy, projected by R. */
    op_case e = {run_xent_entropy, filled(N, 0), N, random_buffer(N, 1), &s};
    float *zeros = filled(N, 0.0f);
    run_xent_entropy(&e);
    be->ops->cross_entropy_backward(be, dlogits, s.logits, s.lse, s.entropy, zeros, e.projection, targets, N, V);
    check_gradient("cross-entropy d(entropy)/dlogits", &e, s.logits, (size_t)N * V, dlogits, 0.0f);
    free(zeros), free(e.out), free(e.projection);
    /* The entropy and log-prob agree with a direct float64 computation. */
    for (int n = 0; n < N; n++) {
        const float *x = s.logits + (size_t)n * V;
        double z = 0.0, h = 0.0;
        for (int v = 0; v < V; v++) z += exp((double)x[v]);
        for (int v = 0; v < V; v++) {
            double p = exp((double)x[v]) / z;
            h -= p * log(p);
        }
        CHECK_CLOSE(s.entropy[n], h, 1e-5);
        CHECK_CLOSE(s.lse[n], log(z), 1e-6);
        if (targets[n] >= 0) CHECK_CLOSE(c.out[n], log(z) - x[targets[n]], 1e-5);
        else CHECK(c.out[n] == 0.0f);
    }
    free(dlogits), free(c.out), free(c.projection), free(s.logits), free(s.lse), free(s.entropy);
}

/* ---- AdamW against a float64 transcription of torch.optim.AdamW ---- */
static void test_adamw(void) {
    const size_t n = 7;
    float *p = random_buffer(n, 1), *g = random_buffer(n, 1), *m = filled(n, 0), *v = filled(n, 0);
    float *copy = filled(n, -1.0f);
    double pd[7], md[7] = {0}, vd[7] = {0};
    for (size_t i = 0; i < n; i++) pd[i] = p[i];
    const double lr = 1e-2, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
    for (int step = 1; step <= 3; step++) {
        const double scale = step == 2 ? 0.5 : 1.0; /* a clipped step */
        be->ops->adamw(be, p, step == 3 ? copy : NULL, g, (float)scale, m, v, n, (float)lr, (float)b1, (float)b2,
                       (float)eps, (float)wd, step);
        for (size_t i = 0; i < n; i++) {
            double gi = scale * g[i];
            pd[i] *= 1.0 - lr * wd;
            md[i] = b1 * md[i] + (1 - b1) * gi;
            vd[i] = b2 * vd[i] + (1 - b2) * gi * gi;
            pd[i] -= lr / (1 - pow(b1, step)) * md[i] / (sqrt(vd[i]) / sqrt(1 - pow(b2, step)) + eps);
        }
    }
    for (size_t i = 0; i < n; i++) CHECK_CLOSE(p[i], pd[i], 1e-5);
    CHECK_MSG(memcmp(copy, p, n * sizeof(float)) == 0, "adamw's compute copy differs from the updated weights");
    float sum_sq;
    be->ops->sum_squares(be, &sum_sq, g, n);
    double want = 0.0;
    for (size_t i = 0; i < n; i++) want += (double)g[i] * g[i];
    CHECK_CLOSE(sum_sq, want, 1e-6);
    free(p), free(g), free(m), free(v), free(copy);
}

int main(void) {
    egrc_error err;
    be = egrc_backend_open("cpu", 0, &err);
    CHECK_MSG(be != NULL, "%s", err.msg);
    if (!be) return test_finish("test_gradcheck");
    egrc_rng_seed(&rng, 2024);
    test_matmul(5, 1);
    test_matmul(3, 1); /* the few-row path (decode) */
    test_matmul(2, 0);
    test_norm(0);
    test_norm(1);
    test_activation(0);
    test_activation(1);
    test_rope();
    test_attention(4, 4);
    test_attention(4, 2);
    test_attention(4, 1);
    test_embedding();
    test_cross_entropy();
    test_adamw();
    egrc_backend_close(be);
    return test_finish("test_gradcheck");
}
