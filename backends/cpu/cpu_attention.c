/* CPU causal self-attention with grouped-query heads, for training and
 * prefill. Each (sequence, head) is a handful of small GEMMs on strided views
 * of the packed qkv rows (scores = Q K^T, out = P V, and their transposes in
 * backward): the BLAS kernels beat hand-written loops by a wide margin even
 * though the masked upper triangle is computed and discarded. The scratch
 * buffer keeps the (B,H,T,T) probabilities for the backward pass. Tasks run in
 * parallel over (sequence, head); BLAS called inside them runs on one thread. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"
#include "cpu_math.h"

size_t cpu_attention_scratch_bytes(egrc_backend *be, int B, int T, int H) {
    (void)be;
    return (size_t)B * H * T * T * sizeof(float);
}

/* Row-wise causal softmax of the (T,T) scores in place; the masked entries
 * (s > t) become exact zeros, which backward relies on. */
static void causal_softmax(float *scores, int T) {
    for (int t = 0; t < T; t++) {
        float *row = scores + (size_t)t * T;
        float max_score = -INFINITY;
        for (int s = 0; s <= t; s++) max_score = row[s] > max_score ? row[s] : max_score;
        float sum = 0.0f;
        for (int s = 0; s <= t; s++) {
            row[s] = cpu_expf(row[s] - max_score);
            sum += row[s];
        }
        float inv_sum = 1.0f / sum;
        for (int s = 0; s <= t; s++) row[s] *= inv_sum;
        for (int s = t + 1; s < T; s++) row[s] = 0.0f;
    }
}

void cpu_attention_forward(egrc_backend *be, void *out_, void *scratch, const void *qkv_, int B, int T, int H, int KV,
                           int D) {
    (void)be;
    float *out = out_, *probs_all = scratch;
    const float *qkv = qkv_;
    const int row = (H + 2 * KV) * D, group = H / KV, HD = H * D;
    const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for collapse(2) schedule(static) if((size_t)B * H * T * T * D >= CPU_PARALLEL_MIN_WORK)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            const int kv_head = h / group;
            const float *seq = qkv + (size_t)b * T * row;
            const float *q = seq + (size_t)h * D, *k = seq + (size_t)(H + kv_head) * D;
            const float *v = seq + (size_t)(H + KV + kv_head) * D;
            float *probs = probs_all + ((size_t)b * H + h) * T * T;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, scale, q, row, k, row, 0.0f, probs, T);
            causal_softmax(probs, T);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, probs, T, v, row, 0.0f,
                        out + (size_t)b * T * HD + (size_t)h * D, HD);
        }
    }
}

void cpu_attention_backward(egrc_backend *be, void *dqkv_, const void *dout_, const void *qkv_, const void *out,
                            const void *scratch, int B, int T, int H, int KV, int D) {
    (void)out;
    float *dqkv = dqkv_;
    const float *dout = dout_, *qkv = qkv_, *probs_all = scratch;
    const int row = (H + 2 * KV) * D, group = H / KV, HD = H * D;
    const float scale = 1.0f / sqrtf((float)D);
    /* One task per (sequence, kv head): the query heads of a group all write
     * the same dk/dv, so they stay in one task. The group's first head
     * overwrites dk/dv (beta 0) and the others accumulate. */
#pragma omp parallel for collapse(2) schedule(static) if((size_t)B * H * T * T * D >= CPU_PARALLEL_MIN_WORK)
    for (int b = 0; b < B; b++) {
        for (int kv_head = 0; kv_head < KV; kv_head++) {
            float *dscores = malloc((size_t)T * T * sizeof(float));
            if (!dscores) {
                cpu_latch(be, "attention_backward", "out of host memory for a %d x %d score gradient", T, T);
                continue;
            }
            const float *seq = qkv + (size_t)b * T * row;
            float *dseq = dqkv + (size_t)b * T * row;
            const float *k = seq + (size_t)(H + kv_head) * D, *v = seq + (size_t)(H + KV + kv_head) * D;
            float *dk = dseq + (size_t)(H + kv_head) * D, *dv = dseq + (size_t)(H + KV + kv_head) * D;
            for (int h = kv_head * group; h < (kv_head + 1) * group; h++) {
                const float beta = h == kv_head * group ? 0.0f : 1.0f;
                const float *q = seq + (size_t)h * D, *g = dout + (size_t)b * T * HD + (size_t)h * D;
                const float *probs = probs_all + ((size_t)b * H + h) * T * T;
                /* dP = dO V^T, then dS = P (dP - rowsum(P dP)) * scale */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, 1.0f, g, HD, v, row, 0.0f, dscores, T);
                for (int t = 0; t < T; t++) {
                    const float *p = probs + (size_t)t * T;
                    float *ds = dscores + (size_t)t * T;
                    float weighted = 0.0f;
                    for (int s = 0; s <= t; s++) weighted += p[s] * ds[s];
                    for (int s = 0; s < T; s++) ds[s] = p[s] * (ds[s] - weighted) * scale;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, dscores, T, k, row, 0.0f,
                            dseq + (size_t)h * D, row);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, 1.0f, dscores, T, q, row, beta, dk,
                            row);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, 1.0f, probs, T, g, HD, beta, dv, row);
            }
            free(dscores);
        }
    }
}
