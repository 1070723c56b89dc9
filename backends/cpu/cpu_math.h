/* Branch-free elementary functions for the CPU backend's hot loops. glibc's
 * expf/tanhf are scalar calls that the compiler cannot vectorise without
 * -ffast-math; these inline versions vectorise, and their error (a few ulp)
 * is far below the 1e-5 parity tolerance against Hugging Face. */
#ifndef EGRC_CPU_MATH_H
#define EGRC_CPU_MATH_H

#include <stdint.h>
#include <string.h>

/* e^x: x = n ln2 + r with |r| <= ln2/2, e^r by its Taylor series to r^7
 * (relative error < 2e-7), 2^n by building the exponent bits. Below -87.3
 * (where e^x is subnormal) it returns 0; above 88.7 it saturates near FLT_MAX. */
static inline float cpu_expf(float x) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693145751953125f, ln2_lo = 1.42860682030941723e-6f;
    float clamped = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
    /* Adding and subtracting 1.5 * 2^23 rounds to the nearest integer in
     * plain float arithmetic, which vectorises (roundf is a libm call). */
    const float round_magic = 12582912.0f;
    float n = (clamped * log2e + round_magic) - round_magic;
    float r = clamped - n * ln2_hi - n * ln2_lo;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x < -87.3f ? 0.0f : p * scale;
}

/* tanh(x) = 1 - 2 / (e^(2x) + 1), exact at the saturated ends. */
static inline float cpu_tanhf(float x) { return 1.0f - 2.0f / (cpu_expf(2.0f * x) + 1.0f); }

static inline float cpu_sigmoidf(float x) { return 1.0f / (1.0f + cpu_expf(-x)); }

#endif
