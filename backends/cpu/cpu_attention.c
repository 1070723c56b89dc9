/* CPU causal self-attention with grouped-query heads. The scratch buffer keeps
 * the (B,H,T,T) softmax probabilities for the backward pass: simple, exact and
 * cheap at the sequence lengths CPU training uses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"
#include "cpu_math.h"

size_t cpu_attention_scratch_bytes(egrc_backend *be, int B, int T, int H) {
    (void)be;
    return (size_t)B * H * T * T * sizeof(float);
}

void cpu_attention_forward(egrc_backend *be, void *out_, void *scratch, const void *qkv_, int B, int T, int H, int KV,
                           int D) {
    (void)be;
    float *out = out_, *probs_all = scratch;
    const float *qkv = qkv_;
    const int row = (H + 2 * KV) * D, group = H / KV;
    const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            const int kv_head = h / group;
            const float *seq = qkv + (size_t)b * T * row;
            for (int t = 0; t < T; t++) {
                const float *q = seq + (size_t)t * row + (size_t)h * D;
                float *probs = probs_all + (((size_t)b * H + h) * T + t) * T;
                float max_score = -INFINITY;
                for (int s = 0; s <= t; s++) {
                    const float *k = seq + (size_t)s * row + (size_t)(H + kv_head) * D;
                    float dot = 0.0f;
                    for (int d = 0; d < D; d++) dot += q[d] * k[d];
                    probs[s] = dot * scale;
                    if (probs[s] > max_score) max_score = probs[s];
                }
                float sum = 0.0f;
                for (int s = 0; s <= t; s++) {
                    probs[s] = cpu_expf(probs[s] - max_score);
                    sum += probs[s];
                }
                float inv_sum = 1.0f / sum;
                for (int s = 0; s <= t; s++) probs[s] *= inv_sum;
                for (int s = t + 1; s < T; s++) probs[s] = 0.0f;

                float *o = out + ((size_t)b * T + t) * H * D + (size_t)h * D;
                memset(o, 0, (size_t)D * sizeof(float));
                for (int s = 0; s <= t; s++) {
                    const float *v = seq + (size_t)s * row + (size_t)(H + KV + kv_head) * D;
                    for (int d = 0; d < D; d++) o[d] += probs[s] * v[d];
                }
            }
        }
    }
}

void cpu_attention_backward(egrc_backend *be, void *dqkv_, const void *dout_, const void *qkv_, const void *out,
                            const void *scratch, int B, int T, int H, int KV, int D) {
    (void)be;
    (void)out;
    float *dqkv = dqkv_;
    const float *dout = dout_, *qkv = qkv_, *probs_all = scratch;
    const int row = (H + 2 * KV) * D, group = H / KV;
    const float scale = 1.0f / sqrtf((float)D);
    /* One task per (batch, kv head): the query heads of a group all write the
     * same dk/dv rows, so they stay in one task and need no atomics. */
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int kv_head = 0; kv_head < KV; kv_head++) {
            const float *seq = qkv + (size_t)b * T * row;
            float *dseq = dqkv + (size_t)b * T * row;
            for (int t = 0; t < T; t++) {
                float *drow = dseq + (size_t)t * row;
                for (int h = kv_head * group; h < (kv_head + 1) * group; h++) memset(drow + (size_t)h * D, 0, (size_t)D * sizeof(float));
                memset(drow + (size_t)(H + kv_head) * D, 0, (size_t)D * sizeof(float));
                memset(drow + (size_t)(H + KV + kv_head) * D, 0, (size_t)D * sizeof(float));
            }
            float *dprobs = malloc((size_t)T * sizeof(float));
            for (int h = kv_head * group; h < (kv_head + 1) * group; h++) {
                for (int t = 0; t < T; t++) {
                    const float *q = seq + (size_t)t * row + (size_t)h * D;
                    float *dq = dseq + (size_t)t * row + (size_t)h * D;
                    const float *g = dout + ((size_t)b * T + t) * H * D + (size_t)h * D;
                    const float *probs = probs_all + (((size_t)b * H + h) * T + t) * T;
                    float weighted = 0.0f;
                    for (int s = 0; s <= t; s++) {
                        const float *v = seq + (size_t)s * row + (size_t)(H + KV + kv_head) * D;
                        float *dv = dseq + (size_t)s * row + (size_t)(H + KV + kv_head) * D;
                        float dp = 0.0f;
                        for (int d = 0; d < D; d++) {
                            dp += g[d] * v[d];
                            dv[d] += probs[s] * g[d];
                        }
                        dprobs[s] = dp;
                        weighted += probs[s] * dp;
                    }
                    for (int s = 0; s <= t; s++) {
                        float dscore = probs[s] * (dprobs[s] - weighted) * scale;
                        const float *k = seq + (size_t)s * row + (size_t)(H + kv_head) * D;
                        float *dk = dseq + (size_t)s * row + (size_t)(H + kv_head) * D;
                        for (int d = 0; d < D; d++) {
                            dq[d] += dscore * k[d];
                            dk[d] += dscore * q[d];
                        }
                    }
                }
            }
            free(dprobs);
        }
    }
}
