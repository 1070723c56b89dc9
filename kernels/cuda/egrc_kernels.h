/* The GPU kernels' launchers: plain C functions that enqueue kernels on a
 * stream and return cudaGetLastError(), for the GPU plugins' host glue
 * (backends/gpu). They know nothing of egrc_backend; the glue owns the
 * stream, the scratch memory and the error policy.
 *
 * Shapes and semantics are those of backends/backend.h, op for op. `void *`
 * is an activation (or a compute copy of weights) in the storage type `act`
 * names, fp32 or bf16: the kernels are templated on it and every launcher
 * that takes one dispatches on it. Whatever the storage, kernels compute in
 * fp32 (double where the CPU reference does). `float *` is fp32 always.
 *
 * Ops that reduce over rows deterministically (weight and bias gradients,
 * embedding gradients, sum_squares, attention backward) take a device
 * `scratch` of at least the size their *_scratch_bytes function returns. */
#ifndef EGRC_KERNELS_H
#define EGRC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "egrc_gpu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Attention kernels keep a head's rows in registers, EGRC_WARP_SIZE
 * dimensions per register, at most 8 registers per row. */
#define EGRC_GPU_MAX_HEAD_DIM (8 * EGRC_WARP_SIZE)

/* Element types of device buffers. */
typedef enum egrc_gpu_dtype { EGRC_GPU_F32, EGRC_GPU_BF16 } egrc_gpu_dtype;

/* dst(n) = src(n) converted between fp32 and `act` (a device-to-device copy
 * when act is fp32); the contract's to_act and to_f32. */
cudaError_t egrc_gpu_to_act(cudaStream_t stream, egrc_gpu_dtype act, void *dst, const float *src, size_t n);
cudaError_t egrc_gpu_to_f32(cudaStream_t stream, egrc_gpu_dtype act, float *dst, const void *src, size_t n);

cudaError_t egrc_gpu_embedding_forward(cudaStream_t stream, egrc_gpu_dtype act, void *out, const int32_t *tokens,
                                       const int32_t *positions, const void *wte, const void *wpe, int N, int C);
size_t egrc_gpu_embedding_backward_scratch(int N);
cudaError_t egrc_gpu_embedding_backward(cudaStream_t stream, egrc_gpu_dtype act, void *scratch, float *dwte,
                                        float *dwpe, const void *dout, const int32_t *tokens, const int32_t *positions,
                                        int N, int C);

cudaError_t egrc_gpu_layernorm_forward(cudaStream_t stream, egrc_gpu_dtype act, void *out, float *mean, float *rstd,
                                       const void *inp, const void *w, const void *b, int N, int C, float eps);
cudaError_t egrc_gpu_rmsnorm_forward(cudaStream_t stream, egrc_gpu_dtype act, void *out, float *rstd, const void *inp,
                                     const void *w, int N, int C, float eps);
/* Scratch of the column sums behind norm weight gradients and bias gradients. */
size_t egrc_gpu_column_sums_scratch(int N, int C);
/* mean == NULL: RMSNorm (db must be NULL too). */
cudaError_t egrc_gpu_norm_backward(cudaStream_t stream, egrc_gpu_dtype act, void *scratch, void *dinp, float *dw,
                                   float *db, const void *dout, const void *inp, const void *w, const float *mean,
                                   const float *rstd, int N, int C);

/* Column-major D(m,n) = op(A)(m,k) op(B)(k,n) + beta*D, plus bias(m) on every
 * column when bias is not NULL; op transposes when trans_* is set (leading
 * dimensions as in BLAS). A, B and bias are in `ab`, D in `d`: fp32 -> fp32,
 * bf16 -> bf16 (activations) or bf16 -> fp32 (weight gradients); other pairs
 * fail with cudaErrorInvalidValue. fp32 accumulation in a fixed order
 * (deterministic); any element alignment of the pointers; beta 0 never
 * reads D. The linear layers' GEMM where no vendor BLAS is used. */
cudaError_t egrc_gpu_gemm(cudaStream_t stream, egrc_gpu_dtype ab, egrc_gpu_dtype d, int trans_a, int trans_b, int m,
                          int n, int k, const void *A, int lda, const void *B, int ldb, void *D, int ldd, float beta,
                          const void *bias);
/* dbias(OC) += colsum(dout(N,OC)) */
cudaError_t egrc_gpu_bias_backward(cudaStream_t stream, egrc_gpu_dtype act, void *scratch, float *dbias,
                                   const void *dout, int N, int OC);
/* out(N,OC) += bias(OC) on every row, for biases the GEMM epilogue cannot read */
cudaError_t egrc_gpu_bias_add(cudaStream_t stream, egrc_gpu_dtype act, void *out, const void *bias, int N, int OC);

/* Rotates by positions[n] * inv_freq[i] (D/2 fp32 frequencies, computed by the
 * caller exactly as the CPU backend does); sign +1: forward, -1: backward
 * (the inverse rotation). */
cudaError_t egrc_gpu_rope(cudaStream_t stream, egrc_gpu_dtype act, void *qkv, const int32_t *positions,
                          const float *inv_freq, int N, int H, int KV, int D, float sign);

/* Attention blocks size their shared memory to `shared_limit`, the bytes a
 * block may have on the device (cudaDevAttrMaxSharedMemoryPerBlockOptin);
 * the widest head that fits at all is egrc_gpu_attention_max_head_dim (the
 * launchers fail with cudaErrorInvalidValue beyond it). */
int egrc_gpu_attention_max_head_dim(size_t shared_limit);
/* The forward keeps one fp32 log-sum-exp per (sequence, head, row). */
size_t egrc_gpu_attention_lse_bytes(int B, int T, int H);
cudaError_t egrc_gpu_attention_forward(cudaStream_t stream, egrc_gpu_dtype act, size_t shared_limit, void *out,
                                       float *lse, const void *qkv, int B, int T, int H, int KV, int D);
size_t egrc_gpu_attention_backward_scratch(int B, int T, int H);
cudaError_t egrc_gpu_attention_backward(cudaStream_t stream, egrc_gpu_dtype act, size_t shared_limit, void *scratch,
                                        void *dqkv, const void *dout, const void *qkv, const void *out,
                                        const float *lse, int B, int T, int H, int KV, int D);
/* The tensor-core attention (attention_tc.cu), to which the two launchers
 * above hand a call when egrc_gpu_attention_tc_applies(...) is 1: bf16
 * activations, a head size that is a multiple of 16 up to 128, kernels built
 * for every architecture of the plugin (nvcc for sm_80 or newer; never HIP),
 * enough shared memory per block, 16-byte aligned buffers (`addresses`: the
 * buffers' addresses ORed together), and EGRC_GPU_ATTENTION not set to
 * "simt". Same shapes, lse and scratch as theirs; results agree up to the
 * bf16 rounding of the probabilities and score gradients. */
int egrc_gpu_attention_tc_applies(egrc_gpu_dtype act, size_t shared_limit, int D, uintptr_t addresses);
cudaError_t egrc_gpu_attention_tc_forward(cudaStream_t stream, void *out, float *lse, const void *qkv, int B, int T,
                                          int H, int KV, int D);
cudaError_t egrc_gpu_attention_tc_backward(cudaStream_t stream, void *scratch, void *dqkv, const void *dout,
                                           const void *qkv, const void *out, const float *lse, int B, int T, int H,
                                           int KV, int D);
cudaError_t egrc_gpu_kv_cache_write(cudaStream_t stream, egrc_gpu_dtype act, void *k_cache, void *v_cache,
                                    const void *qkv, const int32_t *slots, const int32_t *positions, int N, int H,
                                    int KV, int D, int cap);
cudaError_t egrc_gpu_attention_decode(cudaStream_t stream, egrc_gpu_dtype act, size_t shared_limit, void *out,
                                      const void *qkv, const void *k_cache, const void *v_cache, const int32_t *slots,
                                      const int32_t *lens, int N, int H, int KV, int D, int cap);

cudaError_t egrc_gpu_gelu_forward(cudaStream_t stream, egrc_gpu_dtype act, void *out, const void *inp, size_t n);
cudaError_t egrc_gpu_gelu_backward(cudaStream_t stream, egrc_gpu_dtype act, void *dinp, const void *inp,
                                   const void *dout, size_t n);
cudaError_t egrc_gpu_swiglu_forward(cudaStream_t stream, egrc_gpu_dtype act, void *out, const void *gate_up, int N,
                                    int hidden);
cudaError_t egrc_gpu_swiglu_backward(cudaStream_t stream, egrc_gpu_dtype act, void *dgate_up, const void *dout,
                                     const void *gate_up, int N, int hidden);
cudaError_t egrc_gpu_add(cudaStream_t stream, egrc_gpu_dtype act, void *dst, const void *src, size_t n);

cudaError_t egrc_gpu_cross_entropy_forward(cudaStream_t stream, egrc_gpu_dtype act, float *loss, float *lse,
                                           float *entropy, const void *logits, const int32_t *targets, int N, int V);
cudaError_t egrc_gpu_cross_entropy_backward(cudaStream_t stream, egrc_gpu_dtype act, void *dlogits, const void *logits,
                                            const float *lse, const float *entropy, const float *dloss,
                                            const float *dentropy, const int32_t *targets, int N, int V);

/* Next-token sampling, the contract's `sample` op: one record per row, laid
 * out as backend.h's egrc_sample_request / egrc_sample_result (the host glue
 * checks that at compile time). scratch: egrc_gpu_sample_scratch(N, V) bytes
 * (the rows' tempered weights). */
#define EGRC_GPU_SAMPLE_GREEDY_TEMPERATURE 1e-5f /* = EGRC_GREEDY_TEMPERATURE */
typedef struct egrc_gpu_sample_request {
    float temperature, top_p;
    int32_t top_k;
    float u;
} egrc_gpu_sample_request;
typedef struct egrc_gpu_sample_result {
    int32_t token;
    float logprob, entropy, sample_logprob, sample_entropy;
} egrc_gpu_sample_result;
size_t egrc_gpu_sample_scratch(int N, int V);
cudaError_t egrc_gpu_sample(cudaStream_t stream, egrc_gpu_dtype act, void *scratch, egrc_gpu_sample_result *out,
                            const void *logits, const egrc_gpu_sample_request *req, int N, int V);

size_t egrc_gpu_sum_squares_scratch(void);
cudaError_t egrc_gpu_sum_squares(cudaStream_t stream, void *scratch, float *out, const float *x, size_t n);
/* The scalar factors are computed by the caller in double, as the CPU backend
 * does: decay = 1 - lr*wd, step_size = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t). */
cudaError_t egrc_gpu_adamw(cudaStream_t stream, egrc_gpu_dtype act, float *params, void *compute_copy,
                           const float *grads, float grad_scale, float *m, float *v, size_t n, float beta1, float beta2,
                           float eps, float decay, float step_size, float bc2_sqrt);

#ifdef __cplusplus
}
#endif

#endif
