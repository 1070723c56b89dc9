/* Internal interface of the built-in CPU backend: the ops are spread over a
 * few files by concern (layers, attention, loss and optimizer) and gathered
 * into one table by cpu_backend.c. All pointers are host memory; activations
 * are fp32. Loops are parallelised with OpenMP over independent rows, and every
 * reduction is done in a fixed order so a run is bit-reproducible for a given
 * thread count. */
#ifndef EGRC_CPU_BACKEND_H
#define EGRC_CPU_BACKEND_H

#include "../backend.h"
#include "../../core/base/sampling.h"

/* A loop runs on several threads only when it does at least this many
 * elementary operations: below it, waking the thread team costs more than
 * the loop (decode steps and small models are full of such loops, and on a
 * busy machine each wake-up can wait for a core). */
#define CPU_PARALLEL_MIN_WORK ((size_t)1 << 15)

void cpu_embedding_forward(egrc_backend *be, void *out, const int32_t *tokens, const int32_t *positions,
                           const void *wte, const void *wpe, int N, int C);
void cpu_embedding_backward(egrc_backend *be, float *dwte, float *dwpe, const void *dout, const int32_t *tokens,
                            const int32_t *positions, int N, int C);
void cpu_layernorm_forward(egrc_backend *be, void *out, float *mean, float *rstd, const void *inp, const void *w,
                           const void *b, int N, int C, float eps);
void cpu_layernorm_backward(egrc_backend *be, void *dinp, float *dw, float *db, const void *dout, const void *inp,
                            const void *w, const float *mean, const float *rstd, int N, int C);
void cpu_rmsnorm_forward(egrc_backend *be, void *out, float *rstd, const void *inp, const void *w, int N, int C,
                         float eps);
void cpu_rmsnorm_backward(egrc_backend *be, void *dinp, float *dw, const void *dout, const void *inp, const void *w,
                          const float *rstd, int N, int C);
void cpu_matmul_forward(egrc_backend *be, void *out, const void *inp, const void *w, const void *bias, int N, int C,
                        int OC);
void cpu_matmul_backward(egrc_backend *be, void *dinp, float *dw, float *dbias, const void *dout, const void *inp,
                         const void *w, int N, int C, int OC);
void cpu_rope_forward(egrc_backend *be, void *qkv, const int32_t *positions, int N, int H, int KV, int D, float theta);
void cpu_rope_backward(egrc_backend *be, void *dqkv, const int32_t *positions, int N, int H, int KV, int D,
                       float theta);
size_t cpu_attention_scratch_bytes(egrc_backend *be, int B, int T, int H);
void cpu_attention_forward(egrc_backend *be, void *out, void *scratch, const void *qkv, int B, int T, int H, int KV,
                           int D);
void cpu_attention_backward(egrc_backend *be, void *dqkv, const void *dout, const void *qkv, const void *out,
                            const void *scratch, int B, int T, int H, int KV, int D);
void cpu_gelu_forward(egrc_backend *be, void *out, const void *inp, size_t n);
void cpu_gelu_backward(egrc_backend *be, void *dinp, const void *inp, const void *dout, size_t n);
void cpu_swiglu_forward(egrc_backend *be, void *out, const void *gate_up, int N, int hidden);
void cpu_swiglu_backward(egrc_backend *be, void *dgate_up, const void *dout, const void *gate_up, int N, int hidden);
void cpu_add(egrc_backend *be, void *dst, const void *src, size_t n);
void cpu_cross_entropy_forward(egrc_backend *be, float *loss, float *lse, float *entropy, const void *logits,
                               const int32_t *targets, int N, int V);
void cpu_cross_entropy_backward(egrc_backend *be, void *dlogits, const void *logits, const float *lse,
                                const float *entropy, const float *dloss, const float *dentropy,
                                const int32_t *targets, int N, int V);
void cpu_kv_cache_write(egrc_backend *be, void *k_cache, void *v_cache, const void *qkv, const int32_t *slots,
                        const int32_t *positions, int N, int H, int KV, int D, int cap);
void cpu_attention_decode(egrc_backend *be, void *out, const void *qkv, const void *k_cache, const void *v_cache,
                          const int32_t *slots, const int32_t *lens, int N, int H, int KV, int D, int cap);
void cpu_to_f32(egrc_backend *be, float *dst, const void *src, size_t n);
/* The backend's state (be->impl), made by open and freed by close. */
typedef struct cpu_state {
    /* The sample op's samplers, one per OpenMP thread, for vocabulary `vocab`
     * (a sampler is 12 bytes per vocabulary entry, too much to allocate per token). */
    int vocab, n_samplers;
    egrc_sampler *samplers;
    /* The latched fault (backend.h's Faults): an op's allocation that failed. */
    int faulted;
    egrc_error fault;
} cpu_state;

/* Latches a fault of `op` (the first one wins; safe from OpenMP threads).
 * Only allocations inside ops fail on the CPU: running out of host memory. */
void cpu_latch(egrc_backend *be, const char *op, const char *fmt, ...) EGRC_PRINTF(3, 4);

/* cpu_sample.c: the sample op, on the samplers of be->impl. */
void cpu_sample(egrc_backend *be, egrc_sample_result *out, const void *logits, const egrc_sample_request *req, int N,
                int V);
void cpu_samplers_free(cpu_state *st);
void cpu_sum_squares(egrc_backend *be, float *out, const float *x, size_t n);
void cpu_adamw(egrc_backend *be, float *params, void *compute_copy, const float *grads, float grad_scale, float *m,
               float *v, size_t n, float lr, float beta1, float beta2, float eps, float weight_decay, int step);

#endif
