/* GPU devices, the backend's stream, device memory and scratch, for both
 * plugins (CUDA spelling, mapped to HIP by egrc_gpu.h).
 *
 * One open backend = one device, one non-blocking stream and one GEMM engine.
 * Memory comes from the stream-ordered allocator (cudaMallocAsync/
 * cudaFreeAsync on the backend's stream) where the device has one, so freeing
 * a buffer that queued kernels still read is safe without a device-wide
 * synchronisation; plain cudaMalloc/cudaFree otherwise.
 *
 * The device is made current in open(); a process that opens several devices
 * from one thread would have to make each current before its ops.
 *
 * open() also fixes the activation type from EGRC_GPU_DTYPE and whether graphs
 * are captured from EGRC_GPU_GRAPHS (gpu_backend.h): both are read once per
 * open, so a process may open one backend in each mode. It refuses an
 * EGRC_GPU_ATTENTION other than auto or simt (the kernels read it per call).
 *
 * Graphs: graph_begin/graph_end capture the stream (thread-local capture
 * mode: this thread's unsafe calls fail the capture, other threads' are
 * their own business) and instantiate the result; graph_launch replays it
 * on the stream. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_backend.h"

int gpu_fail(egrc_error *err, const char *fmt, ...) {
    if (err) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, args);
        va_end(args);
    }
    return -1;
}

void gpu_fatal(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fputs("egrc: " EGRC_GPU_NAME " backend: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
    exit(EXIT_FAILURE);
}

/* What makes the op that faults report it itself, where a wait found it. */
#ifdef EGRC_GPU_HIP
#define BLOCKING_LAUNCHES "AMD_SERIALIZE_KERNEL=3"
#else
#define BLOCKING_LAUNCHES "CUDA_LAUNCH_BLOCKING=1"
#endif

gpu_state *gpu_op(egrc_backend *be, const char *name) {
    gpu_state *st = gpu_state_of(be);
    if (st->faulted) return NULL;
    st->calls++;
    st->op = name;
    st->recent_ops[st->calls % GPU_RECENT_OPS] = name;
    if (!st->first_unwaited_call) st->first_unwaited_call = st->calls;
    return st;
}

/* Latches "backend 'NAME': <message>"; the first fault wins. */
static void latch(gpu_state *st, const char *message) {
    if (st->faulted) return;
    snprintf(st->fault.msg, sizeof st->fault.msg, "backend '%s': %s", EGRC_GPU_NAME, message);
    st->faulted = 1;
}

int gpu_fault(gpu_state *st, const char *fmt, ...) {
    char cause[768], message[1000];
    va_list args;
    va_start(args, fmt);
    vsnprintf(cause, sizeof cause, fmt, args);
    va_end(args);
    snprintf(message, sizeof message, "op %s (call %llu): %s", st->op, st->calls, cause);
    latch(st, message);
    return -1;
}

int gpu_check(gpu_state *st, cudaError_t status) {
    if (status == cudaSuccess) return 0;
    cudaGetLastError(); /* an error that is not sticky must not linger into later calls */
    return gpu_fault(st, "%s (%s)", cudaGetErrorString(status), cudaGetErrorName(status));
}

int gpu_wait(gpu_state *st) {
    const cudaError_t status = cudaStreamSynchronize(st->stream);
    if (status == cudaSuccess) {
        st->first_unwaited_call = 0;
        return 0;
    }
    cudaGetLastError();
    if (st->first_unwaited_call == st->calls) /* the wait's own op is all there was */
        return gpu_fault(st, "%s (%s)", cudaGetErrorString(status), cudaGetErrorName(status));
    /* The calls since the last wait, the last few by name. */
    const unsigned long long since = st->calls - st->first_unwaited_call + 1;
    const unsigned long long named = since < GPU_RECENT_OPS ? since : GPU_RECENT_OPS;
    char names[GPU_RECENT_OPS * 40] = "";
    for (unsigned long long c = st->calls - named + 1; c <= st->calls; c++) {
        const size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%.32s", used ? ", " : "", st->recent_ops[c % GPU_RECENT_OPS]);
    }
    char message[1000];
    snprintf(message, sizeof message,
             "one of the %llu op calls since the last wait (calls %llu to %llu, %s: %s) failed: %s (%s); %s makes "
             "the op that fails report it itself",
             since, st->first_unwaited_call, st->calls, named < since ? "the last of them" : "that is", names,
             cudaGetErrorString(status), cudaGetErrorName(status), BLOCKING_LAUNCHES);
    latch(st, message);
    return -1;
}

int gpu_latched_error(egrc_backend *be, egrc_error *err) {
    const gpu_state *st = gpu_state_of(be);
    return st->faulted ? gpu_fail(err, "%s", st->fault.msg) : 0;
}

int gpu_supports(egrc_backend *be, const egrc_model_shape *shape, egrc_error *err) {
    const gpu_state *st = gpu_state_of(be);
    if (shape->head_dim > st->max_head_dim)
        return gpu_fail(err, "head size %d is larger than the %d this version's attention kernels take on this "
                        "device (%zu KiB of shared memory per block); use a model with smaller heads, or --backend "
                        "cpu", shape->head_dim, st->max_head_dim, st->shared_limit / 1024);
    return 0;
}

int gpu_device_info(int device, egrc_device_info *info, egrc_error *err) {
    struct cudaDeviceProp prop;
    cudaError_t status = cudaGetDeviceProperties(&prop, device);
    if (status != cudaSuccess) {
        cudaGetLastError();
        return gpu_fail(err, "%s device %d: %s", EGRC_GPU_NAME, device, cudaGetErrorString(status));
    }
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%.*s", (int)sizeof info->name - 1, prop.name);
    info->memory_bytes = prop.totalGlobalMem;
    info->compute_units = prop.multiProcessorCount;
    return 0;
}

static void *device_alloc(gpu_state *st, size_t bytes, cudaError_t *status) {
    void *ptr = NULL;
    if (bytes == 0) bytes = 1; /* a distinct, freeable pointer, as from the CPU backend */
    *status = st->stream_ordered_alloc ? cudaMallocAsync(&ptr, bytes, st->stream) : cudaMalloc(&ptr, bytes);
    if (*status != cudaSuccess) {
        cudaGetLastError(); /* an allocation failure leaves the context usable */
        return NULL;
    }
    return ptr;
}

static cudaError_t device_free(gpu_state *st, void *ptr) {
    if (!ptr) return cudaSuccess;
    return st->stream_ordered_alloc ? cudaFreeAsync(ptr, st->stream) : cudaFree(ptr);
}

/* Releases whatever open() managed to create; errors are moot by now. */
static void release(egrc_backend *be) {
    gpu_state *st = gpu_state_of(be);
    if (st) {
        if (st->capturing) { /* abandoned mid-capture: close it, or the frees below would be recorded */
            cudaGraph_t abandoned = NULL;
            if (cudaStreamEndCapture(st->stream, &abandoned) == cudaSuccess && abandoned) cudaGraphDestroy(abandoned);
            st->capturing = 0;
        }
        device_free(st, st->scratch);
        device_free(st, st->rope_freq);
        if (st->stream) cudaStreamSynchronize(st->stream);
        if (st->gemm_release) st->gemm_release(st);
        if (st->stream) cudaStreamDestroy(st->stream);
        cudaGetLastError();
        free(st);
    }
    free(be);
}

/* EGRC_GPU_DTYPE: bf16 (unset or empty too) or fp32. */
static int activation_type(egrc_gpu_dtype *act, egrc_error *err) {
    const char *choice = getenv("EGRC_GPU_DTYPE");
    if (!choice || !*choice || strcmp(choice, "bf16") == 0) {
        *act = EGRC_GPU_BF16;
        return 0;
    }
    if (strcmp(choice, "fp32") == 0) {
        *act = EGRC_GPU_F32;
        return 0;
    }
    return gpu_fail(err, "EGRC_GPU_DTYPE=%s: expected bf16 (the default: bf16 activations, fp32 master weights) or "
                    "fp32 (fp32 throughout, for parity runs)", choice);
}

/* Whether graphs are on when EGRC_GPU_GRAPHS is unset (gpu_backend.h says why HIP differs). */
#ifdef EGRC_GPU_HIP
#define GRAPHS_BY_DEFAULT 0
#else
#define GRAPHS_BY_DEFAULT 1
#endif

/* EGRC_GPU_GRAPHS: 1 or 0; unset or empty: GRAPHS_BY_DEFAULT. */
static int graphs_setting(int *enabled, egrc_error *err) {
    const char *choice = getenv("EGRC_GPU_GRAPHS");
    if (!choice || !*choice) {
        *enabled = GRAPHS_BY_DEFAULT;
        return 0;
    }
    if (strcmp(choice, "0") == 0 || strcmp(choice, "1") == 0) {
        *enabled = choice[0] == '1';
        return 0;
    }
    return gpu_fail(err, "EGRC_GPU_GRAPHS=%s: expected 1 (capture the rollout's decode step as a graph) or 0 (run "
                    "every op directly)", choice);
}

/* EGRC_GPU_ATTENTION: unset, empty or "auto" (bf16 attention on tensor cores
 * where the build and device have them), or "simt". The attention kernels
 * read it themselves (attention_tc.cu); this refuses a value they would
 * silently take for "auto". */
static int attention_setting(egrc_error *err) {
    const char *choice = getenv("EGRC_GPU_ATTENTION");
    if (!choice || !*choice || strcmp(choice, "auto") == 0 || strcmp(choice, "simt") == 0) return 0;
    return gpu_fail(err, "EGRC_GPU_ATTENTION=%s: expected auto (the default: bf16 attention on tensor cores where "
                    "the GPU has them) or simt (the SIMT kernels throughout)", choice);
}

egrc_backend *gpu_open(int device, egrc_error *err) {
    egrc_gpu_dtype act = EGRC_GPU_BF16;
    int graphs_enabled = 0;
    if (activation_type(&act, err) != 0 || graphs_setting(&graphs_enabled, err) != 0 || attention_setting(err) != 0)
        return NULL;
    egrc_backend *be = calloc(1, sizeof *be);
    gpu_state *st = calloc(1, sizeof *st);
    if (!be || !st) {
        free(be);
        free(st);
        gpu_fail(err, "out of host memory opening the %s backend", EGRC_GPU_NAME);
        return NULL;
    }
    be->impl = st;
    st->act = act;
    st->graphs_enabled = graphs_enabled;
    int shared_limit = 0;
    const char *step = "cudaSetDevice";
    cudaError_t status = cudaSetDevice(device);
    if (status == cudaSuccess) {
        step = "cudaDeviceGetAttribute";
        status = cudaDeviceGetAttribute(&st->stream_ordered_alloc, cudaDevAttrMemoryPoolsSupported, device);
    }
    if (status == cudaSuccess)
        status = cudaDeviceGetAttribute(&shared_limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    if (status == cudaSuccess) {
        step = "cudaStreamCreate";
        status = cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking);
    }
    if (status == cudaSuccess) {
        step = "allocating the RoPE table";
        st->rope_freq = device_alloc(st, sizeof st->rope_host, &status);
    }
    if (status != cudaSuccess) {
        gpu_fail(err, "%s: %s", step, cudaGetErrorString(status));
        cudaGetLastError();
        release(be);
        return NULL;
    }
    st->shared_limit = (size_t)shared_limit;
    st->max_head_dim = egrc_gpu_attention_max_head_dim(st->shared_limit);
    if (gpu_gemm_open(st, err) != 0) {
        release(be);
        return NULL;
    }
    be->ops = gpu_backend_ops();
    be->device = device;
    be->act_dtype = act == EGRC_GPU_BF16 ? EGRC_DTYPE_BF16 : EGRC_DTYPE_F32;
    return be;
}

void gpu_close(egrc_backend *be) {
    if (be) release(be);
}

void *gpu_alloc(egrc_backend *be, size_t bytes, egrc_error *err) {
    gpu_state *st = gpu_state_of(be);
    gpu_refuse_while_capturing(st, "alloc");
    if (st->faulted) { /* the context is gone: say why, rather than blame the memory */
        gpu_fail(err, "%s", st->fault.msg);
        return NULL;
    }
    cudaError_t status;
    void *ptr = device_alloc(st, bytes, &status);
    if (!ptr) {
        size_t free_bytes = 0, total_bytes = 0;
        cudaMemGetInfo(&free_bytes, &total_bytes);
        cudaGetLastError();
        const double gib = 1024.0 * 1024.0 * 1024.0;
        gpu_fail(err, "out of GPU memory allocating %.2f GiB (%.2f GiB free of %.2f GiB): %s", (double)bytes / gib,
             (double)free_bytes / gib, (double)total_bytes / gib, cudaGetErrorString(status));
    }
    return ptr;
}

/* After a fault the memory goes with the context: nothing to free then. */
void gpu_free(egrc_backend *be, void *ptr) {
    gpu_refuse_while_capturing(gpu_state_of(be), "free");
    gpu_state *st = gpu_op(be, "free");
    if (st) gpu_check(st, device_free(st, ptr));
}

void gpu_refuse_while_capturing(const gpu_state *st, const char *what) {
    if (st->capturing)
        gpu_fatal("%s while a graph capture is open: it cannot be recorded (a bug in the caller: see backend.h's "
                  "graph ops; EGRC_GPU_GRAPHS=0 runs without graphs)", what);
}

int gpu_scratch(gpu_state *st, size_t bytes, void **scratch) {
    if (bytes <= st->scratch_bytes) {
        *scratch = st->scratch;
        return 0;
    }
    gpu_refuse_while_capturing(st, "growing the scratch buffer");
    /* Grow with headroom so a sequence of slightly larger requests does not
     * reallocate each time. The old buffer is freed in stream order, after
     * the ops that still use it. */
    size_t grown = bytes + bytes / 4;
    grown = (grown + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    if (gpu_check(st, device_free(st, st->scratch))) return -1;
    st->scratch_bytes = 0;
    st->memory_generation++; /* graphs captured before point at the old buffer */
    cudaError_t status;
    st->scratch = device_alloc(st, grown, &status);
    if (!st->scratch)
        return gpu_fault(st, "out of GPU memory for %.1f MiB of scratch: %s (%s)", (double)grown / (1 << 20),
                         cudaGetErrorString(status), cudaGetErrorName(status));
    st->scratch_bytes = grown;
    *scratch = st->scratch;
    return 0;
}

void gpu_upload(egrc_backend *be, void *dst, const void *src_host, size_t bytes) {
    gpu_refuse_while_capturing(gpu_state_of(be), "upload");
    gpu_state *st = gpu_op(be, "upload");
    if (st && bytes) gpu_check(st, cudaMemcpyAsync(dst, src_host, bytes, cudaMemcpyHostToDevice, st->stream));
}

void gpu_download(egrc_backend *be, void *dst_host, const void *src, size_t bytes) {
    gpu_refuse_while_capturing(gpu_state_of(be), "download");
    gpu_state *st = gpu_op(be, "download");
    if (!st) return;
    if (bytes && gpu_check(st, cudaMemcpyAsync(dst_host, src, bytes, cudaMemcpyDeviceToHost, st->stream))) return;
    gpu_wait(st);
}

void gpu_zero(egrc_backend *be, void *ptr, size_t bytes) {
    gpu_state *st = gpu_op(be, "zero");
    if (st && bytes) gpu_check(st, cudaMemsetAsync(ptr, 0, bytes, st->stream));
}

void gpu_synchronize(egrc_backend *be) {
    gpu_refuse_while_capturing(gpu_state_of(be), "synchronize");
    gpu_state *st = gpu_op(be, "synchronize");
    if (st) gpu_wait(st);
}

/* An instantiated graph and the memory generation it was captured under. */
struct egrc_graph {
    cudaGraphExec_t exec;
    unsigned memory_generation;
};

int gpu_graph_begin(egrc_backend *be, egrc_error *err) {
    gpu_state *st = gpu_state_of(be);
    if (st->faulted) return gpu_fail(err, "%s", st->fault.msg);
    if (!st->graphs_enabled)
        return gpu_fail(err, "graphs are off in the %s backend (EGRC_GPU_GRAPHS=1 turns them on)", EGRC_GPU_NAME);
    if (st->capturing) return gpu_fail(err, "graph_begin: a capture is already open");
    cudaError_t status = cudaStreamBeginCapture(st->stream, cudaStreamCaptureModeThreadLocal);
    if (status != cudaSuccess) {
        cudaGetLastError();
        return gpu_fail(err, "cudaStreamBeginCapture: %s (%s)", cudaGetErrorString(status), cudaGetErrorName(status));
    }
    st->capturing = 1;
    return 0;
}

egrc_graph *gpu_graph_end(egrc_backend *be, egrc_error *err) {
    gpu_state *st = gpu_state_of(be);
    if (!st->capturing) {
        gpu_fail(err, "graph_end: no capture is open");
        return NULL;
    }
    st->capturing = 0;
    cudaGraph_t graph = NULL;
    const char *step = "cudaStreamEndCapture";
    cudaError_t status = cudaStreamEndCapture(st->stream, &graph);
    egrc_graph *captured = NULL;
    if (st->faulted) { /* an op of the capture failed: what it recorded is no use */
        if (status == cudaSuccess && graph) cudaGraphDestroy(graph);
        cudaGetLastError();
        gpu_fail(err, "%s", st->fault.msg);
        return NULL;
    }
    if (status == cudaSuccess) {
        captured = calloc(1, sizeof *captured);
        if (!captured) {
            cudaGraphDestroy(graph);
            gpu_fail(err, "out of host memory for a graph");
            return NULL;
        }
        step = "cudaGraphInstantiateWithFlags";
        status = cudaGraphInstantiateWithFlags(&captured->exec, graph, 0);
        cudaGraphDestroy(graph); /* the executable graph does not need it */
    }
    if (status != cudaSuccess) {
        gpu_fail(err, "%s: %s (%s)", step, cudaGetErrorString(status), cudaGetErrorName(status));
        cudaGetLastError();
        free(captured);
        return NULL;
    }
    captured->memory_generation = st->memory_generation;
    return captured;
}

int gpu_graph_launch(egrc_backend *be, egrc_graph *graph) {
    gpu_state *st = gpu_state_of(be);
    if (graph->memory_generation != st->memory_generation) return EGRC_GRAPH_STALE;
    gpu_refuse_while_capturing(st, "graph_launch");
    if (gpu_op(be, "graph_launch")) gpu_check(st, cudaGraphLaunch(graph->exec, st->stream));
    return 0;
}

/* A replay still in flight completes: CUDA frees an executable graph only
 * after its launches finish. The HIP docs of ROCm 5.2, which this plugin
 * targets, promise no such deferral (later releases added it), so the HIP
 * plugin waits for the stream first. graph_free comes once per row count and
 * rollout, or for a stale graph, never inside a capture: the wait is cheap. */
void gpu_graph_free(egrc_backend *be, egrc_graph *graph) {
    if (!graph) return;
    gpu_state *st = gpu_op(be, "graph_free");
#ifdef EGRC_GPU_HIP
    if (st) gpu_wait(st);
#endif
    const cudaError_t status = cudaGraphExecDestroy(graph->exec);
    if (st) gpu_check(st, status); /* after a fault, only the host side needs freeing */
    free(graph);
}
