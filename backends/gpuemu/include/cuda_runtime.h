/* The device side of CUDA C++ as the CPU emulation provides it
 * (backends/gpuemu): what the kernels (kernels/cuda, .cu files) use of the language and its
 * built-ins, for the host C++ compiler. The runtime (../runtime.cpp) runs
 * each block's threads as fibers on one CPU thread; the built-ins below are
 * its entry points.
 *
 * How the CUDA spellings map:
 *   __global__, __device__, __host__, __launch_bounds__: nothing (plain
 *       functions; launch bounds are not checked).
 *   __shared__ T name: rewritten by ../rewrite_launches.pl into a static
 *       variable, which the runtime fills with NaN bytes (0xff) for each
 *       block, so that a read of shared memory no thread of the block wrote
 *       shows.
 *   extern __shared__ T name[]: rewritten by the same script into a pointer
 *       to the launch's dynamic shared memory (NaN-filled likewise).
 *   kernel<<<grid, block, shared, stream>>>(args): rewritten by the same
 *       script into egrc_emu::configure(kernel, ...)(args), which converts the
 *       arguments to the kernel's parameter types and copies them, as CUDA
 *       does at the launch, then runs or captures the launch.
 *   threadIdx, blockIdx, blockDim, gridDim: the running fiber's values.
 *   __syncthreads, __syncwarp, __shfl*_sync, __ballot_sync, __any_sync,
 *   __all_sync: barriers over the block or the warp (32 consecutive
 *       threads). They check what CUDA requires and the hardware does not
 *       report: every thread of the block (every lane of the mask) reaches
 *       the same call, named by source line; no lane of the mask has exited
 *       or lies past the end of a partial warp. A warp runs one collective at
 *       a time, so disjoint masks used concurrently by one warp are reported
 *       as divergence (the kernels use full masks only).
 *   atomics: plain read-modify-write; fibers switch only at barriers, so
 *       each is atomic. */
#ifndef EGRC_GPUEMU_CUDA_RUNTIME_H
#define EGRC_GPUEMU_CUDA_RUNTIME_H

#ifndef __cplusplus
#error "cuda_runtime.h of the emulation is for C++ (kernels); C includes cuda_runtime_api.h"
#endif

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda_runtime_api.h"

struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

namespace egrc_emu {

/* The running thread's coordinates, set by the scheduler before it resumes a
 * fiber. Only read after a call into the runtime could have changed them,
 * which the compiler must assume of every out-of-line call. */
extern uint3 thread_idx, block_idx;
extern dim3 block_dim, grid_dim;

/* The current block's dynamic shared memory (the launch's third argument). */
void *dynamic_shared_memory();
template <typename T>
inline T *dynamic_shared() {
    return static_cast<T *>(dynamic_shared_memory());
}

/* A block's static shared variable, declared by each of its threads: the
 * first declaration in a block fills it with NaN bytes. */
void shared_variable(void *address, size_t bytes);
template <typename... T>
inline void shared_variables(T &...variables) {
    (shared_variable((void *)&variables, sizeof variables), ...);
}

void sync_block(const char *file, int line);

/* Stops the process as every emulator check does: the message, the kernel,
 * block and thread it happened in, and a failure status (not a signal). */
[[noreturn]] void fail(const char *message);

/* One warp collective: the calling lane deposits `value` and waits for every
 * lane of `mask`; returns the 32 values deposited (valid until this lane's
 * next collective). */
const uint64_t *warp_collective(const char *op, unsigned mask, uint64_t value, const char *file, int line);
/* The lane a shuffle of kind `op` reads, checked against the mask. */
enum shuffle_kind { shuffle_idx, shuffle_xor, shuffle_up, shuffle_down };
int shuffle_source(shuffle_kind kind, unsigned mask, int arg, int width, const char *file, int line);

template <typename T>
inline T shuffle(shuffle_kind kind, unsigned mask, T value, const char *file, int line, int arg, int width = 32) {
    static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable<T>::value,
                  "the emulator shuffles values of at most 8 bytes");
    uint64_t bits = 0;
    memcpy(&bits, &value, sizeof value);
    const int source = shuffle_source(kind, mask, arg, width, file, line);
    const uint64_t *lanes = warp_collective("a shuffle", mask, bits, file, line);
    T result;
    memcpy(&result, &lanes[source], sizeof result);
    return result;
}

unsigned ballot(unsigned mask, bool predicate, const char *file, int line);
/* The lanes of the caller's warp that have not exited (CUDA's active mask
 * can be smaller inside divergent code; the emulator cannot know). */
unsigned active_mask();

/* A source position, for built-ins whose arguments are optional. */
struct site {
    const char *file;
    int line;
    void sync_warp(unsigned mask = 0xffffffffu) const { warp_collective("__syncwarp", mask, 0, file, line); }
};

/* Kernel launches. configure() is what `kernel<<<...>>>` becomes; calling
 * its result with the arguments launches. Pointer arguments are checked to
 * lie in device memory when the kernel runs (also when a graph replays it). */
struct launch_site {
    const char *kernel, *file;
    int line;
    const char *launcher; /* the launching function, with its template arguments */
};

void launch_kernel(const launch_site &where, const void *kernel, dim3 grid, dim3 block, size_t shared,
                   cudaStream_t stream, std::function<void()> body, std::vector<const void *> pointers);

template <typename T>
inline void collect_pointer(std::vector<const void *> &out, const T &value) {
    if constexpr (std::is_pointer<T>::value) out.push_back((const void *)value);
    else out.push_back(nullptr);
}

template <typename... Params>
struct launcher {
    void (*kernel)(Params...);
    launch_site where;
    dim3 grid, block;
    size_t shared;
    cudaStream_t stream;

    template <typename... Args>
    void operator()(Args &&...args) const {
        static_assert(sizeof...(Args) == sizeof...(Params), "wrong number of kernel arguments");
        const std::tuple<Params...> values(std::forward<Args>(args)...);
        std::vector<const void *> pointers;
        std::apply([&](const Params &...v) { (collect_pointer(pointers, v), ...); }, values);
        void (*const entry)(Params...) = kernel;
        launch_kernel(where, (const void *)entry, grid, block, shared, stream,
                      [entry, values]() { std::apply(entry, values); }, std::move(pointers));
    }
};

/* Work that CUDA does with kernels of its own (the CUB sort): runs on the
 * stream, or is captured into its graph. */
cudaError_t enqueue_host_work(cudaStream_t stream, const char *name, std::function<void()> work);
/* Dies unless [ptr, ptr + bytes) lies in one live device allocation. */
void check_device_range(const char *call, const char *what, const void *ptr, size_t bytes);
/* Dies if the two ranges overlap. */
void check_disjoint(const char *call, const void *a, size_t a_bytes, const void *b, size_t b_bytes);

template <typename... Params>
inline launcher<Params...> configure(void (*kernel)(Params...), const char *name, const char *file, int line,
                                     const char *launching_function, dim3 grid, dim3 block, size_t shared = 0,
                                     cudaStream_t stream = 0) {
    return launcher<Params...>{kernel, {name, file, line, launching_function}, grid, block, shared, stream};
}

} // namespace egrc_emu

#define threadIdx egrc_emu::thread_idx
#define blockIdx egrc_emu::block_idx
#define blockDim egrc_emu::block_dim
#define gridDim egrc_emu::grid_dim
constexpr int warpSize = 32;

#define __syncthreads() egrc_emu::sync_block(__FILE__, __LINE__)
#define __syncwarp(...) egrc_emu::site{__FILE__, __LINE__}.sync_warp(__VA_ARGS__)
#define __shfl_sync(mask, value, ...) \
    egrc_emu::shuffle(egrc_emu::shuffle_idx, (mask), (value), __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_xor_sync(mask, value, ...) \
    egrc_emu::shuffle(egrc_emu::shuffle_xor, (mask), (value), __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_up_sync(mask, value, ...) \
    egrc_emu::shuffle(egrc_emu::shuffle_up, (mask), (value), __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_down_sync(mask, value, ...) \
    egrc_emu::shuffle(egrc_emu::shuffle_down, (mask), (value), __FILE__, __LINE__, __VA_ARGS__)
#define __ballot_sync(mask, predicate) egrc_emu::ballot((mask), (predicate), __FILE__, __LINE__)
#define __any_sync(mask, predicate) (egrc_emu::ballot((mask), (predicate), __FILE__, __LINE__) != 0u)
#define __all_sync(mask, predicate) \
    (egrc_emu::ballot((mask), (predicate), __FILE__, __LINE__) == (unsigned)(mask))
#define __activemask() egrc_emu::active_mask()

/* cudaFuncSetAttribute on a kernel, as CUDA's C++ overload takes it. */
template <typename... Params>
inline cudaError_t cudaFuncSetAttribute(void (*kernel)(Params...), enum cudaFuncAttribute attr, int value) {
    return cudaFuncSetAttribute((const void *)kernel, attr, value);
}

/* Atomics (see the header comment). */
template <typename T>
inline T atomicAdd(T *address, T value) {
    const T old = *address;
    *address = old + value;
    return old;
}
template <typename T>
inline T atomicSub(T *address, T value) {
    const T old = *address;
    *address = old - value;
    return old;
}
template <typename T>
inline T atomicMax(T *address, T value) {
    const T old = *address;
    *address = old < value ? value : old;
    return old;
}
template <typename T>
inline T atomicMin(T *address, T value) {
    const T old = *address;
    *address = value < old ? value : old;
    return old;
}
template <typename T>
inline T atomicExch(T *address, T value) {
    const T old = *address;
    *address = value;
    return old;
}
template <typename T>
inline T atomicCAS(T *address, T compare, T value) {
    const T old = *address;
    if (old == compare) *address = value;
    return old;
}
template <typename T>
inline T atomicOr(T *address, T value) {
    const T old = *address;
    *address = old | value;
    return old;
}
template <typename T>
inline T atomicAnd(T *address, T value) {
    const T old = *address;
    *address = old & value;
    return old;
}

/* Integer and floating-point built-ins. */
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

inline unsigned __float_as_uint(float x) {
    unsigned u;
    memcpy(&u, &x, sizeof u);
    return u;
}
inline float __uint_as_float(unsigned u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
inline int __float_as_int(float x) { return (int)__float_as_uint(x); }
inline float __int_as_float(int i) { return __uint_as_float((unsigned)i); }
inline long long __double_as_longlong(double x) {
    long long i;
    memcpy(&i, &x, sizeof i);
    return i;
}
inline double __longlong_as_double(long long i) {
    double x;
    memcpy(&x, &i, sizeof x);
    return x;
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    __extension__ typedef unsigned __int128 u128;
    return (unsigned long long)(((u128)a * b) >> 64);
}
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __ffs(int x) { return __builtin_ffs(x); }

#endif
