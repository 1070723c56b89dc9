/* CUDA devices, the backend's stream, device memory and scratch.
 *
 * One open backend = one device, one non-blocking stream, one cuBLASLt handle
 * with its workspace. Memory comes from the stream-ordered allocator
 * (cudaMallocAsync/cudaFreeAsync on the backend's stream) where the device has
 * one, so freeing a buffer that queued kernels still read is safe without a
 * device-wide synchronisation; plain cudaMalloc/cudaFree otherwise.
 *
 * The device is made current in open(); a process that opens several CUDA
 * devices from one thread would have to make each current before its ops. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_backend.h"

/* cuBLASLt's recommended workspace for Hopper; plenty for Ampere. */
#define LT_WORKSPACE_BYTES ((size_t)32 << 20)

static int fail(egrc_error *err, const char *fmt, ...) EGRC_PRINTF(2, 3);

/* The plugin cannot call egrc_fail (the core is not exported to plugins),
 * so it formats its own messages. */
static int fail(egrc_error *err, const char *fmt, ...) {
    if (err) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, args);
        va_end(args);
    }
    return -1;
}

void cuda_fatal(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fputs("egrc: cuda backend: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
    exit(EXIT_FAILURE);
}

void cuda_check(cudaError_t err, const char *op) {
    if (err != cudaSuccess) cuda_fatal("%s failed: %s (%s)", op, cudaGetErrorString(err), cudaGetErrorName(err));
}

int cuda_device_count(egrc_error *err) {
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status == cudaSuccess) return count;
    int driver = 0;
    cudaDriverGetVersion(&driver); /* 0 when libcuda cannot be loaded */
    cudaGetLastError();            /* neither error may linger into later calls */
    if (status == cudaErrorNoDevice) return 0;
    if (driver == 0)
        return fail(err, "no CUDA driver (libcuda.so.1) found: install the NVIDIA driver, or use --backend cpu");
    if (status == cudaErrorInsufficientDriver)
        return fail(err,
                    "the NVIDIA driver supports CUDA %d.%d, this plugin was built with CUDA %d.%d: update the "
                    "driver, or use --backend cpu",
                    driver / 1000, driver % 1000 / 10, CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
    return fail(err, "the CUDA driver cannot be used: %s (%s); check nvidia-smi, or use --backend cpu",
                cudaGetErrorString(status), cudaGetErrorName(status));
}

int cuda_device_info(int device, egrc_device_info *info, egrc_error *err) {
    struct cudaDeviceProp prop;
    cudaError_t status = cudaGetDeviceProperties(&prop, device);
    if (status != cudaSuccess) {
        cudaGetLastError();
        return fail(err, "CUDA device %d: %s", device, cudaGetErrorString(status));
    }
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%.*s", (int)sizeof info->name - 1, prop.name);
    info->memory_bytes = prop.totalGlobalMem;
    info->compute_units = prop.multiProcessorCount;
    return 0;
}

static void *device_alloc(cuda_state *st, size_t bytes, cudaError_t *status) {
    void *ptr = NULL;
    if (bytes == 0) bytes = 1; /* a distinct, freeable pointer, as from the CPU backend */
    *status = st->stream_ordered_alloc ? cudaMallocAsync(&ptr, bytes, st->stream) : cudaMalloc(&ptr, bytes);
    if (*status != cudaSuccess) {
        cudaGetLastError(); /* an allocation failure leaves the context usable */
        return NULL;
    }
    return ptr;
}

static cudaError_t device_free(cuda_state *st, void *ptr) {
    if (!ptr) return cudaSuccess;
    return st->stream_ordered_alloc ? cudaFreeAsync(ptr, st->stream) : cudaFree(ptr);
}

/* Releases whatever open() managed to create; errors are moot by now. */
static void release(egrc_backend *be) {
    cuda_state *st = cuda_state_of(be);
    if (st) {
        device_free(st, st->scratch);
        device_free(st, st->rope_freq);
        if (st->stream) cudaStreamSynchronize(st->stream);
        cuda_gemm_release(st);
        if (st->lt) cublasLtDestroy(st->lt);
        cudaFree(st->lt_workspace);
        if (st->stream) cudaStreamDestroy(st->stream);
        cudaGetLastError();
        free(st);
    }
    free(be);
}

egrc_backend *cuda_open(int device, egrc_error *err) {
    egrc_backend *be = calloc(1, sizeof *be);
    cuda_state *st = calloc(1, sizeof *st);
    if (!be || !st) {
        free(be);
        free(st);
        fail(err, "out of host memory opening the cuda backend");
        return NULL;
    }
    be->impl = st;
    const char *step = "cudaSetDevice";
    cudaError_t status = cudaSetDevice(device);
    if (status == cudaSuccess) {
        step = "cudaDeviceGetAttribute";
        status = cudaDeviceGetAttribute(&st->stream_ordered_alloc, cudaDevAttrMemoryPoolsSupported, device);
    }
    if (status == cudaSuccess) {
        step = "cudaStreamCreate";
        status = cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking);
    }
    if (status == cudaSuccess) {
        step = "allocating the cuBLASLt workspace";
        st->lt_workspace_bytes = LT_WORKSPACE_BYTES;
        status = cudaMalloc(&st->lt_workspace, st->lt_workspace_bytes);
    }
    if (status == cudaSuccess) {
        step = "allocating the RoPE table";
        st->rope_freq = device_alloc(st, sizeof st->rope_host, &status);
    }
    if (status != cudaSuccess) {
        fail(err, "%s: %s", step, cudaGetErrorString(status));
        cudaGetLastError();
        release(be);
        return NULL;
    }
    cublasStatus_t lt_status = cublasLtCreate(&st->lt);
    if (lt_status != CUBLAS_STATUS_SUCCESS) {
        fail(err, "cublasLtCreate: %s", cublasLtGetStatusString(lt_status));
        release(be);
        return NULL;
    }
    /* TF32 GEMMs are several times faster but round inputs to 10 mantissa
     * bits, which breaks the 1e-5 parity with the CPU: opt-in only. */
    const char *tf32 = getenv("EGRC_CUDA_TF32");
    st->gemm_compute = tf32 && strcmp(tf32, "1") == 0 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    be->ops = cuda_backend_ops();
    be->device = device;
    be->act_dtype = EGRC_DTYPE_F32;
    return be;
}

void cuda_close(egrc_backend *be) {
    if (be) release(be);
}

void *cuda_alloc(egrc_backend *be, size_t bytes, egrc_error *err) {
    cudaError_t status;
    void *ptr = device_alloc(cuda_state_of(be), bytes, &status);
    if (!ptr) {
        size_t free_bytes = 0, total_bytes = 0;
        cudaMemGetInfo(&free_bytes, &total_bytes);
        cudaGetLastError();
        const double gib = 1024.0 * 1024.0 * 1024.0;
        fail(err, "out of GPU memory allocating %.2f GiB (%.2f GiB free of %.2f GiB): %s", (double)bytes / gib,
             (double)free_bytes / gib, (double)total_bytes / gib, cudaGetErrorString(status));
    }
    return ptr;
}

void cuda_free(egrc_backend *be, void *ptr) { cuda_check(device_free(cuda_state_of(be), ptr), "free"); }

void *cuda_scratch(cuda_state *st, size_t bytes) {
    if (bytes <= st->scratch_bytes) return st->scratch;
    /* Grow with headroom so a sequence of slightly larger requests does not
     * reallocate each time. The old buffer is freed in stream order, after
     * the ops that still use it. */
    size_t grown = bytes + bytes / 4;
    grown = (grown + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    cuda_check(device_free(st, st->scratch), "free of the old scratch");
    cudaError_t status;
    st->scratch = device_alloc(st, grown, &status);
    if (!st->scratch)
        cuda_fatal("out of GPU memory for %.1f MiB of scratch: %s", (double)grown / (1 << 20),
                   cudaGetErrorString(status));
    st->scratch_bytes = grown;
    return st->scratch;
}

void cuda_upload(egrc_backend *be, void *dst, const void *src_host, size_t bytes) {
    if (!bytes) return;
    cuda_check(cudaMemcpyAsync(dst, src_host, bytes, cudaMemcpyHostToDevice, cuda_state_of(be)->stream), "upload");
}

void cuda_download(egrc_backend *be, void *dst_host, const void *src, size_t bytes) {
    cuda_state *st = cuda_state_of(be);
    if (bytes) cuda_check(cudaMemcpyAsync(dst_host, src, bytes, cudaMemcpyDeviceToHost, st->stream), "download");
    /* A kernel fault surfaces at the first wait after it: name that. */
    cuda_check(cudaStreamSynchronize(st->stream), "an op queued before this download");
}

void cuda_zero(egrc_backend *be, void *ptr, size_t bytes) {
    if (!bytes) return;
    cuda_check(cudaMemsetAsync(ptr, 0, bytes, cuda_state_of(be)->stream), "zero");
}

void cuda_synchronize(egrc_backend *be) {
    cuda_check(cudaStreamSynchronize(cuda_state_of(be)->stream), "an op queued before this synchronize");
}
