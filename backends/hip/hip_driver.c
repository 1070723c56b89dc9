/* Whether the HIP plugin can run here: the number of devices, or what is
 * missing and what to do about it. The ROCm runtime talks to the amdgpu
 * kernel driver through /dev/kfd, so that is checked first: without it the
 * runtime could only say "no device". */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../gpu/gpu_backend.h"

#define KFD "/dev/kfd"

int gpu_device_count(egrc_error *err) {
    if (access(KFD, F_OK) != 0)
        return gpu_fail(err, "no AMD GPU driver (" KFD " not found) for the ROCm runtime (libamdhip64): install the "
                        "amdgpu kernel driver with ROCm 5.2 or newer (check with rocminfo), or use --backend cpu");
    if (access(KFD, R_OK | W_OK) != 0)
        return gpu_fail(err, "cannot open " KFD " (%s): add this user to the 'render' and 'video' groups, or use "
                        "--backend cpu", strerror(errno));
    int count = 0;
    hipError_t status = hipGetDeviceCount(&count);
    hipGetLastError(); /* the error may not linger into later calls */
    if (status == hipSuccess) return count;
    if (status == hipErrorNoDevice) return 0;
    if (status == hipErrorInsufficientDriver)
        return gpu_fail(err, "the amdgpu driver is too old for this plugin's HIP %d.%d runtime: update ROCm's kernel "
                        "driver, or use --backend cpu", HIP_VERSION_MAJOR, HIP_VERSION_MINOR);
    return gpu_fail(err, "the ROCm runtime cannot be used: %s (%s); check rocminfo, or use --backend cpu",
                    hipGetErrorString(status), hipGetErrorName(status));
}
