/* bf16 storage for the CPU emulation (backends/gpuemu): CUDA's
 * __nv_bfloat16 as 16 bits, and the two conversions the kernels use.
 * float -> bf16 rounds to nearest even and turns every NaN into the
 * canonical 0x7fff, as CUDA's __float2bfloat16_rn does. The arithmetic is
 * the CPU's fp32: no bf16 instructions are emulated. */
#ifndef EGRC_GPUEMU_CUDA_BF16_H
#define EGRC_GPUEMU_CUDA_BF16_H

#include <stdint.h>
#include <string.h>

struct __nv_bfloat16 {
    uint16_t bits;
};

inline float __bfloat162float(__nv_bfloat16 h) {
    const uint32_t u = (uint32_t)h.bits << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

inline __nv_bfloat16 __float2bfloat16_rn(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return __nv_bfloat16{0x7fffu};
    u += 0x7fffu + ((u >> 16) & 1u);
    return __nv_bfloat16{(uint16_t)(u >> 16)};
}

#endif
