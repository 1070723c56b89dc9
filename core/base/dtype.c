#include "dtype.h"

#include <stdint.h>
#include <string.h>

static const struct {
    egrc_dtype dtype;
    const char *name;
    size_t size;
} dtype_table[] = {
    {EGRC_DTYPE_F32, "F32", 4}, {EGRC_DTYPE_F16, "F16", 2}, {EGRC_DTYPE_BF16, "BF16", 2},
    {EGRC_DTYPE_F64, "F64", 8}, {EGRC_DTYPE_I64, "I64", 8}, {EGRC_DTYPE_I32, "I32", 4},
    {EGRC_DTYPE_I16, "I16", 2}, {EGRC_DTYPE_I8, "I8", 1},   {EGRC_DTYPE_U8, "U8", 1},
    {EGRC_DTYPE_BOOL, "BOOL", 1},
};
#define DTYPE_COUNT (sizeof dtype_table / sizeof dtype_table[0])

size_t egrc_dtype_size(egrc_dtype dtype) {
    for (size_t i = 0; i < DTYPE_COUNT; i++)
        if (dtype_table[i].dtype == dtype) return dtype_table[i].size;
    return 0;
}

const char *egrc_dtype_name(egrc_dtype dtype) {
    for (size_t i = 0; i < DTYPE_COUNT; i++)
        if (dtype_table[i].dtype == dtype) return dtype_table[i].name;
    return "?";
}

int egrc_dtype_from_name(const char *name, egrc_dtype *out) {
    for (size_t i = 0; i < DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = dtype_table[i].dtype;
            return 0;
        }
    }
    return -1;
}

static uint32_t float_bits(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

static uint16_t f32_to_bf16(float x) {
    uint32_t bits = float_bits(x);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u); /* quiet NaN */
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

static uint16_t f32_to_f16(float x) {
    uint32_t bits = float_bits(x);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u) return sign | 0x7e00u;  /* NaN */
    if (magnitude >= 0x477ff000u) return sign | 0x7c00u; /* rounds past 65504: infinity */
    if (magnitude < 0x38800000u) {                       /* below 2^-14: an f16 subnormal or zero */
        if (magnitude < 0x33000000u) return sign;        /* under half the smallest subnormal */
        uint32_t mantissa = (magnitude & 0x007fffffu) | 0x00800000u;
        int shift = 126 - (int)(magnitude >> 23); /* 14..24: the f16 subnormal step is 2^-24 */
        uint32_t half = 1u << (shift - 1), rest = mantissa & ((1u << shift) - 1u);
        uint32_t value = mantissa >> shift;
        if (rest > half || (rest == half && (value & 1u))) value++;
        return sign | (uint16_t)value;
    }
    uint32_t rebased = magnitude - 0x38000000u; /* exponent bias 127 -> 15 */
    rebased += 0x0fffu + ((rebased >> 13) & 1u);
    return sign | (uint16_t)(rebased >> 13);
}

int egrc_f32_to_dtype(egrc_dtype dtype, const float *src, void *dst, size_t n) {
    uint16_t *half = dst;
    switch (dtype) {
    case EGRC_DTYPE_F32: memcpy(dst, src, n * sizeof(float)); return 0;
    case EGRC_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) half[i] = f32_to_bf16(src[i]);
        return 0;
    case EGRC_DTYPE_F16:
        for (size_t i = 0; i < n; i++) half[i] = f32_to_f16(src[i]);
        return 0;
    default: return -1;
    }
}
