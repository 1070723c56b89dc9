/* Model construction: the parameter layout, allocation of parameters,
 * gradients and activations, and random initialisation. The passes
 * themselves are in model_pass.c. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "base/rng.h"

/* Appends a tensor to the layout and returns its offset. */
static size_t add_tensor(egrc_model *m, const char *name, int rows, int cols) {
    egrc_param_tensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    t->offset = m->n_params;
    m->n_params += (size_t)rows * cols;
    return t->offset;
}

static size_t add_layer_tensor(egrc_model *m, int layer, const char *what, int rows, int cols) {
    char name[48];
    snprintf(name, sizeof name, "layers.%d.%s", layer, what);
    return add_tensor(m, name, rows, cols);
}

/* Lays out every parameter: matrices first (weight decay), then vectors. */
static void build_layout(egrc_model *m) {
    const egrc_model_config *c = &m->cfg;
    const int C = c->d_model, QKV = egrc_config_qkv_width(c), HD = c->n_head * c->head_dim;
    const int F = c->d_ff, FC = egrc_config_fc_width(c);
    const int layernorm = !egrc_config_uses_rmsnorm(c);

    m->wte = add_tensor(m, "wte", c->vocab_size, C);
    m->wpe = egrc_config_uses_rope(c) ? EGRC_ABSENT : add_tensor(m, "wpe", c->max_seq, C);
    m->lm_head = c->tied_embeddings ? m->wte : add_tensor(m, "lm_head", c->vocab_size, C);
    for (int l = 0; l < c->n_layer; l++) {
        egrc_layer_offsets *o = &m->layers[l];
        o->qkv_w = add_layer_tensor(m, l, "qkv_w", QKV, C);
        o->out_w = add_layer_tensor(m, l, "out_w", C, HD);
        o->fc_w = add_layer_tensor(m, l, "fc_w", FC, C);
        o->proj_w = add_layer_tensor(m, l, "proj_w", C, F);
    }
    m->n_decay_params = m->n_params;
    for (int l = 0; l < c->n_layer; l++) {
        egrc_layer_offsets *o = &m->layers[l];
        o->ln1_w = add_layer_tensor(m, l, "ln1_w", 1, C);
        o->ln1_b = layernorm ? add_layer_tensor(m, l, "ln1_b", 1, C) : EGRC_ABSENT;
        o->qkv_b = c->qkv_bias ? add_layer_tensor(m, l, "qkv_b", 1, QKV) : EGRC_ABSENT;
        o->out_b = c->attn_out_bias ? add_layer_tensor(m, l, "out_b", 1, C) : EGRC_ABSENT;
        o->ln2_w = add_layer_tensor(m, l, "ln2_w", 1, C);
        o->ln2_b = layernorm ? add_layer_tensor(m, l, "ln2_b", 1, C) : EGRC_ABSENT;
        o->fc_b = c->mlp_bias ? add_layer_tensor(m, l, "fc_b", 1, FC) : EGRC_ABSENT;
        o->proj_b = c->mlp_bias ? add_layer_tensor(m, l, "proj_b", 1, C) : EGRC_ABSENT;
    }
    m->lnf_w = add_tensor(m, "lnf_w", 1, C);
    m->lnf_b = layernorm ? add_tensor(m, "lnf_b", 1, C) : EGRC_ABSENT;
}

/* Whether the backend runs this model's shapes: a limit it knows (a head
 * size its kernels cannot take) stops the model here, not mid-run. */
static int check_backend_supports(egrc_backend *be, const egrc_model_config *cfg, egrc_error *err) {
    const egrc_model_shape shape = {cfg->d_model, cfg->n_head, cfg->n_kv_head, cfg->head_dim, cfg->d_ff,
                                    cfg->vocab_size};
    if (be->ops->supports(be, &shape, err) == 0) return 0;
    return egrc_error_prefix(err, "model config: backend '%s' cannot run it", be->ops->name);
}

egrc_model *egrc_model_create(egrc_backend *be, const egrc_model_config *cfg, egrc_error *err) {
    if (egrc_config_validate(cfg, "model config", err) || check_backend_supports(be, cfg, err)) return NULL;
    egrc_model *m = calloc(1, sizeof *m);
    int max_tensors = 4 + 12 * cfg->n_layer;
    if (!m) goto oom;
    m->cfg = *cfg;
    m->be = be;
    m->tensors = calloc((size_t)max_tensors, sizeof *m->tensors);
    m->layers = calloc((size_t)cfg->n_layer, sizeof *m->layers);
    if (!m->tensors || !m->layers) goto oom;
    build_layout(m);

    size_t bytes = m->n_params * sizeof(float);
    m->params = be->ops->alloc(be, bytes, err);
    if (!m->params) goto fail;
    if (be->act_dtype == EGRC_DTYPE_F32) {
        m->params_compute = m->params;
    } else {
        m->params_compute = be->ops->alloc(be, m->n_params * egrc_dtype_size(be->act_dtype), err);
        if (!m->params_compute) goto fail;
    }
    m->grads = be->ops->alloc(be, bytes, err);
    m->scalar = be->ops->alloc(be, sizeof(float), err);
    if (!m->grads || !m->scalar) goto fail;
    be->ops->zero(be, m->params, bytes);
    if (m->params_compute != m->params)
        be->ops->zero(be, m->params_compute, m->n_params * egrc_dtype_size(be->act_dtype));
    be->ops->zero(be, m->grads, bytes);
    return m;
oom:
    egrc_fail(err, "out of host memory creating the model");
fail:
    egrc_model_free(m);
    return NULL;
}

static void free_activations(egrc_model *m) {
    egrc_backend *be = m->be;
    if (m->act_memory) be->ops->free(be, m->act_memory);
    m->act_memory = NULL;
    free(m->acts);
    m->acts = NULL;
    free(m->host_losses);
    m->host_losses = NULL;
    m->act_B = m->act_T = 0;
}

void egrc_model_free(egrc_model *m) {
    if (!m) return;
    egrc_backend *be = m->be;
    egrc_generate_release(m);
    free_activations(m);
    if (m->params_compute && m->params_compute != m->params) be->ops->free(be, m->params_compute);
    if (m->params) be->ops->free(be, m->params);
    if (m->grads) be->ops->free(be, m->grads);
    if (m->adam_m) be->ops->free(be, m->adam_m);
    if (m->adam_v) be->ops->free(be, m->adam_v);
    if (m->scalar) be->ops->free(be, m->scalar);
    free(m->tensors);
    free(m->layers);
    free(m->source_dir);
    free(m);
}

/* Carves activation buffers out of one allocation. Two passes over the same
 * code: the first (base == NULL) only measures. */
typedef struct carver {
    char *base;
    size_t used;
} carver;

static void *carve(carver *cv, size_t bytes) {
    size_t start = (cv->used + 255) / 256 * 256; /* 256-byte alignment suits every vendor's kernels */
    cv->used = start + bytes;
    return cv->base ? cv->base + start : NULL;
}

static void carve_all(egrc_model *m, carver *cv, int B, int T) {
    const egrc_model_config *c = &m->cfg;
    const size_t N = (size_t)B * T, a = egrc_dtype_size(m->be->act_dtype), f = sizeof(float);
    const size_t C = (size_t)c->d_model, QKV = (size_t)egrc_config_qkv_width(c);
    const size_t HD = (size_t)c->n_head * c->head_dim, F = (size_t)c->d_ff, FC = (size_t)egrc_config_fc_width(c);
    size_t scratch = m->be->ops->attention_scratch_bytes(m->be, B, T, c->n_head);
    for (int l = 0; l < c->n_layer; l++) {
        egrc_layer_acts *x = &m->acts[l];
        x->x_in = carve(cv, N * C * a);
        x->ln1 = carve(cv, N * C * a);
        x->ln1_mean = carve(cv, N * f);
        x->ln1_rstd = carve(cv, N * f);
        x->qkv = carve(cv, N * QKV * a);
        x->att = carve(cv, N * HD * a);
        x->att_scratch = carve(cv, scratch);
        x->x_mid = carve(cv, N * C * a);
        x->ln2 = carve(cv, N * C * a);
        x->ln2_mean = carve(cv, N * f);
        x->ln2_rstd = carve(cv, N * f);
        x->fc = carve(cv, N * FC * a);
        x->act = carve(cv, N * F * a);
    }
    m->x_final = carve(cv, N * C * a);
    m->lnf = carve(cv, N * C * a);
    m->lnf_mean = carve(cv, N * f);
    m->lnf_rstd = carve(cv, N * f);
    /* The logits in act_dtype; where that is narrower than fp32, followed by
     * room to convert them to fp32 a chunk at a time for download (model_pass.c,
     * download_logits_f32): the logits' bytes in fp32 plus one float. */
    const size_t logits = N * (size_t)c->vocab_size;
    m->logits = carve(cv, logits * a + (a < f ? logits * (f - a) + f : 0));
    m->losses = carve(cv, N * f);
    m->lse = carve(cv, N * f);
    m->entropy = carve(cv, N * f);
    m->dloss = carve(cv, N * f);
    m->dentropy = carve(cv, N * f);
    m->tokens = carve(cv, N * sizeof(int32_t));
    m->targets = carve(cv, N * sizeof(int32_t));
    m->positions = carve(cv, N * sizeof(int32_t));
    m->dres = carve(cv, N * C * a);
    m->dln = carve(cv, N * C * a);
    m->dqkv = carve(cv, N * QKV * a);
    m->datt = carve(cv, N * HD * a);
    m->dfc = carve(cv, N * FC * a);
    m->dact = carve(cv, N * F * a);
}

int egrc_model_ensure_activations(egrc_model *m, int B, int T, egrc_error *err) {
    if (B <= 0 || T <= 0) return egrc_fail(err, "batch %d x %d: both must be positive", B, T);
    if (T > m->cfg.max_seq && !egrc_config_uses_rope(&m->cfg))
        return egrc_fail(err, "sequence length %d exceeds the model's %d learned positions", T, m->cfg.max_seq);
    if (m->act_memory && m->act_B == B && m->act_T == T) return 0;
    free_activations(m);
    m->acts = calloc((size_t)m->cfg.n_layer, sizeof *m->acts);
    m->host_losses = malloc((size_t)B * T * sizeof(float));
    if (!m->acts || !m->host_losses) return egrc_fail(err, "out of host memory for a %d x %d batch", B, T);
    carver measure = {NULL, 0};
    carve_all(m, &measure, B, T);
    m->act_memory = m->be->ops->alloc(m->be, measure.used, err);
    if (!m->act_memory) {
        free_activations(m);
        return egrc_error_prefix(err, "activations for a %d x %d batch", B, T);
    }
    carver real = {m->act_memory, 0};
    carve_all(m, &real, B, T);
    m->act_B = B;
    m->act_T = T;
    return 0;
}

/* The wait keeps host_params in use until the upload has read it. A fault
 * is not reported here (the function returns nothing): it stays latched,
 * and the model's next checked wait (a forward's loss, a rollout, a
 * training step) returns it. */
void egrc_model_set_params(egrc_model *m, const float *host_params) {
    egrc_backend *be = m->be;
    be->ops->upload(be, m->params, host_params, m->n_params * sizeof(float));
    if (m->params_compute != m->params) be->ops->to_act(be, m->params_compute, m->params, m->n_params);
    be->ops->synchronize(be);
}

void egrc_model_init_random(egrc_model *m, uint64_t seed) {
    const egrc_model_config *c = &m->cfg;
    float *host = malloc(m->n_params * sizeof(float));
    if (!host) return;
    egrc_rng rng;
    egrc_rng_seed(&rng, seed);
    const float std = 0.02f, residual_std = 0.02f / sqrtf(2.0f * (float)c->n_layer);
    for (int i = 0; i < m->n_tensors; i++) {
        const egrc_param_tensor *t = &m->tensors[i];
        float *p = host + t->offset;
        size_t n = (size_t)t->rows * t->cols;
        int is_norm = strstr(t->name, "ln") && strstr(t->name, "_w");
        int is_bias = t->rows == 1 && !is_norm;
        float scale = strstr(t->name, "out_w") || strstr(t->name, "proj_w") ? residual_std : std;
        if (is_norm || is_bias) {
            for (size_t j = 0; j < n; j++) p[j] = is_norm ? 1.0f : 0.0f;
            continue;
        }
        for (size_t j = 0; j + 1 < n; j += 2) {
            float z[2];
            egrc_rng_normal_pair(&rng, z);
            p[j] = scale * z[0];
            p[j + 1] = scale * z[1];
        }
        if (n % 2) p[n - 1] = scale * egrc_rng_normal(&rng);
    }
    egrc_model_set_params(m, host);
    free(host);
}
