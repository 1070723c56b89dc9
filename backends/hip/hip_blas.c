/* The HIP plugin's GEMM engine: rocBLAS, where the ROCm install has it.
 *
 * Debian 12 packages no rocBLAS, so the plugin is built without its headers
 * and loads librocblas at open. The handful of entry points and enum values
 * used are declared below from rocBLAS's documented C API (unchanged since
 * ROCm 5). Since nothing checks those declarations at build time, open runs
 * a self-check: small GEMMs of every form the linear layers use, on exactly
 * representable integers, through rocBLAS and through the tiled kernel, must
 * agree bit for bit. Without the library, or when the check fails, the tiled
 * kernel runs every GEMM and one line on stderr says why.
 *
 * GEMMs take the operands' own types with fp32 accumulation (compute type
 * f32): fp32 throughout in fp32 mode; bf16 A/B in bf16 mode, with D in bf16
 * for activations and fp32 for weight gradients. rocBLAS has no bias
 * epilogue: the bias is added by a kernel after the GEMM.
 *
 * Not yet run on an AMD GPU (none was available): the self-check is what
 * stands between a mismatch and wrong results. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gpu/gpu_backend.h"

/* rocBLAS's C API, as far as this file uses it (rocblas-types.h). */
typedef struct rocblas_handle_opaque *rocblas_handle;
typedef int32_t rocblas_status; /* an enum: rocblas_status_success is 0 */
enum { ROCBLAS_STATUS_SUCCESS = 0 };
enum { ROCBLAS_OPERATION_NONE = 111, ROCBLAS_OPERATION_TRANSPOSE = 112 };
enum { ROCBLAS_DATATYPE_F32_R = 151, ROCBLAS_DATATYPE_BF16_R = 168 };
enum { ROCBLAS_GEMM_ALGO_STANDARD = 0 };

typedef rocblas_status (*create_handle_fn)(rocblas_handle *handle);
typedef rocblas_status (*destroy_handle_fn)(rocblas_handle handle);
typedef rocblas_status (*set_stream_fn)(rocblas_handle handle, cudaStream_t stream);
typedef rocblas_status (*gemm_ex_fn)(rocblas_handle handle, int trans_a, int trans_b, int32_t m, int32_t n, int32_t k,
                                     const void *alpha, const void *a, int a_type, int32_t lda, const void *b,
                                     int b_type, int32_t ldb, const void *beta, const void *c, int c_type, int32_t ldc,
                                     void *d, int d_type, int32_t ldd, int compute_type, int algo,
                                     int32_t solution_index, uint32_t flags);

typedef struct rocblas_engine {
    void *library;
    rocblas_handle handle;
    destroy_handle_fn destroy_handle;
    gemm_ex_fn gemm_ex;
} rocblas_engine;

static int rocblas_type(egrc_gpu_dtype type) {
    return type == EGRC_GPU_BF16 ? ROCBLAS_DATATYPE_BF16_R : ROCBLAS_DATATYPE_F32_R;
}

static rocblas_status run_gemm(const rocblas_engine *e, const gpu_gemm *g) {
    const float alpha = 1.0f;
    return e->gemm_ex(e->handle, g->trans_a ? ROCBLAS_OPERATION_TRANSPOSE : ROCBLAS_OPERATION_NONE,
                      g->trans_b ? ROCBLAS_OPERATION_TRANSPOSE : ROCBLAS_OPERATION_NONE, g->m, g->n, g->k, &alpha,
                      g->A, rocblas_type(g->ab_type), g->lda, g->B, rocblas_type(g->ab_type), g->ldb, &g->beta, g->D,
                      rocblas_type(g->d_type), g->ldd, g->D, rocblas_type(g->d_type), g->ldd, ROCBLAS_DATATYPE_F32_R,
                      ROCBLAS_GEMM_ALGO_STANDARD, 0, 0);
}

static void rocblas_gemm(gpu_state *st, const gpu_gemm *g) {
    const rocblas_status status = run_gemm(st->blas, g);
    if (status != ROCBLAS_STATUS_SUCCESS) {
        gpu_fault(st, "rocblas_gemm_ex (%s%s, m %d, n %d, k %d) failed with rocBLAS status %d", g->trans_a ? "T" : "N",
                  g->trans_b ? "T" : "N", g->m, g->n, g->k, (int)status);
        return;
    }
    /* D(m,n) with ldd == m is the row-major (n,m) matrix bias_add takes. */
    if (g->bias) gpu_check(st, egrc_gpu_bias_add(st->stream, g->d_type, g->D, g->bias, g->n, g->m));
}

static void close_engine(rocblas_engine *e) {
    if (!e) return;
    if (e->handle) e->destroy_handle(e->handle);
    if (e->library) dlclose(e->library);
    free(e);
}

static void rocblas_release(gpu_state *st) {
    close_engine(st->blas);
    st->blas = NULL;
}

/* Loads librocblas and opens a handle on the plugin's stream; NULL with
 * `why` filled when there is none to use. */
static rocblas_engine *load_rocblas(gpu_state *st, char *why, size_t why_size) {
    static const char *const names[] = {"librocblas.so", "librocblas.so.4", "librocblas.so.3", "librocblas.so.0",
                                        "/opt/rocm/lib/librocblas.so"};
    rocblas_engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(why, why_size, "out of host memory");
        return NULL;
    }
    for (size_t i = 0; i < sizeof names / sizeof *names && !e->library; i++)
        e->library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!e->library) {
        snprintf(why, why_size, "librocblas.so not found (install ROCm's rocblas, or put its lib folder on "
                                "LD_LIBRARY_PATH)");
        close_engine(e);
        return NULL;
    }
    /* dlsym returns data pointers; POSIX guarantees they convert to functions. */
    create_handle_fn create_handle;
    set_stream_fn set_stream;
    *(void **)&create_handle = dlsym(e->library, "rocblas_create_handle");
    *(void **)&set_stream = dlsym(e->library, "rocblas_set_stream");
    *(void **)&e->destroy_handle = dlsym(e->library, "rocblas_destroy_handle");
    *(void **)&e->gemm_ex = dlsym(e->library, "rocblas_gemm_ex");
    if (!create_handle || !set_stream || !e->destroy_handle || !e->gemm_ex) {
        snprintf(why, why_size, "librocblas lacks rocblas_create_handle, rocblas_set_stream or rocblas_gemm_ex");
        close_engine(e);
        return NULL;
    }
    rocblas_status status = create_handle(&e->handle);
    if (status == ROCBLAS_STATUS_SUCCESS) status = set_stream(e->handle, st->stream);
    if (status != ROCBLAS_STATUS_SUCCESS) {
        snprintf(why, why_size, "opening a rocBLAS handle failed with status %d", (int)status);
        close_engine(e);
        return NULL;
    }
    return e;
}

/* The self-check's matrices: -1, 0 and 1, so that every product and sum
 * (at most CHECK_K + 1 in size) is an integer exact in bf16 as in fp32, and
 * every engine must give the same bits whatever its order of summation or
 * where it adds the bias. */
enum { CHECK_M = 40, CHECK_N = 24, CHECK_K = 56, CHECK_ELEMS = 64 * 64 };

static void fill_exact(uint16_t *bf16, float *f32, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        const float v = (float)((int)((i * 7 + seed * 13) % 3) - 1);
        uint32_t bits;
        memcpy(&bits, &v, sizeof bits);
        f32[i] = v;
        bf16[i] = (uint16_t)(bits >> 16); /* exact: v has one significant bit */
    }
}

/* One runtime call of the self-check: 0, or -1 with `why` naming it. The
 * check runs at open, before any op: its failures are reasons to use the
 * tiled kernel, not faults to latch. */
static int check_step(cudaError_t status, const char *what, char *why, size_t why_size) {
    if (status == cudaSuccess) return 0;
    snprintf(why, why_size, "the rocBLAS self-check's %s failed: %s", what, cudaGetErrorString(status));
    return -1;
}

/* Every GEMM form gpu_matmul.c uses (TN forward with a bias, NN input
 * gradient, NT weight gradient accumulating into fp32), through rocBLAS and
 * through the tiled kernel. Returns 0 when all agree bit for bit. */
static int self_check(gpu_state *st, rocblas_engine *e, char *why, size_t why_size) {
    const size_t act_size = st->act == EGRC_GPU_BF16 ? 2 : 4;
    uint16_t host_bf16[CHECK_ELEMS];
    float host_f32[CHECK_ELEMS], got[CHECK_ELEMS], want[CHECK_ELEMS];
    void *a = NULL, *b = NULL, *bias = NULL, *d_init = NULL, *d_blas = NULL, *d_tiled = NULL;
    int failed = 1;
    const size_t bytes = CHECK_ELEMS * sizeof(float);
    if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess ||
        cudaMalloc(&bias, bytes) != cudaSuccess || cudaMalloc(&d_init, bytes) != cudaSuccess ||
        cudaMalloc(&d_blas, bytes) != cudaSuccess ||
        cudaMalloc(&d_tiled, bytes) != cudaSuccess) {
        cudaGetLastError();
        snprintf(why, why_size, "no device memory for the self-check");
        goto done;
    }
    void *const inputs[3] = {a, b, bias};
    for (int i = 0; i < 3; i++) {
        fill_exact(host_bf16, host_f32, CHECK_ELEMS, (unsigned)i);
        const void *src = act_size == 2 ? (const void *)host_bf16 : (const void *)host_f32;
        if (check_step(cudaMemcpyAsync(inputs[i], src, CHECK_ELEMS * act_size, cudaMemcpyHostToDevice, st->stream),
                       "upload", why, why_size) ||
            check_step(cudaStreamSynchronize(st->stream), "upload", why, why_size)) /* the host arrays are reused */
            goto done;
    }
    /* D's starting values, which the fp32 weight-gradient form accumulates onto */
    if (check_step(cudaMemcpyAsync(d_init, host_f32, bytes, cudaMemcpyHostToDevice, st->stream), "upload", why,
                   why_size))
        goto done;
    /* {trans_a, trans_b, m, n, k, lda, ldb, ldd, with bias, fp32 D, beta} */
    static const int forms[3][11] = {
        {1, 0, CHECK_M, CHECK_N, CHECK_K, CHECK_K, CHECK_K, CHECK_M, 1, 0, 0},
        {0, 0, CHECK_M, CHECK_N, CHECK_K, CHECK_M, CHECK_K, CHECK_M, 0, 0, 0},
        {0, 1, CHECK_M, CHECK_N, CHECK_K, CHECK_M, CHECK_N, CHECK_M, 0, 1, 1},
    };
    for (int f = 0; f < 3; f++) {
        const int *p = forms[f];
        const egrc_gpu_dtype d_type = p[9] ? EGRC_GPU_F32 : st->act;
        const gpu_gemm g = {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], a, b, p[8] ? bias : NULL,
                            d_blas, (float)p[10], st->act, d_type};
        gpu_gemm tiled = g;
        tiled.D = d_tiled;
        if (check_step(cudaMemcpyAsync(d_blas, d_init, bytes, cudaMemcpyDeviceToDevice, st->stream), "copy", why,
                       why_size) ||
            check_step(cudaMemcpyAsync(d_tiled, d_init, bytes, cudaMemcpyDeviceToDevice, st->stream), "copy", why,
                       why_size))
            goto done;
        const rocblas_status status = run_gemm(e, &g);
        if (status != ROCBLAS_STATUS_SUCCESS) {
            snprintf(why, why_size, "rocblas_gemm_ex failed its self-check with status %d", (int)status);
            goto done;
        }
        const size_t d_bytes = (size_t)CHECK_M * CHECK_N * (d_type == EGRC_GPU_BF16 ? 2 : 4);
        if ((g.bias && check_step(egrc_gpu_bias_add(st->stream, d_type, d_blas, bias, g.n, g.m), "bias add", why,
                                  why_size)) ||
            check_step(gpu_tiled_gemm_launch(st->stream, &tiled), "tiled GEMM", why, why_size) ||
            check_step(cudaMemcpyAsync(got, d_blas, d_bytes, cudaMemcpyDeviceToHost, st->stream), "download", why,
                       why_size) ||
            check_step(cudaMemcpyAsync(want, d_tiled, d_bytes, cudaMemcpyDeviceToHost, st->stream), "download", why,
                       why_size) ||
            check_step(cudaStreamSynchronize(st->stream), "wait", why, why_size))
            goto done;
        if (memcmp(got, want, d_bytes) != 0) {
            snprintf(why, why_size, "rocblas_gemm_ex disagrees with the tiled kernel on a %s%s GEMM (an unexpected "
                     "rocBLAS ABI?)", g.trans_a ? "T" : "N", g.trans_b ? "T" : "N");
            goto done;
        }
    }
    failed = 0;
done:
    /* A failed check leaves copies and GEMMs queued: let them finish before
     * their buffers go. */
    cudaStreamSynchronize(st->stream);
    cudaGetLastError();
    cudaFree(a);
    cudaFree(b);
    cudaFree(bias);
    cudaFree(d_init);
    cudaFree(d_blas);
    cudaFree(d_tiled);
    return failed;
}

int gpu_blas_open(gpu_state *st, egrc_error *err) {
    (void)err; /* a missing or unusable rocBLAS is not an error: the tiled kernel runs instead */
    char why[256];
    rocblas_engine *e = load_rocblas(st, why, sizeof why);
    if (e && self_check(st, e, why, sizeof why) != 0) {
        close_engine(e);
        e = NULL;
    }
    st->gemm = gpu_tiled_gemm;
    if (!e) {
        fprintf(stderr, "egrc: hip backend: GEMMs on the tiled kernel: %s\n", why);
        return 0;
    }
    st->blas = e;
    st->gemm = rocblas_gemm;
    st->gemm_release = rocblas_release;
    return 0;
}
