#include "checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "model_hf.h"

#define CHECKPOINT_FORMAT "egrc-checkpoint-1"

int egrc_checkpoint_save(const char *path, egrc_model *m, int step, const egrc_rng *rng, egrc_error *err) {
    egrc_backend *be = m->be;
    size_t bytes = m->n_params * sizeof(float);
    int with_moments = m->adam_m != NULL;
    float *host = malloc(bytes * (with_moments ? 3 : 1));
    char *config = egrc_config_to_hf_json(&m->cfg);
    if (!host || !config) {
        free(host);
        free(config);
        return egrc_fail(err, "%s: out of host memory writing the checkpoint", path);
    }
    /* A latched backend fault leaves host unwritten: refuse before anything reaches the file. */
    be->ops->download(be, host, m->params, bytes);
    if (with_moments) {
        be->ops->download(be, host + m->n_params, m->adam_m, bytes);
        be->ops->download(be, host + 2 * m->n_params, m->adam_v, bytes);
    }
    if (egrc_backend_synchronize(be, err)) {
        free(config);
        free(host);
        return egrc_error_prefix(err, "%s: not written", path);
    }
    egrc_st_entry entries[3] = {
        {"params", EGRC_DTYPE_F32, 1, {(int64_t)m->n_params}, host},
        {"adam_m", EGRC_DTYPE_F32, 1, {(int64_t)m->n_params}, host + m->n_params},
        {"adam_v", EGRC_DTYPE_F32, 1, {(int64_t)m->n_params}, host + 2 * m->n_params},
    };
    char step_text[32], rng_text[80];
    snprintf(step_text, sizeof step_text, "%d", step);
    snprintf(rng_text, sizeof rng_text, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, rng->s[0], rng->s[1],
             rng->s[2], rng->s[3]);
    const char *metadata[] = {"format", CHECKPOINT_FORMAT, "step", step_text, "rng", rng_text, "config", config, NULL};
    int rc = egrc_safetensors_write(path, entries, with_moments ? 3 : 1, metadata, err);
    free(config);
    free(host);
    return rc;
}

static int parse_rng(const char *text, egrc_rng *rng) {
    if (!text || strlen(text) != 64) return -1;
    for (int i = 0; i < 4; i++) {
        char word[17];
        memcpy(word, text + 16 * i, 16);
        word[16] = '\0';
        char *end;
        rng->s[i] = strtoull(word, &end, 16);
        if (*end) return -1;
    }
    return 0;
}

/* The parameter tensor of m that holds flat element `index`, or NULL. */
static const egrc_param_tensor *tensor_at(const egrc_model *m, size_t index) {
    for (int i = 0; i < m->n_tensors; i++) {
        const egrc_param_tensor *t = &m->tensors[i];
        if (index >= t->offset && index - t->offset < (size_t)t->rows * (size_t)t->cols) return t;
    }
    return NULL;
}

/* A NaN or infinity in the parameters or the Adam moments means the run had
 * diverged when it saved; resuming would only carry the NaN on. */
static int refuse_nonfinite(const egrc_model *m, const char *path, const char *name, const float *host, size_t bad,
                            egrc_error *err) {
    const egrc_param_tensor *t = tensor_at(m, bad);
    char where[96] = "";
    if (t)
        snprintf(where, sizeof where, " (%s, row %zu, column %zu)", t->name, (bad - t->offset) / (size_t)t->cols,
                 (bad - t->offset) % (size_t)t->cols);
    return egrc_fail(err,
                     "%s: '%s' holds a non-finite value (%g) at element %zu%s: the run had diverged when this "
                     "checkpoint was written; resume from an earlier one",
                     path, name, (double)host[bad], bad, where);
}

static int load_vector(const egrc_safetensors *st, const egrc_model *m, const char *path, const char *name,
                       float *host, egrc_error *err) {
    const egrc_st_tensor *t = egrc_safetensors_find(st, name);
    if (!t) return egrc_fail(err, "%s: checkpoint has no '%s'", path, name);
    int64_t bad;
    if (egrc_weights_to_f32(t, host, (int64_t)m->n_params, &bad, err)) return egrc_error_prefix(err, "%s", path);
    return bad == t->numel ? 0 : refuse_nonfinite(m, path, name, host, (size_t)bad, err);
}

int egrc_checkpoint_load(const char *path, egrc_model *m, int *step, egrc_rng *rng, egrc_error *err) {
    egrc_safetensors *st = egrc_safetensors_open(path, err);
    if (!st) return -1;
    egrc_backend *be = m->be;
    size_t bytes = m->n_params * sizeof(float);
    float *host = malloc(bytes);
    char *config = egrc_config_to_hf_json(&m->cfg);
    const char *format = egrc_safetensors_metadata(st, "format");
    const char *saved_config = egrc_safetensors_metadata(st, "config");
    const char *step_text = egrc_safetensors_metadata(st, "step");
    int rc = -1;
    char *end = NULL;
    long saved_step = step_text ? strtol(step_text, &end, 10) : -1;
    if (!host || !config) {
        egrc_fail(err, "out of host memory");
    } else if (!format || strcmp(format, CHECKPOINT_FORMAT) != 0) {
        egrc_fail(err, "%s: not an egrc checkpoint (metadata 'format' is not %s)", path, CHECKPOINT_FORMAT);
    } else if (!saved_config || strcmp(saved_config, config) != 0) {
        egrc_fail(err, "%s: the checkpoint was written for a different model config", path);
    } else if (!step_text || *end || saved_step < 0 || saved_step > 1000000000L) {
        egrc_fail(err, "%s: metadata 'step' is missing or not a step number", path);
    } else if (parse_rng(egrc_safetensors_metadata(st, "rng"), rng)) {
        egrc_fail(err, "%s: metadata 'rng' is missing or malformed", path);
    } else if (!load_vector(st, m, path, "params", host, err)) {
        egrc_model_set_params(m, host);
        rc = 0;
        if (egrc_safetensors_find(st, "adam_m")) {
            if (!m->adam_m) {
                m->adam_m = be->ops->alloc(be, bytes, err);
                m->adam_v = m->adam_m ? be->ops->alloc(be, bytes, err) : NULL;
            }
            rc = -1;
            if (m->adam_v && !load_vector(st, m, path, "adam_m", host, err)) {
                be->ops->upload(be, m->adam_m, host, bytes);
                be->ops->synchronize(be);
                if (!load_vector(st, m, path, "adam_v", host, err)) {
                    be->ops->upload(be, m->adam_v, host, bytes);
                    be->ops->synchronize(be);
                    rc = 0;
                }
            }
        }
        *step = (int)saved_step;
    }
    free(config);
    free(host);
    egrc_safetensors_close(st);
    return rc;
}
