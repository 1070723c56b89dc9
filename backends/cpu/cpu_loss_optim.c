/* CPU ops for the loss (fused softmax cross-entropy with entropy) and for the
 * optimizer (squared-norm reduction, scaling, AdamW). */
#include <math.h>
#include <omp.h>

#include "cpu_backend.h"
#include "cpu_math.h"

void cpu_cross_entropy_forward(egrc_backend *be, float *loss, float *lse, float *entropy, const void *logits_,
                               const int32_t *targets, int N, int V) {
    (void)be;
    const float *logits = logits_;
#pragma omp parallel for schedule(static) if((size_t)N * V >= CPU_PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float max_logit = -INFINITY;
        for (int v = 0; v < V; v++) max_logit = x[v] > max_logit ? x[v] : max_logit;
        /* fp32 terms, accumulated in fp32 over blocks of 256 and in double across
         * blocks: vectorisable, and accurate to ~1e-7 for any vocabulary size. */
        double sum_exp = 0.0, sum_exp_x = 0.0;
        for (int v0 = 0; v0 < V; v0 += 256) {
            int v1 = v0 + 256 < V ? v0 + 256 : V;
            float block_exp = 0.0f, block_exp_x = 0.0f;
            for (int v = v0; v < v1; v++) {
                float e = cpu_expf(x[v] - max_logit);
                block_exp += e;
                block_exp_x += e * x[v];
            }
            sum_exp += block_exp;
            sum_exp_x += block_exp_x;
        }
        double row_lse = max_logit + log(sum_exp);
        lse[n] = (float)row_lse;
        loss[n] = targets[n] >= 0 ? (float)(row_lse - x[targets[n]]) : 0.0f;
        if (entropy) entropy[n] = (float)(row_lse - sum_exp_x / sum_exp);
    }
}

void cpu_cross_entropy_backward(egrc_backend *be, void *dlogits_, const void *logits_, const float *lse,
                                const float *entropy, const float *dloss, const float *dentropy,
                                const int32_t *targets, int N, int V) {
    (void)be;
    float *dlogits = dlogits_;
    const float *logits = logits_;
#pragma omp parallel for schedule(static) if((size_t)N * V >= CPU_PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *dx = dlogits + (size_t)n * V;
        const int target = targets[n];
        const float g = target >= 0 ? dloss[n] : 0.0f, row_lse = lse[n];
        const float dh = dentropy ? dentropy[n] : 0.0f;
        if (dh != 0.0f) {
            /* log p_v = x_v - lse, so dH/dx_v = -p_v (x_v - lse + H) */
            const float h = entropy[n];
            for (int v = 0; v < V; v++) {
                float p = cpu_expf(x[v] - row_lse);
                dx[v] = p * g - dh * p * (x[v] - row_lse + h);
            }
        } else {
            for (int v = 0; v < V; v++) dx[v] = cpu_expf(x[v] - row_lse) * g;
        }
        if (target >= 0) dx[target] -= g;
    }
}

void cpu_sum_squares(egrc_backend *be, float *out, const float *x, size_t n) {
    (void)be;
    /* Fixed per-thread chunks summed in thread order: deterministic for a
     * given thread count, unlike an OpenMP reduction clause. */
    enum { MAX_THREADS = 256 };
    double partial[MAX_THREADS] = {0};
    int threads = omp_get_max_threads();
    if (threads > MAX_THREADS) threads = MAX_THREADS;
#pragma omp parallel num_threads(threads)
    {
        int id = omp_get_thread_num(), count = omp_get_num_threads();
        size_t begin = n * (size_t)id / (size_t)count, end = n * (size_t)(id + 1) / (size_t)count;
        double sum = 0.0;
        for (size_t i = begin; i < end; i++) sum += (double)x[i] * x[i];
        partial[id] = sum;
    }
    double total = 0.0;
    for (int i = 0; i < threads; i++) total += partial[i];
    *out = (float)total;
}

void cpu_adamw(egrc_backend *be, float *params, void *compute_copy, const float *grads, float grad_scale, float *m,
               float *v, size_t n, float lr, float beta1, float beta2, float eps, float weight_decay, int step) {
    (void)be;
    float *copy = compute_copy; /* fp32 activations: a copy, when asked for, is the master's values */
    /* The scalar factors are computed in double, as PyTorch does in Python. */
    const float bias_correction2_sqrt = (float)sqrt(1.0 - pow(beta2, step));
    const float step_size = (float)(lr / (1.0 - pow(beta1, step)));
    const float decay = 1.0f - lr * weight_decay;
#pragma omp parallel for schedule(static) if(n >= CPU_PARALLEL_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        float g = grads[i] * grad_scale;
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float p = params[i] * decay;
        params[i] = p - step_size * mi / (sqrtf(vi) / bias_correction2_sqrt + eps);
        if (copy) copy[i] = params[i];
    }
}
