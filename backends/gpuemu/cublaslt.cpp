/* cuBLASLt on the CPU, for the gpuemu plugin (include/cublasLt.h): the
 * CUDA plugin's GEMM engine (backends/cuda/cuda_blas.c) runs unchanged in
 * tests without a GPU, so its mapping of egrc's GEMMs onto cuBLASLt's
 * column-major layouts, transposes, epilogue and plan cache is held to the
 * CPU backend like every kernel.
 *
 * What it checks, as cuBLASLt documents it. Each refusal returns
 * cuBLASLt's status and prints one "gpuemu: cuBLASLt:" line saying why, so
 * that the glue's own error path runs as well:
 *   - attribute values of the documented sizes;
 *   - the problem: op(A) is m x k, op(B) k x n, C and D m x n; every
 *     leading dimension at least its matrix's rows; the element types
 *     cuBLASLt pairs with fp32 compute and scale (A and B of one type; C of
 *     D's; bf16 A/B with bf16 or fp32 D; fp32 A/B with fp32 D, the only
 *     types TF32 takes); a bias in D's type; the epilogues DEFAULT and BIAS;
 *   - an algorithm runs only the problem it was found for, and only on
 *     pointers as aligned as the preference promised (256 bytes unless set)
 *     and on a bias as aligned as the bias pointer the heuristic saw (it
 *     reads the pointer for that; a null pointer promises the most);
 *   - C and D the same buffer only with identical layouts; A, B and the
 *     bias never overlapping D; at run time, every range in live device
 *     memory.
 * What it models where cuBLASLt documents nothing, on the strict side and
 * as cuda_blas.c assumes, so that the glue's fallbacks run in tests: no
 * algorithm for a bf16 operand whose pointer or leading dimension is only
 * 2-byte aligned, and a bias epilogue needs a 16-byte aligned bias.
 *
 * Arithmetic: fp32 products summed in order of k, times alpha, plus beta C
 * (C not read when beta is 0), plus the bias, rounded once to D's type (to
 * nearest even); with TF32 compute the fp32 operands are first rounded to
 * 10 mantissa bits. The matmul is stream-ordered work of the emulated
 * runtime, so a stream capture records it (alpha, beta and the bias pointer
 * by value, as cuBLASLt reads them at the call). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "cuda_runtime.h"
#include "cublasLt.h"

struct cublasLtContext {
    bool live;
};

struct cublasLtMatmulDescOpaque_t {
    cublasComputeType_t compute;
    int32_t trans_a, trans_b;
    uint32_t epilogue;
    const void *bias;
    int32_t bias_type; /* -1: D's type */
};

struct cublasLtMatrixLayoutOpaque_t {
    cudaDataType_t type;
    uint64_t rows, cols;
    int64_t ld;
};

enum { align_a, align_b, align_c, align_d, matrices };

struct cublasLtMatmulPreferenceOpaque_t {
    uint64_t max_workspace;
    uint32_t alignment[matrices]; /* bytes the caller promises of each pointer */
};

namespace {

constexpr uint32_t default_alignment = 256;
/* The widest vector load an algorithm is assumed to make. */
constexpr uint32_t widest_load = 16;
/* The bias alignment the BIAS epilogue is taken to need (see above). */
constexpr uint32_t bias_alignment = 16;
/* A block of D computed together: `panel` columns as vector lanes on the
 * host, `rows` rows. */
constexpr size_t panel = 8, rows = 4;
/* Marks an algorithm descriptor this file filled in. */
constexpr uint64_t algo_mark = 0x65677263656d756cull;

cublasStatus_t refuse(cublasStatus_t status, const char *call, const char *format, ...) {
    va_list args;
    va_start(args, format);
    fprintf(stderr, "gpuemu: cuBLASLt: %s: ", call);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    return status;
}

size_t element_bytes(cudaDataType_t type) { return type == CUDA_R_16BF ? 2 : 4; }

bool known_type(int type) { return type == CUDA_R_32F || type == CUDA_R_16BF; }

/* One matmul, as the descriptor and layouts describe it. */
struct problem {
    int64_t m, n, k;
    int32_t trans_a, trans_b;
    cudaDataType_t ab_type, d_type;
    int64_t ld[matrices];
    bool bias, tf32;

    /* Identifies the problem inside an algorithm descriptor. */
    uint64_t fingerprint() const {
        const uint64_t fields[] = {(uint64_t)m,      (uint64_t)n,     (uint64_t)k,     (uint64_t)trans_a,
                                   (uint64_t)trans_b, (uint64_t)ab_type, (uint64_t)d_type, (uint64_t)ld[0],
                                   (uint64_t)ld[1], (uint64_t)ld[2], (uint64_t)ld[3], (uint64_t)bias,
                                   (uint64_t)tf32};
        uint64_t hash = 0xcbf29ce484222325ull; /* FNV-1a over the fields */
        for (uint64_t field : fields)
            for (int byte = 0; byte < 8; byte++) hash = (hash ^ ((field >> (8 * byte)) & 0xff)) * 0x100000001b3ull;
        return hash;
    }
};

/* Fills *p from the descriptor and the four layouts, or refuses. */
cublasStatus_t describe(const char *call, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                        cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d, problem *p) {
    if (!desc || !a || !b || !c || !d) return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "a null descriptor or layout");
    const cublasLtMatrixLayout_t layouts[matrices] = {a, b, c, d};
    static const char *const names[matrices] = {"A", "B", "C", "D"};
    for (int i = 0; i < matrices; i++)
        if (layouts[i]->ld < (int64_t)layouts[i]->rows || layouts[i]->ld < 1)
            return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "%s: leading dimension %lld below its %llu rows",
                          names[i], (long long)layouts[i]->ld, (unsigned long long)layouts[i]->rows);
    p->trans_a = desc->trans_a;
    p->trans_b = desc->trans_b;
    p->m = (int64_t)(p->trans_a ? a->cols : a->rows);
    p->k = (int64_t)(p->trans_a ? a->rows : a->cols);
    const int64_t b_rows = (int64_t)(p->trans_b ? b->cols : b->rows);
    p->n = (int64_t)(p->trans_b ? b->rows : b->cols);
    if (b_rows != p->k)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "op(A) is %lld x %lld but op(B) has %lld rows",
                      (long long)p->m, (long long)p->k, (long long)b_rows);
    for (int i = align_c; i <= align_d; i++)
        if ((int64_t)layouts[i]->rows != p->m || (int64_t)layouts[i]->cols != p->n)
            return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "%s is %llu x %llu, op(A) op(B) is %lld x %lld",
                          names[i], (unsigned long long)layouts[i]->rows, (unsigned long long)layouts[i]->cols,
                          (long long)p->m, (long long)p->n);
    for (int i = 0; i < matrices; i++) p->ld[i] = layouts[i]->ld;
    p->ab_type = a->type;
    p->d_type = d->type;
    p->tf32 = desc->compute == CUBLAS_COMPUTE_32F_FAST_TF32;
    if (b->type != a->type || c->type != d->type)
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "A and B, or C and D, differ in type");
    if (p->ab_type == CUDA_R_32F ? p->d_type != CUDA_R_32F : p->tf32)
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "no fp32-compute kernel for A/B type %d with D type %d%s",
                      (int)p->ab_type, (int)p->d_type, p->tf32 ? " in TF32" : "");
    p->bias = desc->epilogue == CUBLASLT_EPILOGUE_BIAS;
    if (p->bias && desc->bias_type != -1 && desc->bias_type != (int32_t)p->d_type)
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "a bias of type %d with D of type %d (bias takes D's type)",
                      (int)desc->bias_type, (int)p->d_type);
    return CUBLAS_STATUS_SUCCESS;
}

/* The alignment an algorithm for this operand can rely on: what the pointer
 * is promised, and what every column start keeps of it. */
uint32_t usable_alignment(uint32_t promised, int64_t ld, cudaDataType_t type) {
    uint32_t alignment = std::min(promised, widest_load);
    const uint64_t column_bytes = (uint64_t)ld * element_bytes(type);
    while (alignment > 1 && column_bytes % alignment) alignment /= 2;
    return alignment;
}

uint32_t pointer_alignment(const void *ptr) {
    const uintptr_t address = (uintptr_t)ptr;
    uint32_t alignment = default_alignment;
    while (alignment > 1 && address % alignment) alignment /= 2;
    return alignment;
}

/* Where an algorithm descriptor keeps what it was found for: the problem's
 * fingerprint, then the alignment promised of A, B, C, D and the bias. */
enum { algo_fingerprint = 1, algo_promises = 2, algo_bias_promise = algo_promises + matrices };

/* An algorithm for *p under the promised alignments of A, B, C, D and of
 * the descriptor's bias (its pointer's own: the heuristic reads the pointer
 * for that, cuBLASLt says), or false if none. */
bool find_algorithm(const problem &p, const uint32_t promised[matrices], const void *bias,
                    cublasLtMatmulAlgo_t *algo) {
    memset(algo, 0, sizeof *algo);
    algo->data[0] = algo_mark;
    algo->data[algo_fingerprint] = p.fingerprint();
    for (int i = 0; i < matrices; i++) {
        const cudaDataType_t type = i < align_c ? p.ab_type : p.d_type;
        if (type == CUDA_R_16BF && usable_alignment(promised[i], p.ld[i], type) < 4) return false;
        algo->data[algo_promises + i] = std::min(promised[i], default_alignment); /* what pointer_alignment measures */
    }
    if (p.bias) {
        const uint32_t bias_promise = pointer_alignment(bias); /* a null pointer promises the most */
        if (bias_promise < bias_alignment) return false;
        algo->data[algo_bias_promise] = bias_promise;
    }
    return true;
}

bool same_layout(const cublasLtMatrixLayoutOpaque_t *x, const cublasLtMatrixLayoutOpaque_t *y) {
    return x->type == y->type && x->rows == y->rows && x->cols == y->cols && x->ld == y->ld;
}

size_t extent_bytes(const cublasLtMatrixLayoutOpaque_t *layout) {
    if (layout->rows == 0 || layout->cols == 0) return 0;
    return ((size_t)(layout->cols - 1) * (size_t)layout->ld + layout->rows) * element_bytes(layout->type);
}

float load(const void *base, cudaDataType_t type, size_t index) {
    if (type == CUDA_R_32F) return ((const float *)base)[index];
    const uint32_t bits = (uint32_t)((const uint16_t *)base)[index] << 16;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

void store(void *base, cudaDataType_t type, size_t index, float value) {
    if (type == CUDA_R_32F) {
        ((float *)base)[index] = value;
        return;
    }
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if (isnan(value)) bits |= 0x00400000u; /* stays NaN when truncated */
    else bits += 0x7fffu + ((bits >> 16) & 1u); /* round to nearest even */
    ((uint16_t *)base)[index] = (uint16_t)(bits >> 16);
}

/* TF32: fp32 with 10 mantissa bits, rounded to nearest even. */
float round_to_tf32(float value) {
    if (!isfinite(value)) return value;
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    bits += 0xfffu + ((bits >> 13) & 1u);
    bits &= ~0x1fffu;
    memcpy(&value, &bits, sizeof value);
    return value;
}

struct matmul_work {
    problem p;
    float alpha, beta;
    const void *A, *B, *C, *bias;
    void *D;
    size_t a_bytes, b_bytes, c_bytes, d_bytes;
    void *workspace;
    size_t workspace_bytes;

    void operator()() const {
        const char *call = "cublasLtMatmul";
        egrc_emu::check_device_range(call, "A", A, a_bytes);
        egrc_emu::check_device_range(call, "B", B, b_bytes);
        egrc_emu::check_device_range(call, "D", D, d_bytes);
        if (beta != 0.0f) egrc_emu::check_device_range(call, "C", C, c_bytes);
        const size_t bias_bytes = (size_t)p.m * element_bytes(p.d_type);
        if (p.bias) egrc_emu::check_device_range(call, "the bias", bias, bias_bytes);
        egrc_emu::check_device_range(call, "the workspace", workspace, workspace_bytes);
        egrc_emu::check_disjoint(call, A, a_bytes, D, d_bytes);
        egrc_emu::check_disjoint(call, B, b_bytes, D, d_bytes);
        if (p.bias) egrc_emu::check_disjoint(call, bias, bias_bytes, D, d_bytes);
        if (beta != 0.0f && C != D) egrc_emu::check_disjoint(call, C, c_bytes, D, d_bytes);

        /* op(A) as rows of k, op(B) as panels of `panel` columns interleaved
         * by l: each panel's sums then run as vector lanes, each still summed
         * in order of l. */
        const size_t m = (size_t)p.m, n = (size_t)p.n, k = (size_t)p.k;
        std::vector<float> a_rows(m * k), b_panels((n + panel - 1) / panel * panel * k, 0.0f);
        for (size_t i = 0; i < m; i++)
            for (size_t l = 0; l < k; l++)
                a_rows[i * k + l] = operand(A, p.trans_a ? l + i * (size_t)p.ld[align_a] : i + l * (size_t)p.ld[align_a]);
        for (size_t j = 0; j < n; j++)
            for (size_t l = 0; l < k; l++)
                b_panels[j / panel * panel * k + l * panel + j % panel] =
                    operand(B, p.trans_b ? j + l * (size_t)p.ld[align_b] : l + j * (size_t)p.ld[align_b]);
        for (size_t first = 0; first < n; first += panel) {
            const float *b = &b_panels[first * k];
            for (size_t row = 0; row < m; row += rows) {
                /* `rows` rows at once: independent sums hide the adds' latency. */
                float sums[rows][panel] = {};
                const size_t n_rows = std::min(rows, m - row);
                const float *a = &a_rows[row * k];
                for (size_t l = 0; l < k; l++)
                    for (size_t r = 0; r < rows; r++)
                        for (size_t lane = 0; lane < panel; lane++)
                            sums[r][lane] += a[std::min(r, n_rows - 1) * k + l] * b[l * panel + lane];
                for (size_t r = 0; r < n_rows; r++)
                    for (size_t j = first; j < std::min(first + panel, n); j++) {
                        const size_t i = row + r;
                        float value = alpha * sums[r][j - first];
                        if (beta != 0.0f) value += beta * load(C, p.d_type, i + j * (size_t)p.ld[align_c]);
                        if (p.bias) value += load(bias, p.d_type, i);
                        store(D, p.d_type, i + j * (size_t)p.ld[align_d], value);
                    }
            }
        }
    }

    float operand(const void *base, size_t index) const {
        const float value = load(base, p.ab_type, index);
        return p.tf32 ? round_to_tf32(value) : value;
    }
};

template <typename T>
cublasStatus_t read_attribute(const char *call, const void *value, size_t bytes, T *out) {
    if (!value || bytes != sizeof(T))
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "an attribute of %zu bytes where %zu are documented", bytes,
                      sizeof(T));
    memcpy(out, value, sizeof(T));
    return CUBLAS_STATUS_SUCCESS;
}

} // namespace

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle) {
    if (!handle) return refuse(CUBLAS_STATUS_INVALID_VALUE, "cublasLtCreate", "a null handle pointer");
    *handle = new cublasLtContext{true};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
    if (!handle || !handle->live) return refuse(CUBLAS_STATUS_NOT_INITIALIZED, "cublasLtDestroy", "not a live handle");
    handle->live = false;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasLtGetStatusString(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc, cublasComputeType_t compute,
                                        cudaDataType_t scale_type) {
    const char *call = "cublasLtMatmulDescCreate";
    if (!desc) return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "a null descriptor pointer");
    if (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_TF32)
        return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "compute type %d is not emulated", (int)compute);
    if (scale_type != CUDA_R_32F)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "fp32 compute scales in fp32, not type %d", (int)scale_type);
    *desc = new cublasLtMatmulDescOpaque_t{compute, CUBLAS_OP_N, CUBLAS_OP_N, CUBLASLT_EPILOGUE_DEFAULT, nullptr, -1};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
    delete desc;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute,
                                              const void *value, size_t bytes) {
    const char *call = "cublasLtMatmulDescSetAttribute";
    if (!desc) return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "a null descriptor");
    cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
    switch (attribute) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB: {
        int32_t op = 0;
        if ((status = read_attribute(call, value, bytes, &op))) return status;
        if (op != CUBLAS_OP_N && op != CUBLAS_OP_T)
            return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "operation %d is not N or T", (int)op);
        (attribute == CUBLASLT_MATMUL_DESC_TRANSA ? desc->trans_a : desc->trans_b) = op;
        return status;
    }
    case CUBLASLT_MATMUL_DESC_EPILOGUE: {
        uint32_t epilogue = 0;
        if ((status = read_attribute(call, value, bytes, &epilogue))) return status;
        if (epilogue != CUBLASLT_EPILOGUE_DEFAULT && epilogue != CUBLASLT_EPILOGUE_BIAS)
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "epilogue %u is not emulated", epilogue);
        desc->epilogue = epilogue;
        return status;
    }
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        return read_attribute(call, value, bytes, &desc->bias);
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: {
        int32_t type = 0;
        if ((status = read_attribute(call, value, bytes, &type))) return status;
        if (type != -1 && !known_type(type))
            return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "bias type %d is not emulated", (int)type);
        desc->bias_type = type;
        return status;
    }
    }
    return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "attribute %d is not emulated", (int)attribute);
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
    const char *call = "cublasLtMatrixLayoutCreate";
    if (!layout) return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "a null layout pointer");
    if (!known_type(type)) return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "type %d is not emulated", (int)type);
    *layout = new cublasLtMatrixLayoutOpaque_t{type, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
    delete layout;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *preference) {
    if (!preference) return refuse(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatmulPreferenceCreate", "a null pointer");
    *preference = new cublasLtMatmulPreferenceOpaque_t{
        0, {default_alignment, default_alignment, default_alignment, default_alignment}};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t preference) {
    delete preference;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t preference,
                                                    cublasLtMatmulPreferenceAttributes_t attribute, const void *value,
                                                    size_t bytes) {
    const char *call = "cublasLtMatmulPreferenceSetAttribute";
    if (!preference) return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "a null preference");
    if (attribute == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES)
        return read_attribute(call, value, bytes, &preference->max_workspace);
    if (attribute < CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES || attribute > CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "attribute %d is not emulated", (int)attribute);
    uint32_t alignment = 0;
    const cublasStatus_t status = read_attribute(call, value, bytes, &alignment);
    if (status) return status;
    if (alignment == 0 || (alignment & (alignment - 1)))
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "alignment %u is not a power of two", alignment);
    preference->alignment[attribute - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES] = alignment;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t preference, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int *found) {
    const char *call = "cublasLtMatmulAlgoGetHeuristic";
    if (!handle || !handle->live) return refuse(CUBLAS_STATUS_NOT_INITIALIZED, call, "not a live handle");
    if (!preference || requested < 1 || !results || !found)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "a null preference or result, or no result requested");
    *found = 0;
    problem p;
    const cublasStatus_t status = describe(call, desc, a, b, c, d, &p);
    if (status) return status;
    cublasLtMatmulHeuristicResult_t result = {};
    /* cuBLASLt says NOT_SUPPORTED, without a message, when nothing fits. */
    if (!find_algorithm(p, preference->alignment, desc->bias, &result.algo)) return CUBLAS_STATUS_NOT_SUPPORTED;
    result.state = CUBLAS_STATUS_SUCCESS;
    result.wavesCount = 1.0f;
    results[0] = result;
    *found = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t a, const void *B, cublasLtMatrixLayout_t b, const void *beta,
                              const void *C, cublasLtMatrixLayout_t c, void *D, cublasLtMatrixLayout_t d,
                              const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspace_bytes,
                              cudaStream_t stream) {
    const char *call = "cublasLtMatmul";
    if (!handle || !handle->live) return refuse(CUBLAS_STATUS_NOT_INITIALIZED, call, "not a live handle");
    if (!alpha || !beta || !A || !B || !D)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "a null alpha, beta, A, B or D");
    matmul_work work;
    cublasStatus_t status = describe(call, desc, a, b, c, d, &work.p);
    if (status) return status;
    /* Without an algorithm cuBLASLt asks its heuristic with default
     * preferences: 256-byte alignment promised of every pointer. */
    cublasLtMatmulAlgo_t implicit;
    if (!algo) {
        const uint32_t promised[matrices] = {default_alignment, default_alignment, default_alignment,
                                             default_alignment};
        if (!find_algorithm(work.p, promised, desc->bias, &implicit))
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call, "no algorithm for this problem");
        algo = &implicit;
    }
    if (algo->data[0] != algo_mark || algo->data[algo_fingerprint] != work.p.fingerprint())
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call,
                      "the algorithm was found for another problem (%lld x %lld x %lld, transposes %d/%d, types "
                      "%d/%d, lds %lld/%lld/%lld/%lld here)",
                      (long long)work.p.m, (long long)work.p.n, (long long)work.p.k, work.p.trans_a, work.p.trans_b,
                      (int)work.p.ab_type, (int)work.p.d_type, (long long)work.p.ld[0], (long long)work.p.ld[1],
                      (long long)work.p.ld[2], (long long)work.p.ld[3]);
    const void *pointers[matrices] = {A, B, C, D};
    static const char *const names[matrices] = {"A", "B", "C", "D"};
    for (int i = 0; i < matrices; i++)
        if (pointers[i] && pointer_alignment(pointers[i]) < algo->data[algo_promises + i])
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "%s (%p) is aligned to %u bytes; the algorithm was found under a promise of %llu",
                          names[i], pointers[i], pointer_alignment(pointers[i]),
                          (unsigned long long)algo->data[algo_promises + i]);
    if (C == D && !same_layout(c, d))
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "C is D in place, so its layout must be D's");
    if (work.p.bias) {
        if (!desc->bias) return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "a BIAS epilogue without a bias pointer");
        if (pointer_alignment(desc->bias) < algo->data[algo_bias_promise])
            return refuse(CUBLAS_STATUS_NOT_SUPPORTED, call,
                          "the bias (%p) is aligned to %u bytes; the algorithm was found for a bias pointer aligned "
                          "to %llu (the heuristic reads the bias pointer for its alignment)",
                          desc->bias, pointer_alignment(desc->bias), (unsigned long long)algo->data[algo_bias_promise]);
    }
    if (workspace_bytes && !workspace)
        return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "%zu workspace bytes at a null pointer", workspace_bytes);
    memcpy(&work.alpha, alpha, sizeof work.alpha);
    memcpy(&work.beta, beta, sizeof work.beta);
    if (work.beta != 0.0f && !C) return refuse(CUBLAS_STATUS_INVALID_VALUE, call, "beta %g with a null C", work.beta);
    work.A = A;
    work.B = B;
    work.C = C;
    work.D = D;
    work.bias = work.p.bias ? desc->bias : nullptr;
    work.a_bytes = extent_bytes(a);
    work.b_bytes = extent_bytes(b);
    work.c_bytes = extent_bytes(c);
    work.d_bytes = extent_bytes(d);
    work.workspace = workspace;
    work.workspace_bytes = workspace_bytes;
    if (egrc_emu::enqueue_host_work(stream, call, work) != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
