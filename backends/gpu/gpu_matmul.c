/* Linear layers, for both plugins, on one GEMM engine per open backend:
 * the vendor BLAS (cuBLASLt, emulated on gpuemu; rocBLAS where the machine
 * has it), or the project's tiled kernel (kernels/cuda/gemm.cu), which the
 * HIP plugin uses without rocBLAS, and EGRC_GPU_GEMM=tiled anywhere (so the
 * kernel can be tested against the vendor BLAS and the CPU).
 *
 * The contract is row-major; BLAS is column-major. A row-major (R,C) matrix
 * is the column-major (C,R) matrix with the same bytes, i.e. its transpose,
 * so each row-major product is computed as its transpose:
 *   out(N,OC) = inp @ w^T      ->  out^T(OC,N) = w(as C x OC)^T * inp^T
 *   dinp(N,C) = dout @ w       ->  dinp^T(C,N) = w^T(C x OC) * dout^T
 *   dw(OC,C) += dout^T @ inp   ->  dw^T(C,OC) += inp^T(C x N) * dout(N x OC)
 *
 * Types: inp, w, bias, out, dout and dinp are activations (st->act); dw is
 * fp32 always, so its GEMM reads activations and accumulates into fp32
 * (bf16 -> fp32 in bf16 mode); dbias is an fp32 column sum of dout. */
#include <stdlib.h>
#include <string.h>

#include "gpu_backend.h"

cudaError_t gpu_tiled_gemm_launch(cudaStream_t stream, const gpu_gemm *g) {
    return egrc_gpu_gemm(stream, g->ab_type, g->d_type, g->trans_a, g->trans_b, g->m, g->n, g->k, g->A, g->lda, g->B,
                         g->ldb, g->D, g->ldd, g->beta, g->bias);
}

void gpu_tiled_gemm(gpu_state *st, const gpu_gemm *g) { gpu_check(st, gpu_tiled_gemm_launch(st->stream, g)); }

int gpu_gemm_open(gpu_state *st, egrc_error *err) {
    const char *choice = getenv("EGRC_GPU_GEMM");
    const int tiled = choice && strcmp(choice, "tiled") == 0;
    if (choice && *choice && !tiled)
        return gpu_fail(err, "EGRC_GPU_GEMM=%s: the one choice is 'tiled' (the project's GEMM kernel); unset it for "
                        "the default", choice);
#ifdef EGRC_GPU_BLAS
    if (!tiled) return gpu_blas_open(st, err);
#endif
    st->gemm = gpu_tiled_gemm;
    return 0;
}

/* Column-major D(m,n) = op(A) op(B) + beta D (+ bias(m) broadcast over columns);
 * A, B and bias are activations, D is in d_type. Nothing once an earlier
 * GEMM of the op latched a fault. */
static void gemm(gpu_state *st, egrc_gpu_dtype d_type, int trans_a, int trans_b, int m, int n, int k, const void *A,
                 int lda, const void *B, int ldb, void *D, int ldd, float beta, const void *bias) {
    if (st->faulted || m <= 0 || n <= 0 || k <= 0) return; /* empty batch: nothing to compute */
    const gpu_gemm g = {trans_a, trans_b, m, n, k, lda, ldb, ldd, A, B, bias, D, beta, st->act, d_type};
    st->gemm(st, &g);
}

void gpu_matmul_forward(egrc_backend *be, void *out, const void *inp, const void *w, const void *bias, int N, int C,
                        int OC) {
    gpu_state *st = gpu_op(be, "matmul_forward");
    if (st) gemm(st, st->act, 1, 0, OC, N, C, w, C, inp, C, out, OC, 0.0f, bias);
}

void gpu_matmul_backward(egrc_backend *be, void *dinp, float *dw, float *dbias, const void *dout, const void *inp,
                         const void *w, int N, int C, int OC) {
    gpu_state *st = gpu_op(be, "matmul_backward");
    if (!st) return;
    if (dinp) gemm(st, st->act, 0, 0, C, N, OC, w, C, dout, OC, dinp, C, 0.0f, NULL);
    gemm(st, EGRC_GPU_F32, 0, 1, C, OC, N, inp, C, dout, OC, dw, C, 1.0f, NULL);
    void *scratch;
    if (dbias && !st->faulted && gpu_scratch(st, egrc_gpu_column_sums_scratch(N, OC), &scratch) == 0)
        gpu_check(st, egrc_gpu_bias_backward(st->stream, st->act, scratch, dbias, dout, N, OC));
}
