/* Hugging Face checkpoints in and out: config.json + model.safetensors (or a
 * sharded model.safetensors.index.json), for the gpt2, llama and qwen2 model
 * types. Tensor names and layouts are translated to and from the internal
 * packed layout through one table (egrc_hf_tensor), which also serves to
 * report gradients under their Hugging Face names. */
#ifndef EGRC_MODEL_HF_H
#define EGRC_MODEL_HF_H

#include "io/safetensors.h"
#include "model.h"

/* One Hugging Face tensor and where it lives inside the parameter buffer: a
 * block of `rows` x `cols` floats at `offset` (row-major). The HF tensor has
 * shape [rows, cols], or [cols, rows] when `transposed` (GPT-2's Conv1D), or
 * [rows * cols] when `one_dim`. */
typedef struct egrc_hf_tensor {
    char name[96];
    size_t offset;
    int rows, cols;
    int transposed;
    int one_dim;
} egrc_hf_tensor;

/* The HF tensors of a model, in file order; *count set. Caller frees. */
egrc_hf_tensor *egrc_hf_tensors(const egrc_model *m, int *count);

/* Copies a block of an internal buffer (params or grads, host copy) out in the
 * HF layout of `t` (rows*cols floats). */
void egrc_hf_export(const egrc_hf_tensor *t, const float *internal, float *hf_out);

/* The HF tensor's shape as the file stores it (see egrc_hf_tensor). */
void egrc_hf_shape(const egrc_hf_tensor *t, int *ndim, int64_t shape[2]);

/* Loads a Hugging Face model folder onto a backend. A NaN or infinity in
 * any weight (in whatever dtype the file stores it) fails the load with the
 * tensor's name and the first bad element. */
egrc_model *egrc_model_load_hf(egrc_backend *be, const char *dir, egrc_error *err);

/* The index of the first NaN or infinity in v[0..n), or n when all are finite. */
size_t egrc_first_nonfinite(const float *v, size_t n);

/* Weights as they are loaded (here and in checkpoint.c): converts t to f32
 * as egrc_st_tensor_to_f32 does and sets *first_bad to the flat index of its
 * first NaN or infinity (numel when there is none; the conversion stops at
 * the first, which the caller refuses anyway). It converts in blocks
 * and scans each while it is still in cache. Measured on Qwen2-0.5B's
 * embedding shape ([151936, 896], 2-core EPYC): the scan adds 15-25% to the
 * bf16 conversion (6-9 ms on ~35 ms) and ~10% to f32's, where a second pass
 * over the converted tensor added 55-65%; a whole load of such a folder
 * (3-4 s) showed no difference beyond noise. */
int egrc_weights_to_f32(const egrc_st_tensor *t, float *out, int64_t count, int64_t *first_bad, egrc_error *err);

/* Writes a Hugging Face folder into dir (created if needed), each file
 * atomically: model.safetensors in `dtype` (NULL: the dtype the weights
 * were loaded in, F32 for a model egrc created; F32, BF16 or F16), config.json
 * (the source folder's, every key egrc does not use kept, with egrc's keys
 * written over it), and the source folder's tokenizer, chat-template and
 * generation files (model_save.c). */
int egrc_model_save_hf(egrc_model *m, const char *dir, const egrc_dtype *dtype, egrc_error *err);
/* Loads a preset name or an HF folder: what CLI --model arguments accept. */
egrc_model *egrc_model_open(egrc_backend *be, const char *name_or_dir, uint64_t seed, egrc_error *err);

#endif
