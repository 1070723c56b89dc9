/* Element types, named as the safetensors format names them. The leaf type
 * every layer shares: the formats read them, the backends compute in them. */
#ifndef EGRC_DTYPE_H
#define EGRC_DTYPE_H

#include <stddef.h>

typedef enum egrc_dtype {
    EGRC_DTYPE_F32,
    EGRC_DTYPE_F16,
    EGRC_DTYPE_BF16,
    EGRC_DTYPE_F64,
    EGRC_DTYPE_I64,
    EGRC_DTYPE_I32,
    EGRC_DTYPE_I16,
    EGRC_DTYPE_I8,
    EGRC_DTYPE_U8,
    EGRC_DTYPE_BOOL,
} egrc_dtype;

size_t egrc_dtype_size(egrc_dtype dtype);      /* bytes per element; 0 for an unknown value */
const char *egrc_dtype_name(egrc_dtype dtype); /* "F32", "BF16", ... as in the format */
/* The dtype named `name` ("F32", ...); returns 0, or -1 when no dtype has that name. */
int egrc_dtype_from_name(const char *name, egrc_dtype *out);

/* Rounds n floats to bf16 or f16 (to nearest, ties to even, as PyTorch's
 * .to() does; NaN stays NaN, f16 overflows to infinity), or copies them
 * for F32. dst holds n * egrc_dtype_size(dtype) bytes; other dtypes are not
 * floating-point storage and return -1. */
int egrc_f32_to_dtype(egrc_dtype dtype, const float *src, void *dst, size_t n);

#endif
