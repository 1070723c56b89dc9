#include "model_hf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/fileio.h"
#include "io/safetensors.h"

typedef struct table {
    egrc_hf_tensor *items;
    int count;
} table;

static void add(table *t, const char *name, size_t offset, int rows, int cols, int transposed, int one_dim) {
    egrc_hf_tensor *e = &t->items[t->count++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->offset = offset;
    e->rows = rows;
    e->cols = cols;
    e->transposed = transposed;
    e->one_dim = one_dim;
}

static void add_gpt2(const egrc_model *m, table *t) {
    const egrc_model_config *c = &m->cfg;
    const int C = c->d_model, F = c->d_ff;
    char n[96];
    add(t, "transformer.wte.weight", m->wte, c->vocab_size, C, 0, 0);
    add(t, "transformer.wpe.weight", m->wpe, c->max_seq, C, 0, 0);
    for (int l = 0; l < c->n_layer; l++) {
        const egrc_layer_offsets *o = &m->layers[l];
#define GPT2(suffix, off, rows, cols, tr, one)                        \
    snprintf(n, sizeof n, "transformer.h.%d.%s", l, suffix);         \
    add(t, n, off, rows, cols, tr, one)
        GPT2("ln_1.weight", o->ln1_w, 1, C, 0, 1);
        GPT2("ln_1.bias", o->ln1_b, 1, C, 0, 1);
        GPT2("attn.c_attn.weight", o->qkv_w, 3 * C, C, 1, 0);
        GPT2("attn.c_attn.bias", o->qkv_b, 1, 3 * C, 0, 1);
        GPT2("attn.c_proj.weight", o->out_w, C, C, 1, 0);
        GPT2("attn.c_proj.bias", o->out_b, 1, C, 0, 1);
        GPT2("ln_2.weight", o->ln2_w, 1, C, 0, 1);
        GPT2("ln_2.bias", o->ln2_b, 1, C, 0, 1);
        GPT2("mlp.c_fc.weight", o->fc_w, F, C, 1, 0);
        GPT2("mlp.c_fc.bias", o->fc_b, 1, F, 0, 1);
        GPT2("mlp.c_proj.weight", o->proj_w, C, F, 1, 0);
        GPT2("mlp.c_proj.bias", o->proj_b, 1, C, 0, 1);
#undef GPT2
    }
    add(t, "transformer.ln_f.weight", m->lnf_w, 1, C, 0, 1);
    add(t, "transformer.ln_f.bias", m->lnf_b, 1, C, 0, 1);
}

static void add_llama_family(const egrc_model *m, table *t) {
    const egrc_model_config *c = &m->cfg;
    const int C = c->d_model, D = c->head_dim, HD = c->n_head * D, KD = c->n_kv_head * D, F = c->d_ff;
    char n[96];
    add(t, "model.embed_tokens.weight", m->wte, c->vocab_size, C, 0, 0);
    for (int l = 0; l < c->n_layer; l++) {
        const egrc_layer_offsets *o = &m->layers[l];
#define LAYER(suffix, off, rows, cols, one)                        \
    snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix);       \
    add(t, n, off, rows, cols, 0, one)
        LAYER("input_layernorm.weight", o->ln1_w, 1, C, 1);
        /* q|k|v are packed row blocks of qkv_w (and of qkv_b) */
        LAYER("self_attn.q_proj.weight", o->qkv_w, HD, C, 0);
        LAYER("self_attn.k_proj.weight", o->qkv_w + (size_t)HD * C, KD, C, 0);
        LAYER("self_attn.v_proj.weight", o->qkv_w + (size_t)(HD + KD) * C, KD, C, 0);
        if (c->qkv_bias) {
            LAYER("self_attn.q_proj.bias", o->qkv_b, 1, HD, 1);
            LAYER("self_attn.k_proj.bias", o->qkv_b + HD, 1, KD, 1);
            LAYER("self_attn.v_proj.bias", o->qkv_b + HD + KD, 1, KD, 1);
        }
        LAYER("self_attn.o_proj.weight", o->out_w, C, HD, 0);
        if (c->attn_out_bias) { LAYER("self_attn.o_proj.bias", o->out_b, 1, C, 1); }
        LAYER("post_attention_layernorm.weight", o->ln2_w, 1, C, 1);
        /* gate|up are packed row blocks of fc_w */
        LAYER("mlp.gate_proj.weight", o->fc_w, F, C, 0);
        LAYER("mlp.up_proj.weight", o->fc_w + (size_t)F * C, F, C, 0);
        LAYER("mlp.down_proj.weight", o->proj_w, C, F, 0);
        if (c->mlp_bias) {
            LAYER("mlp.gate_proj.bias", o->fc_b, 1, F, 1);
            LAYER("mlp.up_proj.bias", o->fc_b + F, 1, F, 1);
            LAYER("mlp.down_proj.bias", o->proj_b, 1, C, 1);
        }
#undef LAYER
    }
    add(t, "model.norm.weight", m->lnf_w, 1, C, 0, 1);
    if (!c->tied_embeddings) add(t, "lm_head.weight", m->lm_head, c->vocab_size, C, 0, 0);
}

egrc_hf_tensor *egrc_hf_tensors(const egrc_model *m, int *count) {
    table t = {calloc((size_t)(8 + 16 * m->cfg.n_layer), sizeof(egrc_hf_tensor)), 0};
    if (!t.items) return NULL;
    if (m->cfg.arch == EGRC_ARCH_GPT2) add_gpt2(m, &t);
    else add_llama_family(m, &t);
    *count = t.count;
    return t.items;
}

void egrc_hf_export(const egrc_hf_tensor *t, const float *internal, float *hf_out) {
    const float *block = internal + t->offset;
    if (!t->transposed) {
        memcpy(hf_out, block, (size_t)t->rows * t->cols * sizeof(float));
        return;
    }
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->cols; c++) hf_out[(size_t)c * t->rows + r] = block[(size_t)r * t->cols + c];
}

static void hf_import(const egrc_hf_tensor *t, const float *hf, float *internal) {
    float *block = internal + t->offset;
    if (!t->transposed) {
        memcpy(block, hf, (size_t)t->rows * t->cols * sizeof(float));
        return;
    }
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->cols; c++) block[(size_t)r * t->cols + c] = hf[(size_t)c * t->rows + r];
}

void egrc_hf_shape(const egrc_hf_tensor *t, int *ndim, int64_t shape[2]) {
    if (t->one_dim) {
        *ndim = 1;
        shape[0] = (int64_t)t->rows * t->cols;
    } else {
        *ndim = 2;
        shape[0] = t->transposed ? t->cols : t->rows;
        shape[1] = t->transposed ? t->rows : t->cols;
    }
}

static void format_shape(char *out, size_t size, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(out, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < size) snprintf(out + used, size - used, "]");
}

/* Tensors HF files may carry that are buffers, not parameters. */
static int ignorable(const char *name) {
    size_t len = strlen(name);
    static const char *const suffixes[] = {".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t sl = strlen(suffixes[i]);
        if (len >= sl && strcmp(name + len - sl, suffixes[i]) == 0) return 1;
    }
    return 0;
}

/* Exponent all ones: NaN or an infinity. On the bits, so that no compiler
 * flag that assumes finite math can drop the test. */
static int is_nonfinite(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return (bits & 0x7f800000u) == 0x7f800000u;
}

/* Branch-free over a block, which the compiler vectorises; only a block
 * that has a bad value is searched element by element. */
#define FINITE_SCAN_BLOCK 4096

static int block_has_nonfinite(const float *v, size_t n) {
    int any = 0;
    for (size_t i = 0; i < n; i++) any |= is_nonfinite(v[i]);
    return any;
}

size_t egrc_first_nonfinite(const float *v, size_t n) {
    for (size_t start = 0; start < n; start += FINITE_SCAN_BLOCK) {
        size_t len = n - start < FINITE_SCAN_BLOCK ? n - start : FINITE_SCAN_BLOCK;
        if (!block_has_nonfinite(v + start, len)) continue;
        for (size_t i = start;; i++)
            if (is_nonfinite(v[i])) return i;
    }
    return n;
}

/* Elements converted, then scanned, at a time: 256 KB of f32, within L2. */
#define CONVERT_BLOCK ((int64_t)1 << 16)

int egrc_weights_to_f32(const egrc_st_tensor *t, float *out, int64_t count, int64_t *first_bad, egrc_error *err) {
    *first_bad = t->numel;
    /* Its messages: a count mismatch names both counts, a wrong dtype the dtype, even when empty. */
    if (count != t->numel || t->numel == 0) return egrc_st_tensor_to_f32(t, out, count, err);
    const size_t element = egrc_dtype_size(t->dtype);
    for (int64_t at = 0; at < t->numel; at += CONVERT_BLOCK) {
        egrc_st_tensor block = *t;
        block.numel = t->numel - at < CONVERT_BLOCK ? t->numel - at : CONVERT_BLOCK;
        block.data = (const char *)t->data + (size_t)at * element;
        block.nbytes = (size_t)block.numel * element;
        if (egrc_st_tensor_to_f32(&block, out + at, block.numel, err)) return -1;
        size_t bad = egrc_first_nonfinite(out + at, (size_t)block.numel);
        if (bad < (size_t)block.numel) {
            *first_bad = at + (int64_t)bad;
            return 0;
        }
    }
    return 0;
}

/* "[3, 17]": the multi-dimensional index of flat element `index` of a
 * row-major tensor, as a user would look it up (t[3, 17] in PyTorch). */
static void format_index(char *out, size_t size, int ndim, const int64_t *shape, int64_t index) {
    int64_t coords[EGRC_ST_MAX_DIMS];
    for (int d = ndim - 1; d >= 0; d--) {
        coords[d] = shape[d] > 0 ? index % shape[d] : 0;
        index = shape[d] > 0 ? index / shape[d] : 0;
    }
    format_shape(out, size, ndim, coords);
}

/* Converts tensor s into `values`, refusing a NaN or an infinity: such
 * weights make every logit NaN, which would surface steps later as a NaN
 * loss or as garbage samples, far from the cause. */
static int load_finite(const egrc_st_tensor *s, float *values, const char *dir, egrc_error *err) {
    int64_t bad;
    if (egrc_weights_to_f32(s, values, s->numel, &bad, err)) return egrc_error_prefix(err, "%s", dir);
    if (bad == s->numel) return 0;
    char where[128];
    format_index(where, sizeof where, s->ndim, s->shape, bad);
    return egrc_fail(err,
                     "%s: tensor '%s' (%s) holds a non-finite value (%g) at element %lld %s: the weights are "
                     "corrupt or come from a diverged run; egrc does not load them",
                     dir, s->name, egrc_dtype_name(s->dtype), (double)values[bad], (long long)bad, where);
}

/* GPT-2 checkpoints from the original release have no "transformer." prefix. */
static const egrc_st_tensor *find_tensor(const egrc_safetensors *st, const char *name) {
    const egrc_st_tensor *t = egrc_safetensors_find(st, name);
    if (!t && strncmp(name, "transformer.", 12) == 0) t = egrc_safetensors_find(st, name + 12);
    return t;
}

static int import_all(egrc_model *m, const egrc_safetensors *st, const char *dir, float *host, egrc_error *err) {
    int count;
    egrc_hf_tensor *tensors = egrc_hf_tensors(m, &count);
    if (!tensors) return egrc_fail(err, "out of host memory");
    float *staging = NULL;
    int rc = -1;
    for (int i = 0; i < count; i++) {
        const egrc_hf_tensor *t = &tensors[i];
        const egrc_st_tensor *s = find_tensor(st, t->name);
        if (!s) {
            egrc_fail(err, "%s: tensor '%s' is missing from the checkpoint", dir, t->name);
            goto done;
        }
        int ndim;
        int64_t shape[2];
        egrc_hf_shape(t, &ndim, shape);
        if (s->ndim != ndim || s->shape[0] != shape[0] || (ndim == 2 && s->shape[1] != shape[1])) {
            char got[64], want[64];
            format_shape(got, sizeof got, s->ndim, s->shape);
            format_shape(want, sizeof want, ndim, shape);
            egrc_fail(err, "%s: tensor '%s' has shape %s, config.json implies %s", dir, t->name, got, want);
            goto done;
        }
        float *block = realloc(staging, (size_t)s->numel * sizeof(float));
        if (!block) {
            egrc_fail(err, "out of host memory");
            goto done;
        }
        staging = block;
        if (load_finite(s, staging, dir, err)) goto done;
        hf_import(t, staging, host);
    }
    /* Anything else in the file is either a known buffer or a sign that the
     * config does not describe these weights. */
    for (size_t i = 0; i < egrc_safetensors_count(st); i++) {
        const char *name = egrc_safetensors_at(st, i)->name;
        int known = ignorable(name) || (m->cfg.tied_embeddings && strcmp(name, "lm_head.weight") == 0);
        for (int j = 0; j < count && !known; j++)
            known = strcmp(tensors[j].name, name) == 0 ||
                    (strncmp(tensors[j].name, "transformer.", 12) == 0 && strcmp(tensors[j].name + 12, name) == 0);
        if (!known) {
            egrc_fail(err, "%s: unexpected tensor '%s' (config.json does not describe it: wrong model_type or layer count?)",
                      dir, name);
            goto done;
        }
    }
    rc = 0;
done:
    free(staging);
    free(tensors);
    return rc;
}

egrc_model *egrc_model_load_hf(egrc_backend *be, const char *dir, egrc_error *err) {
    char path[4096];
    egrc_model_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (egrc_config_load_hf(path, &cfg, err)) return NULL;
    egrc_safetensors *st = egrc_safetensors_open_dir(dir, err);
    if (!st) return NULL;
    egrc_model *m = egrc_model_create(be, &cfg, err);
    float *host = m ? calloc(m->n_params, sizeof(float)) : NULL;
    if (m && !host) egrc_fail(err, "out of host memory for %zu parameters", m->n_params);
    if (!host || import_all(m, st, dir, host, err)) {
        free(host);
        egrc_model_free(m);
        egrc_safetensors_close(st);
        return NULL;
    }
    egrc_model_set_params(m, host);
    free(host);
    /* the embedding's dtype stands for the folder's: checkpoints store all weights alike */
    const egrc_st_tensor *embedding = egrc_safetensors_count(st) ? egrc_safetensors_at(st, 0) : NULL;
    for (size_t i = 0; i < egrc_safetensors_count(st); i++)
        if (strstr(egrc_safetensors_at(st, i)->name, "embed") || strstr(egrc_safetensors_at(st, i)->name, "wte"))
            embedding = egrc_safetensors_at(st, i);
    if (embedding && (embedding->dtype == EGRC_DTYPE_BF16 || embedding->dtype == EGRC_DTYPE_F16))
        m->source_dtype = embedding->dtype;
    egrc_safetensors_close(st);
    m->source_dir = realpath(dir, NULL); /* NULL (a save without the source's files) only if dir vanished */
    return m;
}

egrc_model *egrc_model_open(egrc_backend *be, const char *name_or_dir, uint64_t seed, egrc_error *err) {
    struct stat info;
    if (stat(name_or_dir, &info) == 0 && S_ISDIR(info.st_mode)) return egrc_model_load_hf(be, name_or_dir, err);
    egrc_model_config cfg;
    if (egrc_config_preset(name_or_dir, &cfg, err)) return NULL;
    egrc_model *m = egrc_model_create(be, &cfg, err);
    if (m) egrc_model_init_random(m, seed);
    return m;
}
