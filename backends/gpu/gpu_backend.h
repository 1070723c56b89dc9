/* Internal interface of the GPU backend plugins, libegrc-backend-cuda.so and
 * libegrc-backend-hip.so. Both are built from this folder's host glue and
 * the kernels of kernels/cuda, written in CUDA's spelling; the HIP build maps
 * the runtime names to HIP's through kernels/cuda/egrc_gpu.h (EGRC_GPU_HIP).
 *
 * Shared by both plugins:
 *   gpu_device.c:  devices, the stream, memory, scratch, graphs, fatal errors.
 *   gpu_matmul.c:  linear layers, on the vendor BLAS or the tiled GEMM kernel.
 *   gpu_ops.c:     every other op (kernels in kernels/cuda) and the ops table.
 * Per vendor:
 *   cuda_driver.c, ../hip/hip_driver.c: device_count, which says what is
 *                  missing when the driver or device is.
 *   cuda_blas.c, ../hip/hip_blas.c: the vendor GEMM engine: cuBLASLt; rocBLAS
 *                  where the machine has it (loaded at open, self-checked),
 *                  else the tiled kernel. hipBLASLt is not used yet.
 *
 * Activation types. EGRC_GPU_DTYPE, read when a backend is opened, picks
 * the act_dtype: bf16 (unset or empty: the default) or fp32; any other value
 * fails the open with a message. In bf16 mode activations and the compute
 * copy of the weights are bf16 and GEMMs take bf16 operands with fp32
 * accumulation; master weights, gradients, AdamW moments and every loss,
 * entropy, log-prob and norm reduction stay fp32 (the contract's float *),
 * and adamw refreshes the bf16 copy from the updated masters. fp32 mode
 * (act_dtype F32, the compute copy IS the master, as on the CPU) is there
 * for parity runs: test_backend_parity holds it to the CPU backend at 1e-5.
 * EGRC_CUDA_TF32=1 (cuda_blas.c) applies to fp32 mode only.
 *
 * Graphs (the contract's graph_* ops, gpu_device.c): stream capture into a
 * CUDA graph / hipGraph. EGRC_GPU_GRAPHS, read at open: 1 captures, 0 makes
 * graph_begin decline (every op then runs directly); unset or empty is 1 in
 * the CUDA plugin and 0 in the HIP plugin, whose hipGraph support in ROCm
 * 5.2 (Debian 12) is marked beta and has not run here. Graphs point at the
 * scratch buffer and the RoPE table by address, so reallocating the one or
 * rewriting the other bumps `memory_generation`, and graph_launch refuses
 * (EGRC_GRAPH_STALE) a graph captured under an older generation. While a
 * capture is open, the ops that cannot be recorded (alloc, free, upload,
 * download, synchronize, scratch growth, a new RoPE table) stop the process
 * with a message rather than corrupt the capture.
 *
 * Errors. Failures in open and alloc are reported through egrc_error. A
 * failure inside an op (a launch error, a kernel fault, no memory for the
 * op's scratch, the BLAS refusing a GEMM) is latched, as backend.h's Faults
 * say: the first one fills `fault`, every later op does nothing (the GPU
 * context is unusable after most such errors anyway), graph_begin and
 * graph_end fail with it, and latched_error returns it until close. Each
 * op call is numbered, so the message can name it: "backend 'cuda': op
 * attention_forward (call 1234): <the runtime's error> (<its name>)". A
 * kernel fault usually shows only at the next wait (download, synchronize,
 * a wait inside rope's table upload); that message names the calls since
 * the last wait that found nothing, one of which failed, and how to make
 * the failing op report it itself (CUDA_LAUNCH_BLOCKING=1, or
 * AMD_SERIALIZE_KERNEL=3 on HIP). Capture-rule breaches (below) are bugs in
 * the caller, not faults: they stop the process. */
#ifndef EGRC_GPU_BACKEND_H
#define EGRC_GPU_BACKEND_H

#include "../../kernels/cuda/egrc_kernels.h"
#include "../backend.h"

typedef struct gpu_state gpu_state;

/* One GEMM in BLAS terms (column-major; see egrc_gpu_gemm):
 * D(m,n) = op(A)(m,k) op(B)(k,n) + beta*D (+ bias(m) on every column).
 * A, B and bias are in ab_type (the activation type); D is in d_type: the
 * activation type too, or fp32 for weight gradients. */
typedef struct gpu_gemm {
    int trans_a, trans_b, m, n, k, lda, ldb, ldd;
    const void *A, *B, *bias; /* bias may be NULL, and comes only with ldd == m */
    void *D;
    float beta;
    egrc_gpu_dtype ab_type, d_type;
} gpu_gemm;

/* How many of the last op calls a fault found at a wait lists by name. */
#define GPU_RECENT_OPS 6

struct gpu_state {
    cudaStream_t stream;
    egrc_gpu_dtype act; /* the activation type: be->act_dtype in the kernels' terms */
    int stream_ordered_alloc; /* cudaMallocAsync is available */
    /* Shared memory a block may have, which sizes the attention blocks, and
     * the widest head those fit. */
    size_t shared_limit;
    int max_head_dim;
    /* The GEMM engine (gpu_gemm_open): the vendor BLAS, with its own state
     * in `blas`, or the tiled kernel. `gemm_release` may be NULL. */
    void (*gemm)(gpu_state *st, const gpu_gemm *g);
    void (*gemm_release)(gpu_state *st);
    void *blas;
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
    /* Graph capture: EGRC_GPU_GRAPHS; a capture is open on the stream; the
     * generation of what graphs point at (see the top of this file). */
    int graphs_enabled;
    int capturing;
    unsigned memory_generation;
    /* The latched fault (top of this file), and what its message names:
     * the op calls so far, the op running now, the first call since the
     * last wait that found nothing (0: none since), and the names of the
     * last GPU_RECENT_OPS calls (call c at c % GPU_RECENT_OPS). */
    int faulted;
    egrc_error fault;
    unsigned long long calls;
    const char *op;
    unsigned long long first_unwaited_call;
    const char *recent_ops[GPU_RECENT_OPS];
};

static inline gpu_state *gpu_state_of(egrc_backend *be) { return (gpu_state *)be->impl; }

/* Formats into err (if any) and returns -1: the plugin cannot call
 * egrc_fail, as the core is not exported to plugins. */
int gpu_fail(egrc_error *err, const char *fmt, ...) EGRC_PRINTF(2, 3);
/* Prints "egrc: <cuda|hip> backend: <message>" and exits. */
void gpu_fatal(const char *fmt, ...) EGRC_PRINTF(1, 2) __attribute__((noreturn));
/* Starts op `name`, numbering the call: the backend's state, or NULL when a
 * fault is latched, and the op must then do nothing. */
gpu_state *gpu_op(egrc_backend *be, const char *name);
/* Latches `status` as the running op's fault unless it is cudaSuccess;
 * returns 0 when it is, else -1. */
int gpu_check(gpu_state *st, cudaError_t status);
/* Latches a fault of the running op that the glue words itself (a BLAS
 * status, a refused GEMM); returns -1. */
int gpu_fault(gpu_state *st, const char *fmt, ...) EGRC_PRINTF(2, 3);
/* Waits for the stream; a fault it reports is latched as one of the calls
 * since the last wait. Returns 0, or -1 with the fault latched. */
int gpu_wait(gpu_state *st);
/* At least `bytes` of device scratch in *scratch, valid until the next call
 * (stream order makes reuse by the next op safe); 0, or -1 with running out
 * of memory latched. Growing it during a capture is fatal. */
int gpu_scratch(gpu_state *st, size_t bytes, void **scratch);
/* gpu_fatal when a capture is open: `what` cannot be recorded into a graph. */
void gpu_refuse_while_capturing(const gpu_state *st, const char *what);

/* Devices (per vendor: cuda_driver.c, hip_driver.c). */
int gpu_device_count(egrc_error *err);

/* Device, memory and stream ops (gpu_device.c). */
int gpu_device_info(int device, egrc_device_info *info, egrc_error *err);
egrc_backend *gpu_open(int device, egrc_error *err);
void gpu_close(egrc_backend *be);
int gpu_supports(egrc_backend *be, const egrc_model_shape *shape, egrc_error *err);
int gpu_latched_error(egrc_backend *be, egrc_error *err);
void *gpu_alloc(egrc_backend *be, size_t bytes, egrc_error *err);
void gpu_free(egrc_backend *be, void *ptr);
void gpu_upload(egrc_backend *be, void *dst, const void *src_host, size_t bytes);
void gpu_download(egrc_backend *be, void *dst_host, const void *src, size_t bytes);
void gpu_zero(egrc_backend *be, void *ptr, size_t bytes);
void gpu_synchronize(egrc_backend *be);
int gpu_graph_begin(egrc_backend *be, egrc_error *err);
egrc_graph *gpu_graph_end(egrc_backend *be, egrc_error *err);
int gpu_graph_launch(egrc_backend *be, egrc_graph *graph);
void gpu_graph_free(egrc_backend *be, egrc_graph *graph);

/* Linear layers (gpu_matmul.c). gpu_gemm_open picks the engine: the vendor
 * BLAS where the plugin has one, the tiled kernel otherwise or when the
 * environment sets EGRC_GPU_GEMM=tiled. gpu_tiled_gemm runs one GEMM on the
 * tiled kernel (also the BLAS engine's fallback for a GEMM it cannot run). */
int gpu_gemm_open(gpu_state *st, egrc_error *err);
void gpu_tiled_gemm(gpu_state *st, const gpu_gemm *g);
/* The tiled kernel's launch for one GEMM and its status, latching nothing
 * (for checks outside an op, such as hip_blas.c's self-check at open). */
cudaError_t gpu_tiled_gemm_launch(cudaStream_t stream, const gpu_gemm *g);
void gpu_matmul_forward(egrc_backend *be, void *out, const void *inp, const void *w, const void *bias, int N, int C,
                        int OC);
void gpu_matmul_backward(egrc_backend *be, void *dinp, float *dw, float *dbias, const void *dout, const void *inp,
                         const void *w, int N, int C, int OC);

#ifdef EGRC_GPU_BLAS
/* The vendor BLAS engine (cuda_blas.c, hip_blas.c): sets st->gemm, and
 * gemm_release and blas where it holds state. An engine latches what fails
 * (gpu_check, gpu_fault) and runs nothing once st->faulted is set. */
int gpu_blas_open(gpu_state *st, egrc_error *err);
#endif

/* The ops table (gpu_ops.c). */
const egrc_backend_ops *gpu_backend_ops(void);

#endif
