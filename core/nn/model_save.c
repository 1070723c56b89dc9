/* A model saved as a Hugging Face folder without loss: the weights in the
 * dtype they came in (a bf16 checkpoint stays bf16 on disk), the source's
 * config.json with every key egrc does not use kept (and its eos list), and
 * the files a folder needs besides its weights (tokenizer, chat template,
 * generation defaults), so that a saved folder is one transformers, egrc
 * parity and recipes/bench.lua load as they loaded the original. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/fileio.h"
#include "io/model_config.h"
#include "model_hf.h"

/* The files of a folder that are not its weights or its config: what
 * transformers' save_pretrained writes for the tokenizer and generation.
 * Shard indexes are not among them: the save writes one model.safetensors. */
static const char *const side_files[] = {
    "tokenizer.json",     "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
    "vocab.json",         "merges.txt",            "tokenizer.model",         "added_tokens.json",
    "chat_template.jinja", "chat_template.json",   NULL,
};

#define MAX_SIDE_FILE (1u << 30) /* larger than any tokenizer file released */

static const char *torch_dtype_name(egrc_dtype dtype) {
    return dtype == EGRC_DTYPE_BF16 ? "bfloat16" : dtype == EGRC_DTYPE_F16 ? "float16" : "float32";
}

static int is_id_list_holding(const cJSON *list, int id) {
    if (!cJSON_IsArray(list)) return 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, list) if (cJSON_IsNumber(item) && item->valuedouble == id) return 1;
    return 0;
}

/* Writes egrc's key over the source's; a list of token ids that holds
 * egrc's single id stays (egrc stops on its first id; Instruct models list
 * every end-of-turn token). */
static void merge_key(cJSON *source, const cJSON *ours) {
    /* the source names its architecture (a mistral folder stays mistral, which egrc runs as llama) */
    if ((strcmp(ours->string, "model_type") == 0 || strcmp(ours->string, "architectures") == 0) &&
        cJSON_GetObjectItemCaseSensitive(source, ours->string))
        return;
    /* transformers 5 names these differently; a second name would be read as a conflict or warned about */
    if ((strcmp(ours->string, "rope_theta") == 0 && cJSON_GetObjectItemCaseSensitive(source, "rope_parameters")) ||
        (strcmp(ours->string, "torch_dtype") == 0 && cJSON_GetObjectItemCaseSensitive(source, "dtype")))
        return;
    const cJSON *kept = cJSON_GetObjectItemCaseSensitive(source, ours->string);
    int is_token_id = strcmp(ours->string, "eos_token_id") == 0 || strcmp(ours->string, "bos_token_id") == 0;
    if (is_token_id && cJSON_IsNumber(ours) && is_id_list_holding(kept, (int)ours->valuedouble)) return;
    cJSON *copy = cJSON_Duplicate(ours, 1);
    if (kept) cJSON_ReplaceItemInObjectCaseSensitive(source, ours->string, copy);
    else cJSON_AddItemToObject(source, ours->string, copy);
}

/* config.json text (malloc'd): the source folder's with egrc's keys written
 * over it, or egrc's own for a model egrc created. A source config that can
 * no longer be read (moved since the load) falls back to egrc's own, which
 * describes the weights completely: a finished training run is not lost
 * for the sake of keys egrc does not use. */
static char *saved_config(const egrc_model *m, egrc_dtype dtype) {
    char *ours_text = egrc_config_to_hf_json(&m->cfg);
    cJSON *ours = ours_text ? cJSON_Parse(ours_text) : NULL;
    free(ours_text);
    cJSON *config = NULL;
    if (ours && m->source_dir) {
        char path[4200];
        snprintf(path, sizeof path, "%s/config.json", m->source_dir);
        size_t len;
        char *text = egrc_read_file(path, MAX_SIDE_FILE, &len, NULL);
        config = text ? cJSON_ParseWithLength(text, len) : NULL;
        free(text);
        if (config && !cJSON_IsObject(config)) {
            cJSON_Delete(config);
            config = NULL;
        }
    }
    if (config) {
        const cJSON *key;
        cJSON_ArrayForEach(key, ours) merge_key(config, key);
        cJSON_Delete(ours);
    } else {
        config = ours;
    }
    if (!config) return NULL;
    const char *dtype_key = cJSON_GetObjectItemCaseSensitive(config, "dtype") ? "dtype" : "torch_dtype";
    cJSON_DeleteItemFromObjectCaseSensitive(config, dtype_key);
    cJSON_AddStringToObject(config, dtype_key, torch_dtype_name(dtype));
    char *text = cJSON_Print(config);
    cJSON_Delete(config);
    return text;
}

static int write_config(const egrc_model *m, const char *dir, egrc_dtype dtype, egrc_error *err) {
    char *config = saved_config(m, dtype);
    if (!config) return egrc_fail(err, "%s/config.json: out of host memory", dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = egrc_write_file_atomic(path, config, strlen(config), err);
    free(config);
    return rc;
}

/* The source's side files, copied (skipped when dir is the source itself);
 * returns whether generation_config.json was among them through *has_generation. */
static int copy_side_files(const egrc_model *m, const char *dir, int *has_generation, egrc_error *err) {
    *has_generation = 0;
    if (!m->source_dir) return 0;
    char *target = realpath(dir, NULL);
    int same = target && strcmp(target, m->source_dir) == 0;
    free(target);
    for (int i = 0; side_files[i]; i++) {
        char from[4200], to[4200];
        snprintf(from, sizeof from, "%s/%s", m->source_dir, side_files[i]);
        struct stat info;
        if (stat(from, &info) != 0 || !S_ISREG(info.st_mode)) continue;
        if (strcmp(side_files[i], "generation_config.json") == 0) *has_generation = 1;
        if (same) continue;
        snprintf(to, sizeof to, "%s/%s", dir, side_files[i]);
        size_t len;
        char *bytes = egrc_read_file(from, MAX_SIDE_FILE, &len, err);
        int rc = bytes ? egrc_write_file_atomic(to, bytes, len, err) : -1;
        free(bytes);
        if (rc) return egrc_error_prefix(err, "copying the source folder's %s", side_files[i]);
    }
    return 0;
}

/* generation_config.json for a folder whose source had none: the special
 * token ids, as transformers derives it from a config. */
static int write_generation_config(const egrc_model *m, const char *dir, egrc_error *err) {
    if (m->cfg.bos_token_id < 0 && m->cfg.eos_token_id < 0) return 0;
    cJSON *g = cJSON_CreateObject();
    cJSON_AddBoolToObject(g, "_from_model_config", 1);
    if (m->cfg.bos_token_id >= 0) cJSON_AddNumberToObject(g, "bos_token_id", m->cfg.bos_token_id);
    if (m->cfg.eos_token_id >= 0) cJSON_AddNumberToObject(g, "eos_token_id", m->cfg.eos_token_id);
    char *text = cJSON_Print(g);
    cJSON_Delete(g);
    if (!text) return egrc_fail(err, "%s/generation_config.json: out of host memory", dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    int rc = egrc_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

/* model.safetensors: every HF tensor in the HF layout, in `dtype`. */
static int write_weights(egrc_model *m, const char *dir, egrc_dtype dtype, egrc_error *err) {
    int count = 0;
    egrc_hf_tensor *tensors = egrc_hf_tensors(m, &count);
    const size_t element = egrc_dtype_size(dtype);
    float *host = malloc(m->n_params * sizeof(float));
    float *hf = malloc(m->n_params * sizeof(float));
    unsigned char *stored = dtype == EGRC_DTYPE_F32 ? (unsigned char *)hf : malloc(m->n_params * element);
    egrc_st_entry *entries = calloc((size_t)count, sizeof *entries);
    int rc = -1;
    if (!tensors || !host || !hf || !stored || !entries) {
        egrc_fail(err, "out of host memory saving the model");
        goto done;
    }
    /* a latched backend fault leaves host unwritten: nothing reaches the file */
    if (egrc_backend_download(m->be, host, m->params, m->n_params * sizeof(float), err)) {
        egrc_error_prefix(err, "%s: not written", dir);
        goto done;
    }
    size_t used = 0;
    for (int i = 0; i < count; i++) {
        size_t numel = (size_t)tensors[i].rows * tensors[i].cols;
        egrc_hf_export(&tensors[i], host, hf + used);
        egrc_f32_to_dtype(dtype, hf + used, stored + used * element, numel);
        entries[i].name = tensors[i].name;
        entries[i].dtype = dtype;
        egrc_hf_shape(&tensors[i], &entries[i].ndim, entries[i].shape);
        entries[i].data = stored + used * element;
        used += numel;
    }
    static const char *const metadata[] = {"format", "pt", NULL};
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rc = egrc_safetensors_write(path, entries, (size_t)count, metadata, err);
done:
    free(entries);
    if (stored != (unsigned char *)hf) free(stored);
    free(hf);
    free(host);
    free(tensors);
    return rc;
}

int egrc_model_save_hf(egrc_model *m, const char *dir, const egrc_dtype *dtype, egrc_error *err) {
    egrc_dtype stored = dtype ? *dtype : m->source_dtype;
    if (stored != EGRC_DTYPE_F32 && stored != EGRC_DTYPE_BF16 && stored != EGRC_DTYPE_F16)
        return egrc_fail(err, "%s: cannot save weights as %s (supported: F32, BF16, F16)", dir, egrc_dtype_name(stored));
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return egrc_fail(err, "%s: cannot create folder: %s", dir, strerror(errno));
    int has_generation;
    if (write_weights(m, dir, stored, err) || copy_side_files(m, dir, &has_generation, err)) return -1;
    if (!has_generation && write_generation_config(m, dir, err)) return -1;
    return write_config(m, dir, stored, err); /* last: a folder with a config.json is complete */
}
