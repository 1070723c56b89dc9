/* Whether the CUDA plugin can run here: the number of devices, or what is
 * missing (the driver, a new enough driver) and what to do about it. */
#include "../gpu/gpu_backend.h"

int gpu_device_count(egrc_error *err) {
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status == cudaSuccess) return count;
    int driver = 0;
    cudaDriverGetVersion(&driver); /* 0 when libcuda cannot be loaded */
    cudaGetLastError();            /* neither error may linger into later calls */
    if (status == cudaErrorNoDevice) return 0;
    if (driver == 0)
        return gpu_fail(err, "no CUDA driver (libcuda.so.1) found: install the NVIDIA driver, or use --backend cpu");
    if (status == cudaErrorInsufficientDriver)
        return gpu_fail(err,
                        "the NVIDIA driver supports CUDA %d.%d, this plugin was built with CUDA %d.%d: update the "
                        "driver, or use --backend cpu",
                        driver / 1000, driver % 1000 / 10, CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
    return gpu_fail(err, "the CUDA driver cannot be used: %s (%s); check nvidia-smi, or use --backend cpu",
                    cudaGetErrorString(status), cudaGetErrorName(status));
}
