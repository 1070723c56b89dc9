/* The CUDA plugin's GEMM engine: cuBLASLt with fp32 accumulation
 * (CUBLAS_COMPUTE_32F) on the operands' own types: fp32 in and out in fp32
 * mode (TF32 only when EGRC_CUDA_TF32=1); bf16 A/B (and bias) in bf16 mode,
 * with D in bf16 for activations and fp32 for weight gradients.
 * gpu_matmul.c maps the linear layers onto column-major GEMMs; this file
 * runs them. Results are deterministic: a cached plan fixes the algorithm
 * per shape and cuBLASLt's reductions are ordered. A shape for which
 * cuBLASLt offers no algorithm (it may refuse bf16 operands at 2-byte
 * alignment) runs on the tiled kernel instead. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>

#include "../gpu/gpu_backend.h"

/* cuBLASLt's recommended workspace for Hopper; plenty for Ampere. */
#define LT_WORKSPACE_BYTES ((size_t)32 << 20)

/* cuBLASLt plans (descriptors + chosen algorithm) are cached per GEMM shape:
 * a model uses a dozen shapes, and picking an algorithm costs far more than
 * running a small GEMM. */
#define LT_PLANS 64

typedef struct lt_shape {
    int trans_a, trans_b, m, n, k, lda, ldb, ldc, bias;
    int bf16_ab, bf16_d;                /* element types: bf16 (1) or fp32 (0) */
    unsigned align_a, align_b, align_c; /* bytes: cuBLASLt picks kernels by pointer alignment */
} lt_shape;

typedef struct lt_plan {
    lt_shape shape;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
    int tiled; /* cuBLASLt has no algorithm: the tiled kernel runs this shape */
} lt_plan;

typedef struct lt_state {
    cublasLtHandle_t lt;
    void *workspace;
    size_t workspace_bytes;
    cublasComputeType_t compute; /* fp32, or TF32 when EGRC_CUDA_TF32=1 */
    lt_plan plans[LT_PLANS];
    int n_plans, next_evicted;
} lt_state;

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
/* The heuristic reads the bias pointer's value (never what it points at) to
 * learn how aligned biases will be, cuBLASLt documents. A plan serves every
 * bias the epilogue takes, so it is chosen for this stand-in: an address of
 * exactly the least alignment those biases have. */
#define BIAS_ALIGNMENT_PROBE ((const void *)(uintptr_t)BIAS_EPILOGUE_ALIGNMENT)

/* Latches a cuBLASLt status other than success as the running op's fault
 * (a library refusal); returns 0 on success, else -1. */
static int check_lt(gpu_state *st, cublasStatus_t status, const char *what) {
    if (status == CUBLAS_STATUS_SUCCESS) return 0;
    return gpu_fault(st, "%s: %s", what, cublasLtGetStatusString(status));
}

/* Handles a failed build leaves unset are NULL: destroy only what exists. */
static void destroy_plan(lt_plan *plan) {
    if (plan->a) cublasLtMatrixLayoutDestroy(plan->a);
    if (plan->b) cublasLtMatrixLayoutDestroy(plan->b);
    if (plan->c) cublasLtMatrixLayoutDestroy(plan->c);
    if (plan->desc) cublasLtMatmulDescDestroy(plan->desc);
    memset(plan, 0, sizeof *plan);
}

static cublasStatus_t set_alignment(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr,
                                    unsigned bytes) {
    uint32_t value = bytes;
    return cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof value);
}

/* The descriptor and layouts of a plan for shape s; 0, or -1 latched. */
static int describe_plan(gpu_state *st, lt_state *lt, lt_plan *plan, const lt_shape *s) {
    const cudaDataType_t ab_type = s->bf16_ab ? CUDA_R_16BF : CUDA_R_32F, d_type = s->bf16_d ? CUDA_R_16BF : CUDA_R_32F;
    /* TF32 rounds fp32 operands; bf16 operands always multiply exactly in fp32. */
    const cublasComputeType_t compute = s->bf16_ab ? CUBLAS_COMPUTE_32F : lt->compute;
    const cublasOperation_t op_a = s->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_b = s->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (check_lt(st, cublasLtMatmulDescCreate(&plan->desc, compute, CUDA_R_32F), "cuBLASLt descriptor") ||
        check_lt(st, cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a),
                 "cuBLASLt descriptor") ||
        check_lt(st, cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b),
                 "cuBLASLt descriptor"))
        return -1;
    if (s->bias) {
        /* The bias is a weight, in the operands' type, which is D's type
         * whenever a bias comes (the forward); said explicitly all the same. */
        const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
        const int32_t bias_type = (int32_t)ab_type;
        const void *probe = BIAS_ALIGNMENT_PROBE;
        if (check_lt(st, cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                                        sizeof epilogue),
                     "cuBLASLt descriptor") ||
            check_lt(st, cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                        sizeof bias_type),
                     "cuBLASLt descriptor") ||
            check_lt(st, cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &probe,
                                                        sizeof probe),
                     "cuBLASLt descriptor"))
            return -1;
    }
    /* Stored shapes (rows x cols, column-major) before the transposes. */
    if (check_lt(st, cublasLtMatrixLayoutCreate(&plan->a, ab_type, s->trans_a ? s->k : s->m,
                                                s->trans_a ? s->m : s->k, s->lda),
                 "cuBLASLt layout") ||
        check_lt(st, cublasLtMatrixLayoutCreate(&plan->b, ab_type, s->trans_b ? s->n : s->k,
                                                s->trans_b ? s->k : s->n, s->ldb),
                 "cuBLASLt layout") ||
        check_lt(st, cublasLtMatrixLayoutCreate(&plan->c, d_type, s->m, s->n, s->ldc), "cuBLASLt layout"))
        return -1;
    return 0;
}

/* The algorithm for a described plan, or plan->tiled; 0, or -1 latched. */
static int choose_algorithm(gpu_state *st, lt_state *lt, lt_plan *plan, const lt_shape *s) {
    cublasLtMatmulPreference_t pref;
    if (check_lt(st, cublasLtMatmulPreferenceCreate(&pref), "cuBLASLt preference")) return -1;
    const uint64_t workspace = lt->workspace_bytes;
    cublasStatus_t status = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                                 &workspace, sizeof workspace);
    if (status == CUBLAS_STATUS_SUCCESS)
        status = set_alignment(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, s->align_a);
    if (status == CUBLAS_STATUS_SUCCESS)
        status = set_alignment(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, s->align_b);
    if (status == CUBLAS_STATUS_SUCCESS)
        status = set_alignment(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, s->align_c);
    if (status == CUBLAS_STATUS_SUCCESS)
        status = set_alignment(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, s->align_c);
    if (check_lt(st, status, "cuBLASLt preference")) {
        cublasLtMatmulPreferenceDestroy(pref);
        return -1;
    }
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    status = cublasLtMatmulAlgoGetHeuristic(lt->lt, plan->desc, plan->a, plan->b, plan->c, plan->c, pref, 1, &result,
                                            &found);
    cublasLtMatmulPreferenceDestroy(pref);
    /* No algorithm for these types at these alignments: the tiled kernel
     * takes any alignment. An fp32 GEMM always had one so far. */
    if (status == CUBLAS_STATUS_NOT_SUPPORTED || (status == CUBLAS_STATUS_SUCCESS && found < 1)) {
        if (!s->bf16_ab)
            return gpu_fault(st, "cuBLASLt has no algorithm for a %d x %d x %d fp32 GEMM (alignments %u/%u/%u bytes)",
                             s->m, s->n, s->k, s->align_a, s->align_b, s->align_c);
        plan->tiled = 1;
        return 0;
    }
    if (check_lt(st, status, "cuBLASLt algorithm search")) return -1;
    plan->tiled = 0;
    plan->algo = result.algo;
    return 0;
}

/* The cached plan for a shape, built on first use; NULL when building it
 * failed (latched: no GEMM runs after that). */
static lt_plan *plan_for(gpu_state *st, lt_state *lt, const lt_shape *shape) {
    for (int i = 0; i < lt->n_plans; i++)
        if (memcmp(&lt->plans[i].shape, shape, sizeof *shape) == 0) return &lt->plans[i];
    lt_plan *plan;
    if (lt->n_plans < LT_PLANS) {
        plan = &lt->plans[lt->n_plans++];
    } else { /* more shapes than a model has: recycle slots in turn */
        plan = &lt->plans[lt->next_evicted];
        lt->next_evicted = (lt->next_evicted + 1) % LT_PLANS;
        destroy_plan(plan);
    }
    plan->shape = *shape;
    if (describe_plan(st, lt, plan, shape) || choose_algorithm(st, lt, plan, shape)) {
        destroy_plan(plan); /* an all-zero shape matches no GEMM, which has positive m, n and k */
        return NULL;
    }
    return plan;
}

static void lt_gemm(gpu_state *st, const gpu_gemm *g) {
    lt_state *lt = st->blas;
    const void *bias = g->bias && alignment(g->bias) >= BIAS_EPILOGUE_ALIGNMENT ? g->bias : NULL;
    lt_shape shape;
    memset(&shape, 0, sizeof shape); /* the whole struct is the cache key */
    shape.trans_a = g->trans_a;
    shape.trans_b = g->trans_b;
    shape.m = g->m;
    shape.n = g->n;
    shape.k = g->k;
    shape.lda = g->lda;
    shape.ldb = g->ldb;
    shape.ldc = g->ldd;
    shape.bias = bias != NULL;
    shape.bf16_ab = g->ab_type == EGRC_GPU_BF16;
    shape.bf16_d = g->d_type == EGRC_GPU_BF16;
    shape.align_a = alignment(g->A);
    shape.align_b = alignment(g->B);
    shape.align_c = alignment(g->D);
    lt_plan *plan = plan_for(st, lt, &shape);
    if (!plan) return;
    if (plan->tiled) {
        gpu_tiled_gemm(st, g);
        return;
    }
    const float alpha = 1.0f;
    if ((bias && check_lt(st, cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                             sizeof bias),
                          "cuBLASLt bias")) ||
        check_lt(st, cublasLtMatmul(lt->lt, plan->desc, &alpha, g->A, plan->a, g->B, plan->b, &g->beta, g->D,
                                    plan->c, g->D, plan->c, &plan->algo, lt->workspace, lt->workspace_bytes,
                                    st->stream),
                 "cuBLASLt matmul"))
        return;
    /* D(m,n) with ldd == m is the row-major (n,m) matrix bias_add takes. */
    if (g->bias && !bias) gpu_check(st, egrc_gpu_bias_add(st->stream, g->d_type, g->D, g->bias, g->n, g->m));
}

static void lt_release(gpu_state *st) {
    lt_state *lt = st->blas;
    if (!lt) return;
    for (int i = 0; i < lt->n_plans; i++) destroy_plan(&lt->plans[i]);
    if (lt->lt) cublasLtDestroy(lt->lt);
    cudaFree(lt->workspace);
    free(lt);
    st->blas = NULL;
}

int gpu_blas_open(gpu_state *st, egrc_error *err) {
    lt_state *lt = calloc(1, sizeof *lt);
    if (!lt) return gpu_fail(err, "out of host memory opening the cuda backend");
    st->blas = lt;
    st->gemm = lt_gemm;
    st->gemm_release = lt_release; /* from here on, the caller's cleanup frees lt */
    lt->workspace_bytes = LT_WORKSPACE_BYTES;
    cudaError_t status = cudaMalloc(&lt->workspace, lt->workspace_bytes);
    if (status != cudaSuccess) {
        cudaGetLastError();
        return gpu_fail(err, "allocating the cuBLASLt workspace: %s", cudaGetErrorString(status));
    }
    cublasStatus_t lt_status = cublasLtCreate(&lt->lt);
    if (lt_status != CUBLAS_STATUS_SUCCESS)
        return gpu_fail(err, "cublasLtCreate: %s", cublasLtGetStatusString(lt_status));
    /* TF32 GEMMs are several times faster but round inputs to 10 mantissa
     * bits, which breaks the 1e-5 parity with the CPU: opt-in only. */
    const char *tf32 = getenv("EGRC_CUDA_TF32");
    lt->compute = tf32 && strcmp(tf32, "1") == 0 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    return 0;
}
