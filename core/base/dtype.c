#include "dtype.h"

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
