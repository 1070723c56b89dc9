/* Linear layers through cuBLASLt, fp32 in and out with fp32 accumulation
 * (CUBLAS_COMPUTE_32F; TF32 only when EGRC_CUDA_TF32=1).
 *
 * The contract is row-major; cuBLASLt is column-major. A row-major (R,C)
 * matrix is the column-major (C,R) matrix with the same bytes, i.e. its
 * transpose, so each row-major product is computed as its transpose:
 *   out(N,OC) = inp @ w^T      ->  out^T(OC,N) = w(as C x OC)^T * inp^T
 *   dinp(N,C) = dout @ w       ->  dinp^T(C,N) = w^T(C x OC) * dout^T
 *   dw(OC,C) += dout^T @ inp   ->  dw^T(C,OC) += inp^T(C x N) * dout(N x OC)
 * Results are deterministic: a cached plan fixes the algorithm per shape and
 * cuBLASLt's reductions are ordered. */
#include <stdint.h>
#include <string.h>

#include "cuda_backend.h"

/* Largest power of two (<= 256) dividing the address: weights live at any
 * float offset of the one parameter buffer, and cuBLASLt assumes 256-byte
 * alignment unless told otherwise. */
static unsigned alignment(const void *ptr) {
    uintptr_t address = (uintptr_t)ptr;
    unsigned align = 256;
    while (align > 1 && address % align) align /= 2;
    return align;
}

/* The GEMM epilogue reads the bias with vector loads (observed to need 16
 * bytes on A100); other biases are added by a separate kernel. */
#define BIAS_EPILOGUE_ALIGNMENT 16

static void check_lt(cublasStatus_t status, const char *what) {
    if (status != CUBLAS_STATUS_SUCCESS) cuda_fatal("%s failed: %s", what, cublasLtGetStatusString(status));
}

static void destroy_plan(cuda_gemm_plan *plan) {
    cublasLtMatrixLayoutDestroy(plan->a);
    cublasLtMatrixLayoutDestroy(plan->b);
    cublasLtMatrixLayoutDestroy(plan->c);
    cublasLtMatmulDescDestroy(plan->desc);
}

void cuda_gemm_release(cuda_state *st) {
    for (int i = 0; i < st->n_plans; i++) destroy_plan(&st->plans[i]);
    st->n_plans = 0;
}

static void set_alignment(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, unsigned bytes) {
    uint32_t value = bytes;
    check_lt(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof value), "cuBLASLt preference");
}

static void build_plan(cuda_state *st, cuda_gemm_plan *plan, const cuda_gemm_shape *s) {
    plan->shape = *s;
    check_lt(cublasLtMatmulDescCreate(&plan->desc, st->gemm_compute, CUDA_R_32F), "cuBLASLt descriptor");
    const cublasOperation_t op_a = s->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_b = s->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    check_lt(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a),
             "cuBLASLt descriptor");
    check_lt(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b),
             "cuBLASLt descriptor");
    if (s->bias) {
        const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
        check_lt(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue),
                 "cuBLASLt descriptor");
    }
    /* Stored shapes (rows x cols, column-major) before the transposes. */
    check_lt(cublasLtMatrixLayoutCreate(&plan->a, CUDA_R_32F, s->trans_a ? s->k : s->m, s->trans_a ? s->m : s->k,
                                        s->lda),
             "cuBLASLt layout");
    check_lt(cublasLtMatrixLayoutCreate(&plan->b, CUDA_R_32F, s->trans_b ? s->n : s->k, s->trans_b ? s->k : s->n,
                                        s->ldb),
             "cuBLASLt layout");
    check_lt(cublasLtMatrixLayoutCreate(&plan->c, CUDA_R_32F, s->m, s->n, s->ldc), "cuBLASLt layout");

    cublasLtMatmulPreference_t pref;
    check_lt(cublasLtMatmulPreferenceCreate(&pref), "cuBLASLt preference");
    const uint64_t workspace = st->lt_workspace_bytes;
    check_lt(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                  sizeof workspace),
             "cuBLASLt preference");
    set_alignment(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, s->align_a);
    set_alignment(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, s->align_b);
    set_alignment(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, s->align_c);
    set_alignment(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, s->align_c);
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    check_lt(cublasLtMatmulAlgoGetHeuristic(st->lt, plan->desc, plan->a, plan->b, plan->c, plan->c, pref, 1, &result,
                                            &found),
             "cuBLASLt algorithm search");
    cublasLtMatmulPreferenceDestroy(pref);
    if (found < 1)
        cuda_fatal("cuBLASLt has no algorithm for a %d x %d x %d fp32 GEMM (alignments %u/%u/%u bytes)", s->m, s->n,
                   s->k, s->align_a, s->align_b, s->align_c);
    plan->algo = result.algo;
}

static cuda_gemm_plan *plan_for(cuda_state *st, const cuda_gemm_shape *shape) {
    for (int i = 0; i < st->n_plans; i++)
        if (memcmp(&st->plans[i].shape, shape, sizeof *shape) == 0) return &st->plans[i];
    cuda_gemm_plan *plan;
    if (st->n_plans < CUDA_GEMM_PLANS) {
        plan = &st->plans[st->n_plans++];
    } else { /* more shapes than a model has: recycle slots in turn */
        plan = &st->plans[st->next_evicted];
        st->next_evicted = (st->next_evicted + 1) % CUDA_GEMM_PLANS;
        destroy_plan(plan);
    }
    build_plan(st, plan, shape);
    return plan;
}

/* Column-major D(m,n) = op(A) op(B) + beta D (+ bias(m) broadcast over columns). */
static void gemm(cuda_state *st, int trans_a, int trans_b, int m, int n, int k, const void *A, int lda, const void *B,
                 int ldb, void *D, int ldd, float beta, const void *bias) {
    if (m <= 0 || n <= 0 || k <= 0) return; /* empty batch: nothing to compute */
    cuda_gemm_shape shape;
    memset(&shape, 0, sizeof shape); /* the whole struct is the cache key */
    shape.trans_a = trans_a;
    shape.trans_b = trans_b;
    shape.m = m;
    shape.n = n;
    shape.k = k;
    shape.lda = lda;
    shape.ldb = ldb;
    shape.ldc = ldd;
    shape.bias = bias != NULL;
    shape.align_a = alignment(A);
    shape.align_b = alignment(B);
    shape.align_c = alignment(D);
    cuda_gemm_plan *plan = plan_for(st, &shape);
    if (bias)
        check_lt(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias),
                 "cuBLASLt bias");
    const float alpha = 1.0f;
    check_lt(cublasLtMatmul(st->lt, plan->desc, &alpha, A, plan->a, B, plan->b, &beta, D, plan->c, D, plan->c,
                            &plan->algo, st->lt_workspace, st->lt_workspace_bytes, st->stream),
             "cuBLASLt matmul");
}

void cuda_matmul_forward(egrc_backend *be, void *out, const void *inp, const void *w, const void *bias, int N, int C,
                         int OC) {
    cuda_state *st = cuda_state_of(be);
    const int fused = bias && alignment(bias) >= BIAS_EPILOGUE_ALIGNMENT;
    gemm(st, 1, 0, OC, N, C, w, C, inp, C, out, OC, 0.0f, fused ? bias : NULL);
    if (bias && !fused) cuda_check(egrc_gpu_bias_add(st->stream, out, bias, N, OC), "matmul_forward (bias)");
}

void cuda_matmul_backward(egrc_backend *be, void *dinp, float *dw, float *dbias, const void *dout, const void *inp,
                          const void *w, int N, int C, int OC) {
    cuda_state *st = cuda_state_of(be);
    if (dinp) gemm(st, 0, 0, C, N, OC, w, C, dout, OC, dinp, C, 0.0f, NULL);
    gemm(st, 0, 1, C, OC, N, inp, C, dout, OC, dw, C, 1.0f, NULL);
    if (dbias) {
        void *scratch = cuda_scratch(st, egrc_gpu_column_sums_scratch(N, OC));
        cuda_check(egrc_gpu_bias_backward(st->stream, scratch, dbias, dout, N, OC), "matmul_backward (bias)");
    }
}
