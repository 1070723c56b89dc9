/* Hugging Face safetensors: reading (mmap, validated) and writing (atomic).
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "string value", ...}}
 * then the data region; offsets are relative to the start of the data region.
 *
 * The reader trusts nothing in the file: header length, JSON, dtypes, shapes and
 * offsets are all checked against each other and against the file size before a
 * single tensor is handed out, and every failure names the file and tensor. */
#ifndef EGRC_SAFETENSORS_H
#define EGRC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/error.h"

#define EGRC_ST_MAX_DIMS 8

typedef struct egrc_st_tensor {
    const char *name;
    egrc_dtype dtype;
    int ndim;
    int64_t shape[EGRC_ST_MAX_DIMS];
    int64_t numel;
    const void *data; /* points into the read-only mapping */
    size_t nbytes;
} egrc_st_tensor;

typedef struct egrc_safetensors egrc_safetensors;

/* Opens one .safetensors file. */
egrc_safetensors *egrc_safetensors_open(const char *path, egrc_error *err);
/* Opens a model folder: model.safetensors, or the shards named by
 * model.safetensors.index.json ("weight_map": {tensor: shard file}). The
 * result presents all shards' tensors as one set. */
egrc_safetensors *egrc_safetensors_open_dir(const char *dir, egrc_error *err);
/* Parses an in-memory image (used by the fuzzer and tests); `bytes` must stay
 * alive while the result is used. `source_name` appears in error messages. */
egrc_safetensors *egrc_safetensors_from_memory(const void *bytes, size_t len, const char *source_name,
                                               egrc_error *err);
void egrc_safetensors_close(egrc_safetensors *st);

size_t egrc_safetensors_count(const egrc_safetensors *st);
const egrc_st_tensor *egrc_safetensors_at(const egrc_safetensors *st, size_t index);
const egrc_st_tensor *egrc_safetensors_find(const egrc_safetensors *st, const char *name);
/* Value of a "__metadata__" string entry, or NULL. */
const char *egrc_safetensors_metadata(const egrc_safetensors *st, const char *key);

/* Converts a floating tensor (F32/F16/BF16/F64) to float32. `count` is the
 * number of elements the caller expects; a mismatch is an error naming both. */
int egrc_st_tensor_to_f32(const egrc_st_tensor *t, float *out, int64_t count, egrc_error *err);
/* Converts an integer tensor (I64/I32/I16/I8/U8) to int64. */
int egrc_st_tensor_to_i64(const egrc_st_tensor *t, int64_t *out, int64_t count, egrc_error *err);

typedef struct egrc_st_entry {
    const char *name;
    egrc_dtype dtype;
    int ndim;
    int64_t shape[EGRC_ST_MAX_DIMS];
    const void *data; /* numel * egrc_dtype_size(dtype) bytes */
} egrc_st_entry;

/* Writes a .safetensors file atomically (temp file in the same folder, fsync,
 * rename, fsync of the folder): a crash leaves either the old file or the new
 * one, never a torn one. `metadata` is NULL or a NULL-terminated list of
 * key, value, key, value, ... strings stored under "__metadata__". */
int egrc_safetensors_write(const char *path, const egrc_st_entry *entries, size_t count,
                           const char *const *metadata, egrc_error *err);

#endif
