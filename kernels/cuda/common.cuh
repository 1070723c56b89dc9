/* Helpers shared by the kernels: element loads and stores that convert
 * between the activation storage types (fp32, bf16) and fp32, warp and
 * block reductions, and launch-size arithmetic. Every kernel computes in
 * fp32 (or double where the CPU reference does) whatever the storage type. */
#ifndef EGRC_GPU_COMMON_CUH
#define EGRC_GPU_COMMON_CUH

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "egrc_gpu.h"
#include "egrc_kernels.h"

#define WARP EGRC_WARP_SIZE

/* Loads and stores of the activation storage types (kernels take the type as
 * a template parameter T): fp32 math on either side. A bf16 store rounds to
 * nearest even. */
__device__ __forceinline__ float act_load(const float *p) { return *p; }
__device__ __forceinline__ float act_load(const egrc_bf16 *p) { return egrc_bf16_to_float(*p); }
__device__ __forceinline__ void act_store(float *p, float v) { *p = v; }
__device__ __forceinline__ void act_store(egrc_bf16 *p, float v) { *p = egrc_float_to_bf16(v); }

/* Calls launch<T>(args...) with T the storage type `act` names: how each
 * extern "C" launcher picks its kernels' instantiation. */
#define ACT_DISPATCH(act, launch, ...) \
    ((act) == EGRC_GPU_BF16 ? launch<egrc_bf16>(__VA_ARGS__) : launch<float>(__VA_ARGS__))

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int offset = WARP / 2; offset > 0; offset /= 2) v += egrc_shfl_xor(v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = WARP / 2; offset > 0; offset /= 2) v = fmaxf(v, egrc_shfl_xor(v, offset));
    return v;
}

/* Sum over the block, returned to every thread. `shared` holds one T per
 * warp; the reduction tree is fixed by the block size, so the result is
 * deterministic. Every thread of the block must call it. */
template <typename T>
__device__ T block_sum(T v, T *shared) {
    const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = (blockDim.x + WARP - 1) / WARP;
    v = warp_sum(v);
    __syncthreads(); /* the previous use of `shared` is over */
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : (T)0;
    return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float *shared) {
    const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = (blockDim.x + WARP - 1) / WARP;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : -INFINITY;
    return warp_max(v);
}

/* Blocks for a grid-stride loop over n items: enough to fill any current GPU,
 * few enough that each thread does several items on big inputs. */
static inline unsigned grid_for(size_t n, unsigned block) {
    size_t blocks = (n + block - 1) / block;
    if (blocks > 65536) blocks = 65536;
    return blocks ? (unsigned)blocks : 1u;
}

static inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

#endif
