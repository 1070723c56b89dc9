/* Portability between CUDA and HIP for the kernels in kernels/cuda.
 *
 * The kernels are written in CUDA's spelling. Compiled by hipcc, this header
 * maps the few runtime names they use to HIP's and provides the warp
 * primitives in a form both accept, so one kernel source serves the CUDA
 * plugin and a future HIP plugin (the way llama.cpp's HIP build reuses its
 * CUDA files). Everything that depends on the warp width uses EGRC_WARP_SIZE:
 * 32 on NVIDIA, 64 on AMD (wave64, as on CDNA/Instinct GPUs).
 *
 * Host C code may include this header too (it then sees only the runtime).
 * A kernel file that sorts defines EGRC_GPU_WANT_SORT first to get CUB (or
 * hipCUB); the others skip its long compile. */
#ifndef EGRC_GPU_H
#define EGRC_GPU_H

#if defined(__HIPCC__) || defined(EGRC_GPU_HIP)

#include <hip/hip_runtime.h>

#define cudaError_t hipError_t
#define cudaSuccess hipSuccess
#define cudaStream_t hipStream_t
#define cudaGetLastError hipGetLastError
#define cudaFuncSetAttribute hipFuncSetAttribute
#define cudaFuncAttributeMaxDynamicSharedMemorySize hipFuncAttributeMaxDynamicSharedMemorySize

#define EGRC_WARP_SIZE 64

#ifdef __HIPCC__
/* ROCm's shuffles take no mask: a wavefront always runs in lockstep. */
#define egrc_shfl(v, lane) __shfl((v), (lane))
#define egrc_shfl_xor(v, mask) __shfl_xor((v), (mask))
#ifdef EGRC_GPU_WANT_SORT /* hipCUB mirrors CUB's interface */
#include <hipcub/hipcub.hpp>
namespace cub = hipcub;
#endif
#endif

#else /* CUDA */

#ifdef __CUDACC__
#include <cuda_runtime.h>
#ifdef EGRC_GPU_WANT_SORT
#include <cub/device/device_radix_sort.cuh>
#endif
#else
#include <cuda_runtime_api.h>
#endif

#define EGRC_WARP_SIZE 32

#ifdef __CUDACC__
/* Every kernel calls these with the whole warp converged. */
#define egrc_shfl(v, lane) __shfl_sync(0xffffffffu, (v), (lane))
#define egrc_shfl_xor(v, mask) __shfl_xor_sync(0xffffffffu, (v), (mask))
#endif

#endif

#endif
