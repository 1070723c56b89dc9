/* Causal self-attention with grouped-query heads on tensor cores: the
 * training and prefill forward and its backward, in bf16 mode on NVIDIA
 * sm_80 and newer (A100, H100, H200). attention.cu hands its forward and
 * backward calls here when egrc_gpu_attention_tc_applies says so; decoding
 * and every other case stay on its SIMT kernels (EGRC_GPU_ATTENTION=simt
 * forces them, to compare).
 *
 * Design (FlashAttention-2's, through the CUDA WMMA API). A block has
 * TC_WARPS = 4 warps and owns TC_BLOCK_ROWS = 64 rows: queries in the forward
 * and the dQ kernel, keys in the dK/dV kernel; each warp owns 16 of them, one
 * WMMA tile high. The other side streams through shared memory in tiles of
 * TC_TILE = 64 rows (keys, or queries for dK/dV). Products are 16x16x16 WMMA
 * operations on bf16 operands with fp32 accumulators: S = Q K^T, O += P V in
 * the forward; S, dP = dO V^T and dQ += dS K in the dQ kernel; S^T = K Q^T,
 * dP^T = V dO^T, dV += P^T dO and dK += dS^T Q in the dK/dV kernel. No T x T
 * matrix reaches global memory: the forward keeps one log-sum-exp per row and
 * the backward recomputes P from it.
 *
 * Row-wise work never touches a fragment's elements, whose placement in the
 * lanes CUDA leaves unspecified: a warp stores its score tile (16 x 64 fp32)
 * to its own shared scratch, two lanes per row apply the mask, the softmax
 * and the gradient formula in SIMT, write P or dS there as bf16 (the
 * rounding FlashAttention does before the next product), and the warp loads
 * those back as operand fragments. The same scratch rescales or scales an
 * accumulator's rows. Softmax statistics, deltas and all accumulation are
 * fp32. The forward's online softmax rescales lazily: the output
 * accumulators keep their reference maximum until some row of the warp sees
 * a score more than 2^TC_RESCALE_LOG2 above it, so P stays below 256 (exact
 * enough in bf16, far from fp32 overflow) and the round trip of the
 * accumulators through shared memory happens on a row's first tile and
 * rarely after; l and O always share the reference, so O / l is exact.
 *
 * Backward: the dQ kernel (grid over query blocks) also computes delta =
 * rowsum(dO * O) for its rows and leaves it in the scratch for the dK/dV
 * kernel (grid over key blocks of each KV head), which sums a group's query
 * heads in its accumulators. Every output element is written once, by one
 * thread, after a fixed-order loop: deterministic, no atomics, at the price
 * of recomputing S and dP in both kernels (9 products per head and key-query
 * pair where an atomic dQ would need 7).
 *
 * Shared memory: K/V (or Q/dO) tiles are bf16 rows padded by 8 elements (16
 * bytes), so the rows of an 8x8 fragment piece start in different banks;
 * the fp32 scratch rows are padded by 4, and lane pairs walk their row in a
 * rotated order (tc_column) that puts the 32 lanes in 32 different banks.
 * Bytes per block (D = head size): forward 2 tiles + scratch, 46 KB at D=64,
 * 78 KB at D=128; dQ 62 / 95 KB; dK/dV 90 / 140 KB (on an A100's 163 KB
 * and an H100's 227 KB). Tiles are staged with 16-byte loads, without
 * cp.async or double buffering: the other blocks on the SM (2-4 of them at
 * D=64) cover the load latency.
 *
 * Expected speed (reasoning, not measured). Each 16x16x16 product needs at
 * least one 512-byte operand fragment from shared memory, and each 16x64
 * score tile costs about 16 KB of scratch traffic per warp, so at D=64
 * shared-memory bandwidth (128 B/clock/SM) bounds the kernels near 700
 * multiply-adds per clock per SM, about 300 TFLOP/s on an H100, several
 * times the SIMT kernels' fp32 rate; some 100-150 TFLOP/s is a realistic
 * aim. GPT-2 124M at B=32, T=1024 does about 2.8 TFLOP of attention
 * products per step this way (masked tiles skipped), so roughly 20-30 ms per
 * step where the SIMT kernels need on the order of 100.
 *
 * Status: compiled for sm_80 and sm_90 and run on the CPU emulation
 * (backends/gpuemu, whose include/mma.h emulates WMMA); never run on a GPU.
 * Its speed, and its correctness on real tensor cores, are unverified.
 *
 * HIP: Debian packages no rocWMMA, so the HIP plugin compiles only the
 * entry points at the end of this file, which decline every call. */
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

#define TC_WARPS 4
#define TC_THREADS (TC_WARPS * WARP)
#define TC_WARP_ROWS 16 /* a warp's rows: one WMMA tile */
#define TC_BLOCK_ROWS (TC_WARPS * TC_WARP_ROWS)
#define TC_TILE 64 /* rows of the streamed side per step */
#define TC_SUBTILES (TC_TILE / 16)
#define TC_MAX_HEAD_DIM 128 /* fragment arrays of D/16 accumulators per warp stay in registers */
#define TC_P_LD (TC_TILE + 8) /* bf16 row stride of a warp's P or dS tile */
#define TC_SCORE_LD (TC_TILE + 4) /* fp32 row stride of a warp's second score tile (dP) */
#define TC_RESCALE_LOG2 8.0f

#define TC_LOG2E 1.4426950408889634f
#define TC_LN2 0.6931471805599453f

#ifndef __HIPCC__

/* A warp's fp32 scratch holds a score tile or a D-wide accumulator tile. */
__host__ __device__ constexpr int tc_float_ld(int D) { return (D > TC_TILE ? D : TC_TILE) + 4; }
__host__ __device__ constexpr int tc_tile_ld(int D) { return D + 8; }

enum tc_kernel { TC_FORWARD, TC_DQ, TC_DKV };

/* WMMA wants 32-byte aligned tiles, and CUDA promises 16 for dynamic
 * shared memory: the kernels round its start up to TC_ALIGN. */
#define TC_ALIGN 128

/* Dynamic shared memory per block, in the order the kernels lay it out.
 * Every region is a multiple of 32 bytes, so each starts 32-byte aligned. */
static size_t tc_shared_bytes(enum tc_kernel kernel, int D) {
    const size_t tile = (size_t)TC_TILE * tc_tile_ld(D) * sizeof(egrc_bf16);
    const size_t p = (size_t)TC_WARPS * TC_WARP_ROWS * TC_P_LD * sizeof(egrc_bf16);
    const size_t f = (size_t)TC_WARPS * TC_WARP_ROWS * tc_float_ld(D) * sizeof(float);
    const size_t g = (size_t)TC_WARPS * TC_WARP_ROWS * TC_SCORE_LD * sizeof(float);
    switch (kernel) {
    case TC_FORWARD: return TC_ALIGN + 2 * tile + p + f; /* K, V, P, scratch */
    case TC_DQ: return TC_ALIGN + 2 * tile + p + f + g;  /* K, V, dS, S, dP */
    default: return TC_ALIGN + 4 * tile + 2 * p + f + g + 2 * TC_TILE * sizeof(float); /* K, V, Q, dO, P, dS, S, dP, lse, delta */
    }
}

/* nvcc unrolls the loops over fragment arrays when told to, which keeps the
 * arrays in registers; the emulation's compiler needs no hint. */
#ifdef __CUDACC__
#define TC_UNROLL _Pragma("unroll")
#else
#define TC_UNROLL
#endif

#ifdef EGRC_GPU_TENSOR_CORES
#include <mma.h>

namespace wmma = nvcuda::wmma;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, egrc_bf16, wmma::row_major> tc_a_rows;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, egrc_bf16, wmma::row_major> tc_b_rows;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, egrc_bf16, wmma::col_major> tc_b_cols; /* a transposed tile */
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> tc_acc;

/* The block's dynamic shared memory, from its first TC_ALIGN boundary. */
__device__ __forceinline__ egrc_bf16 *tc_shared_start(float *dynamic) {
    return (egrc_bf16 *)(((uintptr_t)dynamic + TC_ALIGN - 1) & ~(uintptr_t)(TC_ALIGN - 1));
}

__device__ __forceinline__ void tc_copy16(egrc_bf16 *dst, const egrc_bf16 *src) {
#ifdef EGRC_GPU_EMU
    memcpy(dst, src, 16);
#else
    *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(src);
#endif
}

__device__ __forceinline__ void tc_zero16(egrc_bf16 *dst) {
#ifdef EGRC_GPU_EMU
    memset(dst, 0, 16);
#else
    *reinterpret_cast<uint4 *>(dst) = make_uint4(0, 0, 0, 0);
#endif
}

/* TC_TILE rows of a bf16 matrix (row r at src + r*stride, D wide) into
 * shared memory, rows at tc_tile_ld(D); rows from `valid` on are zeros,
 * since a masked row still enters the products and 0 * NaN is NaN. The whole
 * block calls it. */
template <int D>
__device__ void tc_load_tile(egrc_bf16 *dst, const egrc_bf16 *src, size_t stride, int valid) {
    constexpr int chunks = D / 8; /* 16-byte pieces per row */
    for (int i = threadIdx.x; i < TC_TILE * chunks; i += TC_THREADS) {
        const int r = i / chunks, c = (i % chunks) * 8;
        egrc_bf16 *d = dst + r * tc_tile_ld(D) + c;
        if (r < valid) tc_copy16(d, src + r * stride + c);
        else tc_zero16(d);
    }
}

/* Lanes 2r and 2r+1 own row r of a warp's 16 x TC_TILE score tile, one
 * column each per step; lane pairs start at different columns, so with a
 * row stride of 4 (mod 32) floats the warp touches 32 banks per step. */
static_assert(TC_TILE == 2 * WARP, "two lanes per score row");
__device__ __forceinline__ int tc_column(int step, int lane) { return (lane & 1) * WARP + ((step + lane) & (WARP - 1)); }

/* The warp's accumulator tile (16 x D) into its fp32 scratch, each row times
 * `factor` (the calling lane's row's). */
template <int DT>
__device__ void tc_stage_rows(tc_acc (&acc)[DT], float *scratch, float factor) {
    constexpr int D = DT * 16, FLD = tc_float_ld(D);
    const int lane = threadIdx.x % WARP, row = lane >> 1, half = lane & 1;
    __syncwarp(); /* every lane is done reading the scratch */
    TC_UNROLL
    for (int dt = 0; dt < DT; dt++) wmma::store_matrix_sync(scratch + dt * 16, acc[dt], FLD, wmma::mem_row_major);
    __syncwarp();
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); c++) scratch[row * FLD + c] *= factor;
    __syncwarp();
}

/* Multiplies each row of the accumulators by the calling lane's row's factor. */
template <int DT>
__device__ void tc_scale_rows(tc_acc (&acc)[DT], float *scratch, float factor) {
    tc_stage_rows<DT>(acc, scratch, factor);
    TC_UNROLL
    for (int dt = 0; dt < DT; dt++)
        wmma::load_matrix_sync(acc[dt], scratch + dt * 16, tc_float_ld(DT * 16), wmma::mem_row_major);
}

/* Writes the warp's 16 x D accumulators times each row's factor as bf16 to
 * rows dst + r*stride, r < valid_rows; consecutive lanes write consecutive
 * elements. */
template <int DT>
__device__ void tc_store_rows(egrc_bf16 *dst, size_t stride, int valid_rows, tc_acc (&acc)[DT], float *scratch,
                              float factor) {
    constexpr int D = DT * 16, FLD = tc_float_ld(D);
    tc_stage_rows<DT>(acc, scratch, factor);
    for (int i = threadIdx.x % WARP; i < TC_WARP_ROWS * D; i += WARP) {
        const int r = i / D, c = i % D;
        if (r < valid_rows) dst[r * stride + c] = egrc_float_to_bf16(scratch[r * FLD + c]);
    }
}

/* acc(16 x D) += a(16 x 16k) b(16k x D) over the first `subtiles` 16-row
 * subtiles k of the streamed tile: a is a warp's P or dS tile (leading
 * dimension TC_P_LD), b the tile's values or keys (leading dimension ld). */
template <int DT>
__device__ void tc_accumulate_product(tc_acc (&acc)[DT], const egrc_bf16 *a, const egrc_bf16 *b, int ld,
                                      int subtiles) {
    TC_UNROLL
    for (int kt = 0; kt < TC_SUBTILES; kt++) {
        if (kt >= subtiles) continue;
        tc_a_rows a_frag;
        wmma::load_matrix_sync(a_frag, a + kt * 16, TC_P_LD);
        TC_UNROLL
        for (int dt = 0; dt < DT; dt++) {
            tc_b_rows b_frag;
            wmma::load_matrix_sync(b_frag, b + kt * 16 * ld + dt * 16, ld);
            wmma::mma_sync(acc[dt], a_frag, b_frag, acc[dt]);
        }
    }
}

/* out(16 x 16n) = rows(16 x D) tile(16n x D)^T for the 16-row subtiles n of
 * the streamed tile in [first, end), the others left as they are: one
 * warp's products against a tile of TC_TILE rows, stored row-major with
 * leading dimension out_ld. rows and tile have leading dimension ld. */
template <int DT>
__device__ void tc_warp_products(float *out, int out_ld, const egrc_bf16 *rows, const egrc_bf16 *tile, int ld,
                                 int first, int end) {
    tc_acc s[TC_SUBTILES];
    TC_UNROLL
    for (int n = 0; n < TC_SUBTILES; n++) wmma::fill_fragment(s[n], 0.0f);
    TC_UNROLL
    for (int dt = 0; dt < DT; dt++) {
        tc_a_rows a_frag;
        wmma::load_matrix_sync(a_frag, rows + dt * 16, ld);
        TC_UNROLL
        for (int n = 0; n < TC_SUBTILES; n++) {
            if (n < first || n >= end) continue;
            tc_b_cols b_frag;
            wmma::load_matrix_sync(b_frag, tile + n * 16 * ld + dt * 16, ld);
            wmma::mma_sync(s[n], a_frag, b_frag, s[n]);
        }
    }
    TC_UNROLL
    for (int n = 0; n < TC_SUBTILES; n++)
        if (n >= first && n < end) wmma::store_matrix_sync(out + n * 16, s[n], out_ld, wmma::mem_row_major);
}

/* Key subtiles of the tile at k0 that some query of the warp (first query
 * q_first, 16 of them) may see, and that hold keys (`keys` of them): later
 * subtiles are all masked, and the warp skips their products. */
__device__ __forceinline__ int tc_visible_subtiles(int q_first, int k0, int keys) {
    return min(min(TC_SUBTILES, (q_first + 15 - k0) / 16 + 1), (keys + 15) / 16);
}
#endif

/* grid (query blocks, H, B), TC_THREADS threads; rows as attention.cu's forward. */
template <int DT>
__global__ void __launch_bounds__(TC_THREADS)
    tc_forward_kernel(egrc_bf16 *out, float *lse, const egrc_bf16 *qkv, int T, int H, int KV) {
#ifdef EGRC_GPU_TENSOR_CORES
    constexpr int D = DT * 16, LD = tc_tile_ld(D), FLD = tc_float_ld(D);
    extern __shared__ float tc_smem[];
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP, row = lane >> 1, half = lane & 1;
    egrc_bf16 *Ks = tc_shared_start(tc_smem); /* Q first, then each key tile */
    egrc_bf16 *Vs = Ks + TC_TILE * LD;
    egrc_bf16 *Ps = Vs + TC_TILE * LD + warp * TC_WARP_ROWS * TC_P_LD;
    float *scratch = (float *)(Vs + TC_TILE * LD + TC_WARPS * TC_WARP_ROWS * TC_P_LD) + warp * TC_WARP_ROWS * FLD;

    const int q0 = (gridDim.x - 1 - blockIdx.x) * TC_BLOCK_ROWS; /* the longest rows start first */
    const int h = blockIdx.y, b = blockIdx.z, kv_head = h / (H / KV);
    const int warp_q = q0 + warp * TC_WARP_ROWS, q_row = warp_q + row;
    const size_t stride = (size_t)(H + 2 * KV) * D;
    const egrc_bf16 *seq = qkv + (size_t)b * T * stride;
    const float scale_log2 = TC_LOG2E / sqrtf((float)D); /* scores in log2 units: exp2 is the fast exponential */

    tc_load_tile<D>(Ks, seq + (size_t)q0 * stride + (size_t)h * D, stride, min(TC_BLOCK_ROWS, T - q0));
    __syncthreads();
    tc_a_rows q_frag[DT];
    TC_UNROLL
    for (int dt = 0; dt < DT; dt++) wmma::load_matrix_sync(q_frag[dt], Ks + warp * TC_WARP_ROWS * LD + dt * 16, LD);
    tc_acc o_frag[DT];
    TC_UNROLL
    for (int dt = 0; dt < DT; dt++) wmma::fill_fragment(o_frag[dt], 0.0f);
    float m = -INFINITY, l = 0.0f; /* this lane's row: reference maximum (log2 units) and sum */

    const int last_key = min(T - 1, q0 + TC_BLOCK_ROWS - 1);
    for (int k0 = 0; k0 <= last_key; k0 += TC_TILE) {
        __syncthreads(); /* Q is in fragments, or the previous tile is consumed */
        const int keys = min(TC_TILE, T - k0);
        tc_load_tile<D>(Ks, seq + (size_t)k0 * stride + (size_t)(H + kv_head) * D, stride, keys);
        tc_load_tile<D>(Vs, seq + (size_t)k0 * stride + (size_t)(H + KV + kv_head) * D, stride, keys);
        __syncthreads();
        const int subtiles = tc_visible_subtiles(warp_q, k0, keys);
        TC_UNROLL
        for (int n = 0; n < TC_SUBTILES; n++) {
            if (n >= subtiles) continue;
            tc_acc s;
            wmma::fill_fragment(s, 0.0f);
            TC_UNROLL
            for (int dt = 0; dt < DT; dt++) {
                tc_b_cols k_frag;
                wmma::load_matrix_sync(k_frag, Ks + n * 16 * LD + dt * 16, LD);
                wmma::mma_sync(s, q_frag[dt], k_frag, s);
            }
            wmma::store_matrix_sync(scratch + n * 16, s, FLD, wmma::mem_row_major);
        }
        __syncwarp();

        /* Only entries a row may see are read: the others were not computed. */
        float tile_max = -INFINITY;
        for (int i = 0; i < WARP; i++) {
            const int c = tc_column(i, lane), key = k0 + c;
            if (key <= q_row && key < T) tile_max = fmaxf(tile_max, scratch[row * FLD + c]);
        }
        tile_max *= scale_log2;
        tile_max = fmaxf(tile_max, egrc_shfl_xor(tile_max, 1));
        const bool rescale = __any_sync(0xffffffffu, tile_max > m + TC_RESCALE_LOG2);
        float alpha = 1.0f;
        if (rescale) { /* the same branch for the whole warp */
            const float m_new = fmaxf(m, tile_max);
            alpha = m_new == -INFINITY ? 1.0f : exp2f(m - m_new); /* 0 on the row's first keys */
            m = m_new;
            l *= alpha;
        }
        /* A visible key means a finite m here. */
        float sum = 0.0f;
        for (int i = 0; i < WARP; i++) {
            const int c = tc_column(i, lane), key = k0 + c;
            const float p = key <= q_row && key < T ? exp2f(scratch[row * FLD + c] * scale_log2 - m) : 0.0f;
            Ps[row * TC_P_LD + c] = egrc_float_to_bf16(p);
            sum += p;
        }
        l += sum + egrc_shfl_xor(sum, 1);
        if (rescale) tc_scale_rows<DT>(o_frag, scratch, alpha);
        __syncwarp(); /* P is complete */
        tc_accumulate_product<DT>(o_frag, Ps, Vs, LD, subtiles); /* O += P V */
    }
    /* Padding rows (q_row >= T) saw keys too, with zero queries: finite, never stored. */
    tc_store_rows<DT>(out + ((size_t)b * T + warp_q) * H * D + (size_t)h * D, (size_t)H * D, T - warp_q, o_frag,
                      scratch, 1.0f / l);
    if (half == 0 && q_row < T) lse[((size_t)b * H + h) * T + q_row] = (m + log2f(l)) * TC_LN2;
#endif
}

/* dQ and delta: grid (query blocks, H, B). delta (B, H, T) is written here
 * and read by tc_dkv_kernel. */
template <int DT>
__global__ void __launch_bounds__(TC_THREADS)
    tc_dq_kernel(egrc_bf16 *dqkv, float *delta, const egrc_bf16 *dout, const egrc_bf16 *qkv, const egrc_bf16 *out,
                 const float *lse, int T, int H, int KV) {
#ifdef EGRC_GPU_TENSOR_CORES
    constexpr int D = DT * 16, LD = tc_tile_ld(D), FLD = tc_float_ld(D);
    extern __shared__ float tc_smem[];
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP, row = lane >> 1, half = lane & 1;
    egrc_bf16 *Ks = tc_shared_start(tc_smem); /* Q first, then each key tile */
    egrc_bf16 *Vs = Ks + TC_TILE * LD;    /* dO first, then each value tile */
    egrc_bf16 *dSs = Vs + TC_TILE * LD + warp * TC_WARP_ROWS * TC_P_LD;
    float *scratch = (float *)(Vs + TC_TILE * LD + TC_WARPS * TC_WARP_ROWS * TC_P_LD) + warp * TC_WARP_ROWS * FLD;
    float *dPs = (float *)(Vs + TC_TILE * LD + TC_WARPS * TC_WARP_ROWS * TC_P_LD) + TC_WARPS * TC_WARP_ROWS * FLD +
                 warp * TC_WARP_ROWS * TC_SCORE_LD;

    const int q0 = (gridDim.x - 1 - blockIdx.x) * TC_BLOCK_ROWS;
    const int h = blockIdx.y, b = blockIdx.z, kv_head = h / (H / KV);
    const int warp_q = q0 + warp * TC_WARP_ROWS, q_row = warp_q + row;
    const size_t stride = (size_t)(H + 2 * KV) * D, HD = (size_t)H * D;
    const egrc_bf16 *seq = qkv + (size_t)b * T * stride;
    const float scale = 1.0f / sqrtf((float)D), scale_log2 = scale * TC_LOG2E;
    const int rows = min(TC_BLOCK_ROWS, T - q0);

    tc_load_tile<D>(Ks, seq + (size_t)q0 * stride + (size_t)h * D, stride, rows);
    tc_load_tile<D>(Vs, dout + ((size_t)b * T + q0) * HD + (size_t)h * D, HD, rows);
    __syncthreads();
    tc_a_rows q_frag[DT], do_frag[DT];
    TC_UNROLL
    for (int dt = 0; dt < DT; dt++) {
        wmma::load_matrix_sync(q_frag[dt], Ks + warp * TC_WARP_ROWS * LD + dt * 16, LD);
        wmma::load_matrix_sync(do_frag[dt], Vs + warp * TC_WARP_ROWS * LD + dt * 16, LD);
    }
    /* This lane's row: lse in log2 units, and delta = rowsum(dO * O) over the
     * stored bf16 values, half of D per lane. */
    float row_lse = 0.0f, partial = 0.0f;
    if (q_row < T) {
        const egrc_bf16 *o = out + ((size_t)b * T + q_row) * HD + (size_t)h * D;
        const egrc_bf16 *g = Vs + (warp * TC_WARP_ROWS + row) * LD;
        for (int c = half * (D / 2); c < (half + 1) * (D / 2); c++)
            partial += egrc_bf16_to_float(g[c]) * egrc_bf16_to_float(o[c]);
        row_lse = lse[((size_t)b * H + h) * T + q_row] * TC_LOG2E;
    }
    const float row_delta = partial + egrc_shfl_xor(partial, 1);
    if (half == 0 && q_row < T) delta[((size_t)b * H + h) * T + q_row] = row_delta;
    tc_acc dq_frag[DT];
    TC_UNROLL
    for (int dt = 0; dt < DT; dt++) wmma::fill_fragment(dq_frag[dt], 0.0f);

    const int last_key = min(T - 1, q0 + TC_BLOCK_ROWS - 1);
    for (int k0 = 0; k0 <= last_key; k0 += TC_TILE) {
        __syncthreads(); /* Q and dO are in fragments, or the previous tile is consumed */
        const int keys = min(TC_TILE, T - k0);
        tc_load_tile<D>(Ks, seq + (size_t)k0 * stride + (size_t)(H + kv_head) * D, stride, keys);
        tc_load_tile<D>(Vs, seq + (size_t)k0 * stride + (size_t)(H + KV + kv_head) * D, stride, keys);
        __syncthreads();
        const int subtiles = tc_visible_subtiles(warp_q, k0, keys);
        TC_UNROLL
        for (int n = 0; n < TC_SUBTILES; n++) {
            if (n >= subtiles) continue;
            tc_acc s, dp;
            wmma::fill_fragment(s, 0.0f);
            wmma::fill_fragment(dp, 0.0f);
            TC_UNROLL
            for (int dt = 0; dt < DT; dt++) {
                tc_b_cols k_frag, v_frag;
                wmma::load_matrix_sync(k_frag, Ks + n * 16 * LD + dt * 16, LD);
                wmma::mma_sync(s, q_frag[dt], k_frag, s);
                wmma::load_matrix_sync(v_frag, Vs + n * 16 * LD + dt * 16, LD);
                wmma::mma_sync(dp, do_frag[dt], v_frag, dp);
            }
            wmma::store_matrix_sync(scratch + n * 16, s, FLD, wmma::mem_row_major);
            wmma::store_matrix_sync(dPs + n * 16, dp, TC_SCORE_LD, wmma::mem_row_major);
        }
        __syncwarp();
        /* dS = P (dP - delta), without the 1/sqrt(D), which dQ takes at the end. */
        for (int i = 0; i < WARP; i++) {
            const int c = tc_column(i, lane), key = k0 + c;
            float ds = 0.0f;
            if (key <= q_row && q_row < T) {
                const float p = exp2f(scratch[row * FLD + c] * scale_log2 - row_lse);
                ds = p * (dPs[row * TC_SCORE_LD + c] - row_delta);
            }
            dSs[row * TC_P_LD + c] = egrc_float_to_bf16(ds);
        }
        __syncwarp();
        tc_accumulate_product<DT>(dq_frag, dSs, Ks, LD, subtiles); /* dQ += dS K */
    }
    tc_store_rows<DT>(dqkv + ((size_t)b * T + warp_q) * stride + (size_t)h * D, stride, T - warp_q, dq_frag, scratch,
                      scale);
#endif
}

/* dK, dV: grid (key blocks, KV, B). Rows are keys; the loop runs over the
 * group's query heads, then the query tiles from the block's first key on
 * (earlier queries cannot see these keys). */
template <int DT>
__global__ void __launch_bounds__(TC_THREADS)
    tc_dkv_kernel(egrc_bf16 *dqkv, const egrc_bf16 *dout, const egrc_bf16 *qkv, const float *lse, const float *delta,
                  int T, int H, int KV) {
#ifdef EGRC_GPU_TENSOR_CORES
    constexpr int D = DT * 16, LD = tc_tile_ld(D), FLD = tc_float_ld(D);
    extern __shared__ float tc_smem[];
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP, row = lane >> 1;
    egrc_bf16 *Kb = tc_shared_start(tc_smem); /* the block's keys and values */
    egrc_bf16 *Vb = Kb + TC_BLOCK_ROWS * LD;
    egrc_bf16 *Qs = Vb + TC_BLOCK_ROWS * LD; /* the query tile, and its dO */
    egrc_bf16 *dOs = Qs + TC_TILE * LD;
    egrc_bf16 *Ps = dOs + TC_TILE * LD + warp * TC_WARP_ROWS * TC_P_LD; /* P^T */
    egrc_bf16 *dSs = Ps + TC_WARPS * TC_WARP_ROWS * TC_P_LD;            /* dS^T */
    float *scratch = (float *)(dOs + TC_TILE * LD + 2 * TC_WARPS * TC_WARP_ROWS * TC_P_LD) + warp * TC_WARP_ROWS * FLD;
    float *dPs = (float *)(dOs + TC_TILE * LD + 2 * TC_WARPS * TC_WARP_ROWS * TC_P_LD) +
                 TC_WARPS * TC_WARP_ROWS * FLD + warp * TC_WARP_ROWS * TC_SCORE_LD;
    float *Ls = (float *)(dOs + TC_TILE * LD + 2 * TC_WARPS * TC_WARP_ROWS * TC_P_LD) +
                TC_WARPS * TC_WARP_ROWS * (FLD + TC_SCORE_LD); /* the tile's lse, log2 units */
    float *Ds = Ls + TC_TILE;                                  /* the tile's deltas */

    const int s0 = blockIdx.x * TC_BLOCK_ROWS, kv_head = blockIdx.y, b = blockIdx.z, group = H / KV;
    const int warp_k = s0 + warp * TC_WARP_ROWS, k_row = warp_k + row;
    const size_t stride = (size_t)(H + 2 * KV) * D, HD = (size_t)H * D;
    const egrc_bf16 *seq = qkv + (size_t)b * T * stride;
    const float scale = 1.0f / sqrtf((float)D), scale_log2 = scale * TC_LOG2E;
    const int keys = min(TC_BLOCK_ROWS, T - s0);

    tc_load_tile<D>(Kb, seq + (size_t)s0 * stride + (size_t)(H + kv_head) * D, stride, keys);
    tc_load_tile<D>(Vb, seq + (size_t)s0 * stride + (size_t)(H + KV + kv_head) * D, stride, keys);
    tc_acc dk_frag[DT], dv_frag[DT];
    TC_UNROLL
    for (int dt = 0; dt < DT; dt++) {
        wmma::fill_fragment(dk_frag[dt], 0.0f);
        wmma::fill_fragment(dv_frag[dt], 0.0f);
    }
    for (int h = kv_head * group; h < (kv_head + 1) * group; h++) {
        const float *head_lse = lse + ((size_t)b * H + h) * T, *head_delta = delta + ((size_t)b * H + h) * T;
        for (int q0 = s0; q0 < T; q0 += TC_TILE) {
            __syncthreads(); /* the block's keys are loaded, or the previous tile is consumed */
            const int queries = min(TC_TILE, T - q0);
            tc_load_tile<D>(Qs, seq + (size_t)q0 * stride + (size_t)h * D, stride, queries);
            tc_load_tile<D>(dOs, dout + ((size_t)b * T + q0) * HD + (size_t)h * D, HD, queries);
            for (int j = threadIdx.x; j < TC_TILE; j += TC_THREADS) {
                const bool ok = j < queries;
                Ls[j] = ok ? head_lse[q0 + j] * TC_LOG2E : 0.0f;
                Ds[j] = ok ? head_delta[q0 + j] : 0.0f;
            }
            __syncthreads();
            /* Query subtiles that some key of the warp sees and that hold
             * queries: on the diagonal tile, those from the warp's own on. */
            const int first = q0 == s0 ? warp : 0, end = (queries + 15) / 16;
            /* S^T = K Q^T and dP^T = V dO^T for the warp's keys */
            tc_warp_products<DT>(scratch, FLD, Kb + warp * TC_WARP_ROWS * LD, Qs, LD, first, end);
            tc_warp_products<DT>(dPs, TC_SCORE_LD, Vb + warp * TC_WARP_ROWS * LD, dOs, LD, first, end);
            __syncwarp();
            /* P^T and dS^T (without the 1/sqrt(D), which dK takes at the end). */
            for (int i = 0; i < WARP; i++) {
                const int c = tc_column(i, lane), q = q0 + c;
                float p = 0.0f, ds = 0.0f;
                if (q >= k_row && q < T && k_row < T) {
                    p = exp2f(scratch[row * FLD + c] * scale_log2 - Ls[c]);
                    ds = p * (dPs[row * TC_SCORE_LD + c] - Ds[c]);
                }
                Ps[row * TC_P_LD + c] = egrc_float_to_bf16(p);
                dSs[row * TC_P_LD + c] = egrc_float_to_bf16(ds);
            }
            __syncwarp();
            TC_UNROLL
            for (int n = 0; n < TC_SUBTILES; n++) {
                if (n < first || n >= end) continue;
                tc_a_rows p_frag, ds_frag;
                wmma::load_matrix_sync(p_frag, Ps + n * 16, TC_P_LD);
                wmma::load_matrix_sync(ds_frag, dSs + n * 16, TC_P_LD);
                TC_UNROLL
                for (int dt = 0; dt < DT; dt++) {
                    tc_b_rows do_frag, q_frag;
                    wmma::load_matrix_sync(do_frag, dOs + n * 16 * LD + dt * 16, LD);
                    wmma::mma_sync(dv_frag[dt], p_frag, do_frag, dv_frag[dt]);
                    wmma::load_matrix_sync(q_frag, Qs + n * 16 * LD + dt * 16, LD);
                    wmma::mma_sync(dk_frag[dt], ds_frag, q_frag, dk_frag[dt]);
                }
            }
        }
    }
    egrc_bf16 *key_rows = dqkv + ((size_t)b * T + warp_k) * stride;
    tc_store_rows<DT>(key_rows + (size_t)(H + kv_head) * D, stride, T - warp_k, dk_frag, scratch, scale);
    tc_store_rows<DT>(key_rows + (size_t)(H + KV + kv_head) * D, stride, T - warp_k, dv_frag, scratch, 1.0f);
#endif
}

/* Whether every device binary in this build holds the kernels' bodies: a
 * block runs whichever binary matches its device, so one architecture below
 * sm_80 in the build (say sm_75) keeps every call on the SIMT kernels. */
static int tc_kernels_compiled(void) {
#if defined(EGRC_GPU_EMU)
    return 1;
#elif defined(__CUDA_ARCH_LIST__)
    static const int archs[] = {__CUDA_ARCH_LIST__};
    for (int arch : archs)
        if (arch < 800) return 0;
    return 1;
#else
    return 0; /* an nvcc too old to say which architectures it builds */
#endif
}

int egrc_gpu_attention_tc_applies(egrc_gpu_dtype act, size_t shared_limit, int D, uintptr_t addresses) {
    if (act != EGRC_GPU_BF16 || D < 16 || D > TC_MAX_HEAD_DIM || D % 16 != 0 || addresses % 16 != 0) return 0;
    if (!tc_kernels_compiled() || tc_shared_bytes(TC_DKV, D) > shared_limit) return 0;
    const char *mode = getenv("EGRC_GPU_ATTENTION");
    return !mode || strcmp(mode, "simt") != 0;
}

template <int DT>
static cudaError_t tc_forward_launch(cudaStream_t stream, egrc_bf16 *out, float *lse, const egrc_bf16 *qkv, int B,
                                     int T, int H, int KV) {
    const size_t shared = tc_shared_bytes(TC_FORWARD, DT * 16);
    cudaError_t err = egrc_allow_dynamic_shared(tc_forward_kernel<DT>, shared);
    if (err != cudaSuccess) return err;
    const dim3 grid(ceil_div(T, TC_BLOCK_ROWS), H, B);
    tc_forward_kernel<DT><<<grid, TC_THREADS, shared, stream>>>(out, lse, qkv, T, H, KV);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_attention_tc_forward(cudaStream_t stream, void *out, float *lse, const void *qkv, int B, int T,
                                          int H, int KV, int D) {
    if (B <= 0 || T <= 0) return cudaSuccess;
    egrc_bf16 *o = (egrc_bf16 *)out;
    const egrc_bf16 *x = (const egrc_bf16 *)qkv;
    switch (D) {
    case 16: return tc_forward_launch<1>(stream, o, lse, x, B, T, H, KV);
    case 32: return tc_forward_launch<2>(stream, o, lse, x, B, T, H, KV);
    case 48: return tc_forward_launch<3>(stream, o, lse, x, B, T, H, KV);
    case 64: return tc_forward_launch<4>(stream, o, lse, x, B, T, H, KV);
    case 80: return tc_forward_launch<5>(stream, o, lse, x, B, T, H, KV);
    case 96: return tc_forward_launch<6>(stream, o, lse, x, B, T, H, KV);
    case 112: return tc_forward_launch<7>(stream, o, lse, x, B, T, H, KV);
    case 128: return tc_forward_launch<8>(stream, o, lse, x, B, T, H, KV);
    default: return cudaErrorInvalidValue;
    }
}

template <int DT>
static cudaError_t tc_backward_launch(cudaStream_t stream, float *delta, egrc_bf16 *dqkv, const egrc_bf16 *dout,
                                      const egrc_bf16 *qkv, const egrc_bf16 *out, const float *lse, int B, int T,
                                      int H, int KV) {
    const size_t shared_dq = tc_shared_bytes(TC_DQ, DT * 16), shared_dkv = tc_shared_bytes(TC_DKV, DT * 16);
    cudaError_t err = egrc_allow_dynamic_shared(tc_dq_kernel<DT>, shared_dq);
    if (err == cudaSuccess) err = egrc_allow_dynamic_shared(tc_dkv_kernel<DT>, shared_dkv);
    if (err != cudaSuccess) return err;
    const dim3 grid_q(ceil_div(T, TC_BLOCK_ROWS), H, B), grid_kv(ceil_div(T, TC_BLOCK_ROWS), KV, B);
    tc_dq_kernel<DT><<<grid_q, TC_THREADS, shared_dq, stream>>>(dqkv, delta, dout, qkv, out, lse, T, H, KV);
    tc_dkv_kernel<DT><<<grid_kv, TC_THREADS, shared_dkv, stream>>>(dqkv, dout, qkv, lse, delta, T, H, KV);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_attention_tc_backward(cudaStream_t stream, void *scratch, void *dqkv, const void *dout,
                                           const void *qkv, const void *out, const float *lse, int B, int T, int H,
                                           int KV, int D) {
    if (B <= 0 || T <= 0) return cudaSuccess;
    float *delta = (float *)scratch;
    egrc_bf16 *dx = (egrc_bf16 *)dqkv;
    const egrc_bf16 *g = (const egrc_bf16 *)dout, *x = (const egrc_bf16 *)qkv, *o = (const egrc_bf16 *)out;
    switch (D) {
    case 16: return tc_backward_launch<1>(stream, delta, dx, g, x, o, lse, B, T, H, KV);
    case 32: return tc_backward_launch<2>(stream, delta, dx, g, x, o, lse, B, T, H, KV);
    case 48: return tc_backward_launch<3>(stream, delta, dx, g, x, o, lse, B, T, H, KV);
    case 64: return tc_backward_launch<4>(stream, delta, dx, g, x, o, lse, B, T, H, KV);
    case 80: return tc_backward_launch<5>(stream, delta, dx, g, x, o, lse, B, T, H, KV);
    case 96: return tc_backward_launch<6>(stream, delta, dx, g, x, o, lse, B, T, H, KV);
    case 112: return tc_backward_launch<7>(stream, delta, dx, g, x, o, lse, B, T, H, KV);
    case 128: return tc_backward_launch<8>(stream, delta, dx, g, x, o, lse, B, T, H, KV);
    default: return cudaErrorInvalidValue;
    }
}

#else /* HIP */

int egrc_gpu_attention_tc_applies(egrc_gpu_dtype, size_t, int, uintptr_t) { return 0; }

cudaError_t egrc_gpu_attention_tc_forward(cudaStream_t, void *, float *, const void *, int, int, int, int, int) {
    return cudaErrorInvalidValue;
}

cudaError_t egrc_gpu_attention_tc_backward(cudaStream_t, void *, void *, const void *, const void *, const void *,
                                           const float *, int, int, int, int, int) {
    return cudaErrorInvalidValue;
}

#endif
