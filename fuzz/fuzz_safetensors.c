/* libFuzzer target for the safetensors reader: any byte string must either
 * parse into tensors whose every byte is readable, or fail with a message;
 * never crash, hang or read outside the input.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Icore fuzz/fuzz_safetensors.c \
 *         core/io/safetensors.c core/io/fileio.c core/base/dtype.c core/base/error.c -lcjson -o fuzz_safetensors */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    egrc_error err;
    egrc_safetensors *st = egrc_safetensors_from_memory(data, size, "fuzz.safetensors", &err);
    if (!st) {
        /* Every rejection must explain itself. */
        if (memchr(err.msg, '\0', sizeof err.msg) == NULL || err.msg[0] == '\0') abort();
        return 0;
    }
    (void)egrc_safetensors_metadata(st, "format");
    size_t n = egrc_safetensors_count(st);
    for (size_t i = 0; i < n; i++) {
        const egrc_st_tensor *t = egrc_safetensors_at(st, i);
        if (egrc_safetensors_find(st, t->name) != t) abort();
        /* The reader promised nbytes readable bytes inside the input. */
        const uint8_t *p = t->data;
        if (t->nbytes && (p < data || p + t->nbytes > data + size)) abort();
        /* numel * size <= input size, so these buffers are bounded by the input. */
        size_t count = t->numel > 0 ? (size_t)t->numel : 1;
        float *f = malloc(count * sizeof *f);
        int64_t *v = malloc(count * sizeof *v);
        if (f && v) {
            int as_float = egrc_st_tensor_to_f32(t, f, t->numel, &err) == 0;
            int as_int = egrc_st_tensor_to_i64(t, v, t->numel, &err) == 0;
            int is_float = t->dtype == EGRC_DTYPE_F32 || t->dtype == EGRC_DTYPE_F16 ||
                           t->dtype == EGRC_DTYPE_BF16 || t->dtype == EGRC_DTYPE_F64;
            if (as_float != is_float || (as_int && is_float) || t->nbytes != (size_t)t->numel * egrc_dtype_size(t->dtype))
                abort();
        }
        free(f);
        free(v);
    }
    egrc_safetensors_close(st);
    return 0;
}
