/* The CPU backend: the reference every other backend is tested against, and
 * the default. Memory is 64-byte aligned host memory; the "stream" is the
 * calling thread, so every op has finished when it returns. Its ops take any
 * shape (supports says yes to every model), and the only faults it latches
 * are allocations inside ops that fail (attention_backward's scratch, the
 * sample op's samplers); ops keep running after one, harmlessly, on host
 * memory, and every later wait reports it. */
#include "cpu_backend.h"

#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cpu_device_count(egrc_error *err) {
    (void)err;
    return 1;
}

static void read_cpu_model_name(char *name, size_t size) {
    snprintf(name, size, "CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *colon = strchr(line, ':');
            if (colon) {
                snprintf(name, size, "%s", colon + 2);
                name[strcspn(name, "\n")] = '\0';
            }
            break;
        }
    }
    fclose(f);
}

static int cpu_device_info(int device, egrc_device_info *info, egrc_error *err) {
    if (device != 0) return egrc_fail(err, "cpu backend has one device (0), not %d", device);
    memset(info, 0, sizeof *info);
    read_cpu_model_name(info->name, sizeof info->name);
    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
    info->memory_bytes = pages > 0 && page_size > 0 ? (size_t)pages * (size_t)page_size : 0;
    info->compute_units = omp_get_max_threads();
    return 0;
}

static egrc_backend *cpu_open(int device, egrc_error *err) {
    if (device != 0) {
        egrc_fail(err, "cpu backend has one device (0), not %d", device);
        return NULL;
    }
    egrc_backend *be = calloc(1, sizeof *be);
    cpu_state *st = calloc(1, sizeof *st);
    if (!be || !st) {
        free(be);
        free(st);
        egrc_fail(err, "out of memory opening the cpu backend");
        return NULL;
    }
    be->impl = st;
    be->ops = egrc_cpu_backend_ops();
    be->device = 0;
    be->act_dtype = EGRC_DTYPE_F32;
    return be;
}

static void cpu_close(egrc_backend *be) {
    cpu_samplers_free(be->impl);
    free(be->impl);
    free(be);
}

static int cpu_supports(egrc_backend *be, const egrc_model_shape *shape, egrc_error *err) {
    (void)be;
    (void)shape;
    (void)err;
    return 0;
}

void cpu_latch(egrc_backend *be, const char *op, const char *fmt, ...) {
    cpu_state *st = be->impl;
    char cause[sizeof st->fault.msg];
    va_list args;
    va_start(args, fmt);
    vsnprintf(cause, sizeof cause, fmt, args);
    va_end(args);
#pragma omp critical(egrc_cpu_latch)
    if (!st->faulted) {
        st->faulted = 1;
        snprintf(st->fault.msg, sizeof st->fault.msg, "backend 'cpu': op %s: %.900s", op, cause);
    }
}

static int cpu_latched_error(egrc_backend *be, egrc_error *err) {
    const cpu_state *st = be->impl;
    if (!st->faulted) return 0;
    return egrc_fail(err, "%s", st->fault.msg);
}

static void *cpu_alloc(egrc_backend *be, size_t bytes, egrc_error *err) {
    (void)be;
    size_t rounded = (bytes + 63) / 64 * 64;
    void *ptr = aligned_alloc(64, rounded ? rounded : 64);
    if (!ptr) egrc_fail(err, "out of host memory allocating %zu bytes", bytes);
    return ptr;
}

static void cpu_free(egrc_backend *be, void *ptr) {
    (void)be;
    free(ptr);
}

static void cpu_copy(egrc_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memcpy(dst, src, bytes);
}

static void cpu_zero(egrc_backend *be, void *ptr, size_t bytes) {
    (void)be;
    if (bytes) memset(ptr, 0, bytes);
}

static void cpu_synchronize(egrc_backend *be) { (void)be; }

static void cpu_to_act(egrc_backend *be, void *dst, const float *src, size_t n) {
    cpu_copy(be, dst, src, n * sizeof(float));
}

static const egrc_backend_ops cpu_ops = {
    .abi_version = EGRC_BACKEND_ABI_VERSION,
    .name = "cpu",
    .device_count = cpu_device_count,
    .device_info = cpu_device_info,
    .open = cpu_open,
    .close = cpu_close,
    .supports = cpu_supports,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .zero = cpu_zero,
    .synchronize = cpu_synchronize,
    .latched_error = cpu_latched_error,
    .to_act = cpu_to_act,
    .embedding_forward = cpu_embedding_forward,
    .embedding_backward = cpu_embedding_backward,
    .layernorm_forward = cpu_layernorm_forward,
    .layernorm_backward = cpu_layernorm_backward,
    .rmsnorm_forward = cpu_rmsnorm_forward,
    .rmsnorm_backward = cpu_rmsnorm_backward,
    .matmul_forward = cpu_matmul_forward,
    .matmul_backward = cpu_matmul_backward,
    .rope_forward = cpu_rope_forward,
    .rope_backward = cpu_rope_backward,
    .attention_scratch_bytes = cpu_attention_scratch_bytes,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
    .gelu_forward = cpu_gelu_forward,
    .gelu_backward = cpu_gelu_backward,
    .swiglu_forward = cpu_swiglu_forward,
    .swiglu_backward = cpu_swiglu_backward,
    .add = cpu_add,
    .cross_entropy_forward = cpu_cross_entropy_forward,
    .cross_entropy_backward = cpu_cross_entropy_backward,
    .kv_cache_write = cpu_kv_cache_write,
    .attention_decode = cpu_attention_decode,
    .to_f32 = cpu_to_f32,
    .sample = cpu_sample,
    .sum_squares = cpu_sum_squares,
    .adamw = cpu_adamw,
};

const egrc_backend_ops *egrc_cpu_backend_ops(void) { return &cpu_ops; }
