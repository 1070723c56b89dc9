/* CPU ops for incremental decoding: writing keys/values into the KV cache and
 * single-position attention over it. Shapes follow backend.h; a cache is
 * (S, cap, KV*D) fp32. */
#include <math.h>
#include <string.h>

#include "cpu_backend.h"
#include "cpu_math.h"

/* egrc_config_validate guarantees head_dim <= 1024. */
#define MAX_HEAD_DIM 1024
/* Keys per chunk of the decode attention (a stack buffer of scores). */
#define DECODE_CHUNK 128

void cpu_kv_cache_write(egrc_backend *be, void *k_cache_, void *v_cache_, const void *qkv_, const int32_t *slots,
                        const int32_t *positions, int N, int H, int KV, int D, int cap) {
    (void)be;
    float *k_cache = k_cache_, *v_cache = v_cache_;
    const float *qkv = qkv_;
    const size_t row = (size_t)(H + 2 * KV) * D, width = (size_t)KV * D;
#pragma omp parallel for schedule(static) if((size_t)N * 2 * KV * D >= CPU_PARALLEL_MIN_WORK)
    for (int i = 0; i < N; i++) {
        if (positions[i] < 0) continue;
        const float *src = qkv + (size_t)i * row;
        size_t dst = ((size_t)slots[i] * cap + (size_t)positions[i]) * width;
        memcpy(k_cache + dst, src + (size_t)H * D, width * sizeof(float));
        memcpy(v_cache + dst, src + (size_t)(H + KV) * D, width * sizeof(float));
    }
}

void cpu_attention_decode(egrc_backend *be, void *out_, const void *qkv_, const void *k_cache_, const void *v_cache_,
                          const int32_t *slots, const int32_t *lens, int N, int H, int KV, int D, int cap) {
    (void)be;
    float *out = out_;
    const float *qkv = qkv_, *k_cache = k_cache_, *v_cache = v_cache_;
    const size_t row = (size_t)(H + 2 * KV) * D, width = (size_t)KV * D;
    const int group = H / KV;
    const float scale = 1.0f / sqrtf((float)D);
    /* Keys are visited in chunks: a chunk's scores are computed, exponentiated
     * (vectorised) and folded into the output with one rescale of the
     * accumulator per chunk when the running maximum grows (the online
     * softmax), so no scratch longer than a chunk is needed. */
#pragma omp parallel for collapse(2) schedule(static) if((size_t)N * H * cap * D >= CPU_PARALLEL_MIN_WORK)
    for (int i = 0; i < N; i++) {
        for (int h = 0; h < H; h++) {
            const float *q = qkv + (size_t)i * row + (size_t)h * D;
            const size_t base = (size_t)slots[i] * cap * width + (size_t)(h / group) * D;
            float acc[MAX_HEAD_DIM], scores[DECODE_CHUNK];
            float max_score = -INFINITY, sum = 0.0f;
            memset(acc, 0, (size_t)D * sizeof(float));
            for (int s0 = 0; s0 < lens[i]; s0 += DECODE_CHUNK) {
                const int count = lens[i] - s0 < DECODE_CHUNK ? lens[i] - s0 : DECODE_CHUNK;
                float chunk_max = -INFINITY;
                for (int j = 0; j < count; j++) {
                    const float *k = k_cache + base + (size_t)(s0 + j) * width;
                    float dot = 0.0f;
                    for (int d = 0; d < D; d++) dot += q[d] * k[d];
                    scores[j] = dot * scale;
                    chunk_max = scores[j] > chunk_max ? scores[j] : chunk_max;
                }
                if (chunk_max > max_score) {
                    const float rescale = cpu_expf(max_score - chunk_max); /* 0 on the first chunk */
                    sum *= rescale;
                    for (int d = 0; d < D; d++) acc[d] *= rescale;
                    max_score = chunk_max;
                }
                for (int j = 0; j < count; j++) {
                    scores[j] = cpu_expf(scores[j] - max_score);
                    sum += scores[j];
                }
                for (int j = 0; j < count; j++) {
                    const float *v = v_cache + base + (size_t)(s0 + j) * width;
                    for (int d = 0; d < D; d++) acc[d] += scores[j] * v[d];
                }
            }
            float *o = out + (size_t)i * H * D + (size_t)h * D;
            const float inv_sum = 1.0f / sum;
            for (int d = 0; d < D; d++) o[d] = acc[d] * inv_sum;
        }
    }
}

void cpu_to_f32(egrc_backend *be, float *dst, const void *src, size_t n) {
    (void)be;
    if (n) memcpy(dst, src, n * sizeof(float));
}
