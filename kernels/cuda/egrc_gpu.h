/* Portability between CUDA and HIP for the kernels in kernels/cuda and the
 * host glue in backends/gpu.
 *
 * Both are written in CUDA's spelling. Compiled by hipcc (kernels) or with
 * EGRC_GPU_HIP defined (the C host glue of the HIP plugin), this header maps
 * the runtime names they use to HIP's, so one source serves the CUDA plugin
 * and the HIP plugin (the way llama.cpp's HIP build reuses its CUDA files).
 * A name missing here fails the HIP build, never silently: add it below.
 *
 * Warp width. The kernels reduce and shuffle over groups of EGRC_WARP_SIZE =
 * 32 lanes on every GPU: a whole warp on NVIDIA, a whole wavefront on RDNA
 * (wave32, e.g. gfx1100), half a wavefront on CDNA (wave64: gfx90a, gfx942).
 * The shuffles name that width, so a wave64 wavefront runs two independent
 * 32-lane groups and every result is the same as on a wave32 device. Why
 * not the native width: launch configurations (threads per block, shared
 * memory per block, head sizes) then depend on nothing the host cannot know.
 * hipcc's host pass defines __AMDGCN_WAVEFRONT_SIZE as 64 even when the
 * device code is compiled for wave32, and one plugin holds code for both;
 * and 64-key attention tiles would not fit the 64 KiB of shared memory that
 * an AMD block gets for 128-wide heads. The device pass checks below that
 * the width divides the wavefront it compiles for.
 *
 * Storage types. Activations are fp32 or bf16 (the plugin's act_dtype); in
 * device code `egrc_bf16` is the vendor's bf16 type (__nv_bfloat16 on CUDA,
 * hip_bfloat16 on HIP), converted with egrc_bf16_to_float and
 * egrc_float_to_bf16 (round to nearest even on both vendors).
 *
 * Host C code may include this header too (it then sees only the runtime).
 * A kernel file that sorts defines EGRC_GPU_WANT_SORT first to get
 * egrc_radix_sort_pairs (CUB, or rocPRIM, which every ROCm install has, where
 * hipCUB, its CUB-compatible wrapper, is not packaged for Debian 12); the
 * others skip its long compile. */
#ifndef EGRC_GPU_H
#define EGRC_GPU_H

#define EGRC_WARP_SIZE 32

#if defined(__HIPCC__) || defined(EGRC_GPU_HIP)

#ifdef __HIPCC__
#include <hip/hip_runtime.h>
#else
#include <hip/hip_runtime_api.h>
#endif

/* The plugin's name, in messages and its ops table. */
#define EGRC_GPU_NAME "hip"

#define cudaError_t hipError_t
#define cudaSuccess hipSuccess
#define cudaErrorInvalidValue hipErrorInvalidValue
#define cudaGetLastError hipGetLastError
#define cudaGetErrorString hipGetErrorString
#define cudaGetErrorName hipGetErrorName
#define cudaStream_t hipStream_t
#define cudaStreamCreateWithFlags hipStreamCreateWithFlags
#define cudaStreamNonBlocking hipStreamNonBlocking
#define cudaStreamSynchronize hipStreamSynchronize
#define cudaStreamDestroy hipStreamDestroy
#define cudaSetDevice hipSetDevice
#define cudaDeviceProp hipDeviceProp_t
#define cudaGetDeviceProperties hipGetDeviceProperties
#define cudaDeviceGetAttribute hipDeviceGetAttribute
#define cudaDevAttrMemoryPoolsSupported hipDeviceAttributeMemoryPoolsSupported
/* AMD has no opt-in beyond a default: a block may use all of this. */
#define cudaDevAttrMaxSharedMemoryPerBlockOptin hipDeviceAttributeMaxSharedMemoryPerBlock
#define cudaMalloc hipMalloc
#define cudaMallocAsync hipMallocAsync
#define cudaFree hipFree
#define cudaFreeAsync hipFreeAsync
#define cudaMemGetInfo hipMemGetInfo
#define cudaMemcpyAsync hipMemcpyAsync
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define cudaMemsetAsync hipMemsetAsync
/* Graphs: stream capture and replay (backends/gpu/gpu_device.c). */
#define cudaGraph_t hipGraph_t
#define cudaGraphExec_t hipGraphExec_t
#define cudaStreamBeginCapture hipStreamBeginCapture
#define cudaStreamCaptureModeThreadLocal hipStreamCaptureModeThreadLocal
#define cudaStreamEndCapture hipStreamEndCapture
#define cudaGraphInstantiateWithFlags hipGraphInstantiateWithFlags
#define cudaGraphLaunch hipGraphLaunch
#define cudaGraphExecDestroy hipGraphExecDestroy
#define cudaGraphDestroy hipGraphDestroy

#ifdef __HIPCC__
#if defined(__HIP_DEVICE_COMPILE__) && __AMDGCN_WAVEFRONT_SIZE % EGRC_WARP_SIZE != 0
#error "EGRC_WARP_SIZE must divide the wavefront size"
#endif
/* ROCm's shuffles take no mask (a wavefront runs in lockstep) but a width:
 * lanes exchange values within their own 32-lane group. */
#define egrc_shfl(v, lane) __shfl((v), (lane), EGRC_WARP_SIZE)
#define egrc_shfl_xor(v, mask) __shfl_xor((v), (mask), EGRC_WARP_SIZE)

/* An AMD block may use all of the device's shared memory (LDS) without
 * asking; the launch fails if it asks for more. */
template <typename Kernel>
static inline hipError_t egrc_allow_dynamic_shared(Kernel, size_t) {
    return hipSuccess;
}

#ifdef EGRC_GPU_WANT_SORT
#include <rocprim/device/device_radix_sort.hpp>
#define egrc_radix_sort_pairs rocprim::radix_sort_pairs
#endif

/* bf16 storage. ROCm 5.2 (Debian 12) has hip_bfloat16 only: __hip_bfloat16
 * (amd_hip_bf16.h) came in later releases, which still ship hip_bfloat16.
 * Its float constructor rounds to nearest even (NaN stays NaN), as CUDA's
 * __float2bfloat16 does, so both plugins store the same bits. */
#include <hip/hip_bfloat16.h>
typedef hip_bfloat16 egrc_bf16;
__device__ __forceinline__ float egrc_bf16_to_float(egrc_bf16 x) { return (float)x; }
__device__ __forceinline__ egrc_bf16 egrc_float_to_bf16(float x) { return hip_bfloat16(x); }
#endif

#else /* CUDA, or its CPU emulation */

/* EGRC_GPU_EMU: the gpuemu plugin (backends/gpuemu), which runs these
 * kernels and the CUDA host glue on the CPU for tests. Its kernels are
 * compiled by the host C++ compiler against the emulator's cuda_runtime.h,
 * cuda_bf16.h and CUB header, and take the device path below as nvcc's do. */
#if defined(__CUDACC__) || (defined(EGRC_GPU_EMU) && defined(__cplusplus))
#define EGRC_GPU_DEVICE_CODE
#endif

#ifdef EGRC_GPU_DEVICE_CODE
#include <cuda_runtime.h>
#else
#include <cuda_runtime_api.h>
#endif

#ifdef EGRC_GPU_EMU
#define EGRC_GPU_NAME "gpuemu"
#else
#define EGRC_GPU_NAME "cuda"
#endif

#ifdef EGRC_GPU_DEVICE_CODE
/* Every kernel calls these with the whole warp converged. */
#define egrc_shfl(v, lane) __shfl_sync(0xffffffffu, (v), (lane))
#define egrc_shfl_xor(v, mask) __shfl_xor_sync(0xffffffffu, (v), (mask))

/* Beyond 48 KiB of dynamic shared memory a kernel must opt in; the device's
 * limit is checked by the launch itself. */
template <typename Kernel>
static inline cudaError_t egrc_allow_dynamic_shared(Kernel kernel, size_t bytes) {
    if (bytes <= 48 * 1024) return cudaSuccess;
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
}

#ifdef EGRC_GPU_WANT_SORT
#include <cub/device/device_radix_sort.cuh>
/* Same arguments as rocprim::radix_sort_pairs: temp, temp bytes, keys in/out,
 * values in/out, count, begin bit, end bit, stream. */
#define egrc_radix_sort_pairs cub::DeviceRadixSort::SortPairs
#endif

/* bf16 storage: round to nearest even (NaN stays NaN). */
#include <cuda_bf16.h>
typedef __nv_bfloat16 egrc_bf16;
__device__ __forceinline__ float egrc_bf16_to_float(egrc_bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ egrc_bf16 egrc_float_to_bf16(float x) { return __float2bfloat16_rn(x); }
#endif

#endif

/* Tensor cores: EGRC_GPU_TENSOR_CORES marks the compilations that hold the
 * bodies of the WMMA attention kernels (attention_tc.cu): nvcc's device
 * passes for sm_80 and newer (bf16 WMMA) and the CPU emulation (gpuemu,
 * whose include/mma.h emulates WMMA). Never HIP: Debian packages no rocWMMA.
 * Host code asks egrc_gpu_attention_tc_applies, not this macro. */
#if !defined(__HIPCC__) && !defined(EGRC_GPU_HIP) && \
    ((defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800) || (defined(EGRC_GPU_EMU) && defined(__cplusplus)))
#define EGRC_GPU_TENSOR_CORES
#endif

#endif
