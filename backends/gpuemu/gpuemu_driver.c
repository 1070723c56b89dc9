/* The device of the gpuemu plugin: one, the CPU emulation of the CUDA
 * runtime (runtime.cpp), which is always there. */
#include "../gpu/gpu_backend.h"

int gpu_device_count(egrc_error *err) {
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess)
        return gpu_fail(err, "the CUDA emulation reports %s", cudaGetErrorString(status));
    return count;
}
