/* Internal interface of the CUDA backend plugin (libegrc-backend-cuda.so).
 *
 * cuda_device.c: devices, the stream, memory, scratch, fatal errors.
 * cuda_gemm.c:   linear layers through cuBLASLt.
 * cuda_ops.c:    every other op (kernels in kernels/cuda) and the ops table.
 *
 * Activations are fp32 in this version (act_dtype F32, so the compute copy of
 * the weights is the fp32 master, as on the CPU). bf16 activations are NOT
 * implemented yet; the kernels are templated on the storage type for it.
 *
 * Errors: the contract gives ops no error path, so a failure inside an op (a
 * kernel fault, an allocation for scratch that cannot be met) prints one line
 * naming the op and the CUDA error and exits: the CUDA context is unusable
 * after most such errors anyway. Failures in open/alloc are reported through
 * egrc_error as usual. */
#ifndef EGRC_CUDA_BACKEND_H
#define EGRC_CUDA_BACKEND_H

#include <cublasLt.h>

#include "../../kernels/cuda/egrc_kernels.h"
#include "../backend.h"

/* cuBLASLt plans (descriptors + chosen algorithm) are cached per GEMM shape:
 * a model uses a dozen shapes, and picking an algorithm costs far more than
 * running a small GEMM. */
#define CUDA_GEMM_PLANS 64

typedef struct cuda_gemm_shape {
    int trans_a, trans_b, m, n, k, lda, ldb, ldc, bias;
    unsigned align_a, align_b, align_c; /* bytes: cuBLASLt picks kernels by pointer alignment */
} cuda_gemm_shape;

typedef struct cuda_gemm_plan {
    cuda_gemm_shape shape;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
} cuda_gemm_plan;

typedef struct cuda_state {
    cudaStream_t stream;
    int stream_ordered_alloc; /* cudaMallocAsync is available */
    cublasLtHandle_t lt;
    void *lt_workspace;
    size_t lt_workspace_bytes;
    cublasComputeType_t gemm_compute; /* fp32, or TF32 when EGRC_CUDA_TF32=1 */
    cuda_gemm_plan plans[CUDA_GEMM_PLANS];
    int n_plans, next_evicted;
    /* Device scratch for deterministic reductions, grown on demand. */
    void *scratch;
    size_t scratch_bytes;
    /* RoPE inverse frequencies for (rope_theta, rope_dim), computed on the
     * host with the same libm call as the CPU backend so angles match it bit
     * for bit; the host copy stays alive as the upload's source. */
    float *rope_freq;
    float rope_host[512];
    float rope_theta;
    int rope_dim;
} cuda_state;

static inline cuda_state *cuda_state_of(egrc_backend *be) { return (cuda_state *)be->impl; }

/* Prints "egrc: cuda backend: <message>" and exits. */
void cuda_fatal(const char *fmt, ...) EGRC_PRINTF(1, 2) __attribute__((noreturn));
/* cuda_fatal with the op's name unless err is cudaSuccess. */
void cuda_check(cudaError_t err, const char *op);
/* At least `bytes` of device scratch, valid until the next call (stream order
 * makes reuse by the next op safe). */
void *cuda_scratch(cuda_state *st, size_t bytes);

/* Device, memory and stream ops (cuda_device.c). */
int cuda_device_count(egrc_error *err);
int cuda_device_info(int device, egrc_device_info *info, egrc_error *err);
egrc_backend *cuda_open(int device, egrc_error *err);
void cuda_close(egrc_backend *be);
void *cuda_alloc(egrc_backend *be, size_t bytes, egrc_error *err);
void cuda_free(egrc_backend *be, void *ptr);
void cuda_upload(egrc_backend *be, void *dst, const void *src_host, size_t bytes);
void cuda_download(egrc_backend *be, void *dst_host, const void *src, size_t bytes);
void cuda_zero(egrc_backend *be, void *ptr, size_t bytes);
void cuda_synchronize(egrc_backend *be);

/* Linear layers (cuda_gemm.c). */
void cuda_matmul_forward(egrc_backend *be, void *out, const void *inp, const void *w, const void *bias, int N, int C,
                         int OC);
void cuda_matmul_backward(egrc_backend *be, void *dinp, float *dw, float *dbias, const void *dout, const void *inp,
                          const void *w, int N, int C, int OC);
void cuda_gemm_release(cuda_state *st);

/* The ops table (cuda_ops.c). */
const egrc_backend_ops *cuda_backend_ops(void);

#endif
