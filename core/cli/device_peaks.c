/* Datasheet peaks, dense (no 2:4 sparsity), at boost clocks. The first
 * entry whose key occurs in the device name wins, so the more specific
 * keys ("H100 PCIe") come before the general ones ("H100"). AMD's MI250X
 * and MI250 show up as one device per die (GCD): their rows are per die. */
#include "device_peaks.h"

#include <string.h>

typedef struct device_peak {
    const char *key;
    double bf16_tflops, fp32_tflops;
} device_peak;

static const device_peak peaks[] = {
    {"H100 PCIe", 756.5, 51.2},
    {"H100 NVL", 835.5, 60.0},
    {"H100", 989.4, 66.9}, /* SXM5 */
    {"H200", 989.4, 66.9},
    {"GH200", 989.4, 66.9},
    {"A100", 312.0, 19.5},
    {"L40S", 362.1, 91.6},
    {"RTX 4090", 165.2, 82.6},
    {"MI300X", 1307.4, 81.7},
    {"MI250X", 191.5, 23.9},
    {"MI250", 181.0, 22.6},
    {"MI210", 181.0, 22.6},
    {"Radeon RX 7900 XTX", 122.8, 61.4},
};

double egrc_device_peak_tflops(const char *device_name, egrc_dtype dtype, const char **entry) {
    *entry = NULL;
    if (dtype != EGRC_DTYPE_BF16 && dtype != EGRC_DTYPE_F32) return 0.0;
    for (size_t i = 0; i < sizeof peaks / sizeof *peaks; i++) {
        if (!strstr(device_name, peaks[i].key)) continue;
        *entry = peaks[i].key;
        return dtype == EGRC_DTYPE_BF16 ? peaks[i].bf16_tflops : peaks[i].fp32_tflops;
    }
    return 0.0;
}
