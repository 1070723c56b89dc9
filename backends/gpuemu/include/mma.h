/* CUDA's warp matrix functions (nvcuda::wmma, <mma.h>) for the CPU emulation
 * (backends/gpuemu): the 16x16x16 shape with bf16 operands and fp32
 * accumulators, which the tensor-core attention (kernels/cuda/attention_tc.cu)
 * uses, and nothing else.
 *
 * The model. CUDA leaves unspecified which lane holds which element of a
 * fragment, so correct code touches fragments only through these calls and
 * through element-wise operations that treat every element alike. Here every
 * lane holds the whole tile (num_elements = 256): such code computes the
 * same on both.
 *
 * The checks. Each call is a warp collective, named by its caller's source
 * line as the emulator's shuffles are, so a lane that skips one or reaches
 * another is reported as divergence. A load reads memory before it waits for
 * the other lanes, and a store waits first and then writes only this lane's
 * share of the tile (every 32nd element), so shared memory that other lanes
 * write without a __syncwarp() before the load, or read without one after the
 * store, shows up as wrong or NaN results. Pointers must be 32-byte aligned
 * and ldm a multiple of 16 bytes, as CUDA requires; a breach stops the run. */
#ifndef EGRC_GPUEMU_MMA_H
#define EGRC_GPUEMU_MMA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <type_traits>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

namespace emu {

constexpr int tile = 16;

inline float widen(float x) { return x; }
inline float widen(__nv_bfloat16 x) { return __bfloat162float(x); }

inline void check_operand(const char *call, const void *p, unsigned ldm, size_t element_bytes, const char *file,
                          int line) {
    if ((uintptr_t)p % 32 != 0 || (ldm * element_bytes) % 16 != 0) {
        char message[256];
        snprintf(message, sizeof message, "%s at %s:%d: pointer %p must be 32-byte aligned and ldm %u a multiple of %zu",
                 call, file, line, p, ldm, 16 / element_bytes);
        egrc_emu::fail(message);
    }
}

inline void warp_sync(const char *call, const char *file, int line) {
    egrc_emu::warp_collective(call, 0xffffffffu, 0, file, line);
}

/* This lane's share of a tile when it stores: the elements a lane of a real
 * warp would hold, in number (256 / 32) if not in place. */
inline bool owns(int element) {
    const uint3 t = egrc_emu::thread_idx;
    const dim3 b = egrc_emu::block_dim;
    return element % 32 == (int)((t.x + b.x * (t.y + b.y * t.z)) % 32);
}

} // namespace emu

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "the emulation has the 16x16x16 shape only");
    enum { num_elements = 16 * 16 };
    T x[num_elements]; /* element (i, j) of the tile at x[i * 16 + j], in every lane */
};

template <typename Use, int M, int N, int K, typename T, typename Layout>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout> &f, T value) {
    for (int e = 0; e < f.num_elements; e++) f.x[e] = value;
}

/* Operand tiles: A (row_major: element (i, k) at p[i*ldm + k]) or B. */
template <typename Use, typename T, typename Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout> &f, const T *p, unsigned ldm,
                             const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
    static_assert(!std::is_same<Use, accumulator>::value, "an accumulator load names its memory layout");
    emu::check_operand("load_matrix_sync", p, ldm, sizeof(T), file, line);
    constexpr bool rows = std::is_same<Layout, row_major>::value;
    for (int i = 0; i < emu::tile; i++)
        for (int j = 0; j < emu::tile; j++) f.x[i * emu::tile + j] = rows ? p[i * ldm + j] : p[j * ldm + i];
    emu::warp_sync("load_matrix_sync", file, line);
}

template <typename T>
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, T> &f, const T *p, unsigned ldm, layout_t layout,
                             const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
    emu::check_operand("load_matrix_sync", p, ldm, sizeof(T), file, line);
    for (int i = 0; i < emu::tile; i++)
        for (int j = 0; j < emu::tile; j++)
            f.x[i * emu::tile + j] = layout == mem_row_major ? p[i * ldm + j] : p[j * ldm + i];
    emu::warp_sync("load_matrix_sync", file, line);
}

template <typename T>
inline void store_matrix_sync(T *p, const fragment<accumulator, 16, 16, 16, T> &f, unsigned ldm, layout_t layout,
                              const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
    emu::check_operand("store_matrix_sync", p, ldm, sizeof(T), file, line);
    emu::warp_sync("store_matrix_sync", file, line);
    for (int i = 0; i < emu::tile; i++)
        for (int j = 0; j < emu::tile; j++) {
            const int e = i * emu::tile + j;
            if (!emu::owns(e)) continue;
            (layout == mem_row_major ? p[i * ldm + j] : p[j * ldm + i]) = f.x[e];
        }
}

/* d = a b + c, with fp32 products and sums (the order of a tensor core's
 * sums is unspecified; this one adds k = 0..15 in turn). d may be c. */
template <typename T, typename LayoutA, typename LayoutB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, T, LayoutA> &a,
                     const fragment<matrix_b, 16, 16, 16, T, LayoutB> &b,
                     const fragment<accumulator, 16, 16, 16, float> &c, const char *file = __builtin_FILE(),
                     int line = __builtin_LINE()) {
    emu::warp_sync("mma_sync", file, line);
    float sum[16 * 16];
    for (int i = 0; i < emu::tile; i++)
        for (int j = 0; j < emu::tile; j++) {
            float s = c.x[i * emu::tile + j];
            for (int k = 0; k < emu::tile; k++)
                s += emu::widen(a.x[i * emu::tile + k]) * emu::widen(b.x[k * emu::tile + j]);
            sum[i * emu::tile + j] = s;
        }
    for (int e = 0; e < 16 * 16; e++) d.x[e] = sum[e];
}

} // namespace wmma
} // namespace nvcuda

#endif
