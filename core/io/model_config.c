#include "model_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

const char *egrc_arch_name(egrc_arch arch) {
    switch (arch) {
    case EGRC_ARCH_GPT2: return "gpt2";
    case EGRC_ARCH_LLAMA: return "llama";
    case EGRC_ARCH_QWEN2: return "qwen2";
    }
    return "?";
}

/* Reads an integer key; `required` decides whether absence is an error.
 * JSON null counts as absent (HF writes "n_inner": null). */
static int get_int(const cJSON *root, const char *key, int required, int fallback, int *out, const char *source,
                   egrc_error *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item || cJSON_IsNull(item)) {
        if (required) return egrc_fail(err, "%s: missing required key '%s'", source, key);
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble) || fabs(item->valuedouble) > 1e9)
        return egrc_fail(err, "%s: key '%s' must be an integer", source, key);
    *out = (int)item->valuedouble;
    return 0;
}

static int get_float(const cJSON *root, const char *key, double fallback, double *out, const char *source,
                     egrc_error *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item || cJSON_IsNull(item)) {
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsNumber(item)) return egrc_fail(err, "%s: key '%s' must be a number", source, key);
    *out = item->valuedouble;
    return 0;
}

static int get_bool(const cJSON *root, const char *key, int fallback, int *out, const char *source, egrc_error *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item || cJSON_IsNull(item)) {
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsBool(item)) return egrc_fail(err, "%s: key '%s' must be true or false", source, key);
    *out = cJSON_IsTrue(item);
    return 0;
}

/* The first token id of a key that may be an int or a list of ints. */
static int get_token_id(const cJSON *root, const char *key, int *out, const char *source, egrc_error *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = -1;
    if (!item || cJSON_IsNull(item)) return 0;
    if (cJSON_IsArray(item)) item = cJSON_GetArrayItem(item, 0);
    if (!item) return 0;
    if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > 1e9)
        return egrc_fail(err, "%s: key '%s' must be a token id", source, key);
    *out = (int)item->valuedouble;
    return 0;
}

static int expect_string(const cJSON *root, const char *key, const char *const *allowed, const char *fallback,
                         const char *source, egrc_error *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    const char *value = fallback;
    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsString(item)) return egrc_fail(err, "%s: key '%s' must be a string", source, key);
        value = item->valuestring;
    }
    for (const char *const *a = allowed; *a; a++)
        if (strcmp(value, *a) == 0) return 0;
    return egrc_fail(err, "%s: %s '%s' is not supported (egrc supports '%s')", source, key, value, allowed[0]);
}

static int parse_gpt2(const cJSON *root, const char *source, egrc_model_config *c, egrc_error *err) {
    static const char *const gelu_names[] = {"gelu_new", "gelu_pytorch_tanh", NULL};
    double eps = 0.0;
    int inner = -1;
    if (get_int(root, "vocab_size", 1, 0, &c->vocab_size, source, err) ||
        get_int(root, "n_layer", 1, 0, &c->n_layer, source, err) ||
        get_int(root, "n_head", 1, 0, &c->n_head, source, err) ||
        get_int(root, "n_embd", 1, 0, &c->d_model, source, err) ||
        get_int(root, "n_positions", 1, 0, &c->max_seq, source, err) ||
        get_int(root, "n_inner", 0, -1, &inner, source, err) ||
        get_float(root, "layer_norm_epsilon", 1e-5, &eps, source, err) ||
        get_bool(root, "tie_word_embeddings", 1, &c->tied_embeddings, source, err) ||
        expect_string(root, "activation_function", gelu_names, "gelu_new", source, err))
        return -1;
    int scale_by_layer = 0, reorder = 0;
    if (get_bool(root, "scale_attn_by_inverse_layer_idx", 0, &scale_by_layer, source, err) ||
        get_bool(root, "reorder_and_upcast_attn", 0, &reorder, source, err))
        return -1;
    if (scale_by_layer) return egrc_fail(err, "%s: scale_attn_by_inverse_layer_idx=true is not supported", source);
    if (!c->tied_embeddings) return egrc_fail(err, "%s: gpt2 with tie_word_embeddings=false is not supported", source);
    c->n_kv_head = c->n_head;
    c->head_dim = c->n_head > 0 ? c->d_model / c->n_head : 0;
    c->d_ff = inner > 0 ? inner : 4 * c->d_model;
    c->norm_eps = (float)eps;
    c->rope_theta = 0.0f;
    c->qkv_bias = c->attn_out_bias = c->mlp_bias = 1;
    return 0;
}

/* rope_theta sits at the top level in older configs and under
 * "rope_parameters" in newer ones; scaled RoPE variants are refused. */
static int parse_rope(const cJSON *root, const char *source, egrc_model_config *c, egrc_error *err) {
    static const char *const default_rope[] = {"default", NULL};
    double theta = 10000.0;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    if (params && !cJSON_IsNull(params)) {
        if (!cJSON_IsObject(params)) return egrc_fail(err, "%s: key 'rope_parameters' must be an object", source);
        if (get_float(params, "rope_theta", theta, &theta, source, err) ||
            expect_string(params, "rope_type", default_rope, "default", source, err))
            return egrc_error_prefix(err, "in rope_parameters");
    }
    if (get_float(root, "rope_theta", theta, &theta, source, err)) return -1;
    const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (scaling && !cJSON_IsNull(scaling)) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(scaling, "rope_type");
        if (!type) type = cJSON_GetObjectItemCaseSensitive(scaling, "type");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "default") != 0)
            return egrc_fail(err,
                             "%s: rope_scaling.rope_type '%s' is not supported (egrc supports only 'default'; "
                             "remove rope_scaling or set it to null)",
                             source, cJSON_IsString(type) ? type->valuestring : "?");
    }
    if (!(theta > 0.0)) return egrc_fail(err, "%s: rope_theta must be positive", source);
    c->rope_theta = (float)theta;
    return 0;
}

static int parse_llama_family(const cJSON *root, const char *source, egrc_model_config *c, egrc_error *err) {
    static const char *const silu_names[] = {"silu", "swish", NULL};
    double eps = 0.0;
    int head_dim = -1;
    if (get_int(root, "vocab_size", 1, 0, &c->vocab_size, source, err) ||
        get_int(root, "num_hidden_layers", 1, 0, &c->n_layer, source, err) ||
        get_int(root, "num_attention_heads", 1, 0, &c->n_head, source, err) ||
        get_int(root, "num_key_value_heads", 0, c->n_head, &c->n_kv_head, source, err) ||
        get_int(root, "hidden_size", 1, 0, &c->d_model, source, err) ||
        get_int(root, "intermediate_size", 1, 0, &c->d_ff, source, err) ||
        get_int(root, "max_position_embeddings", 0, 4096, &c->max_seq, source, err) ||
        get_int(root, "head_dim", 0, -1, &head_dim, source, err) ||
        get_float(root, "rms_norm_eps", 1e-6, &eps, source, err) ||
        get_bool(root, "tie_word_embeddings", 0, &c->tied_embeddings, source, err) ||
        expect_string(root, "hidden_act", silu_names, "silu", source, err) || parse_rope(root, source, c, err))
        return -1;
    c->head_dim = head_dim > 0 ? head_dim : (c->n_head > 0 ? c->d_model / c->n_head : 0);
    c->norm_eps = (float)eps;
    if (c->arch == EGRC_ARCH_QWEN2) {
        int sliding = 0;
        if (get_bool(root, "use_sliding_window", 0, &sliding, source, err)) return -1;
        if (sliding) return egrc_fail(err, "%s: use_sliding_window=true is not supported", source);
        c->qkv_bias = 1;
        c->attn_out_bias = 0;
        c->mlp_bias = 0;
    } else {
        /* Mistral is llama with an optional sliding window; a window that
         * covers every position is plain causal attention. */
        int window = 0;
        if (get_int(root, "sliding_window", 0, 0, &window, source, err)) return -1;
        if (window > 0 && window < c->max_seq)
            return egrc_fail(err,
                             "%s: sliding_window %d is shorter than max_position_embeddings %d; egrc has no windowed "
                             "attention yet (set sliding_window to null)",
                             source, window, c->max_seq);
        int attention_bias = 0;
        if (get_bool(root, "attention_bias", 0, &attention_bias, source, err) ||
            get_bool(root, "mlp_bias", 0, &c->mlp_bias, source, err))
            return -1;
        c->qkv_bias = c->attn_out_bias = attention_bias;
    }
    return 0;
}

int egrc_config_validate(const egrc_model_config *c, const char *source, egrc_error *err) {
    if (c->vocab_size <= 0 || c->vocab_size > (1 << 24))
        return egrc_fail(err, "%s: vocab_size %d is out of range (1..16777216)", source, c->vocab_size);
    if (c->n_layer <= 0 || c->n_layer > 1024) return egrc_fail(err, "%s: layer count %d is out of range", source, c->n_layer);
    if (c->d_model <= 0 || c->d_model > 65536) return egrc_fail(err, "%s: hidden size %d is out of range", source, c->d_model);
    if (c->n_head <= 0 || c->n_kv_head <= 0 || c->n_head % c->n_kv_head != 0)
        return egrc_fail(err, "%s: %d attention heads cannot be grouped over %d key/value heads", source, c->n_head,
                         c->n_kv_head);
    if (c->head_dim <= 0 || c->head_dim > 1024 || (c->arch == EGRC_ARCH_GPT2 && c->head_dim * c->n_head != c->d_model))
        return egrc_fail(err, "%s: hidden size %d does not split into %d heads", source, c->d_model, c->n_head);
    if (egrc_config_uses_rope(c) && c->head_dim % 2 != 0)
        return egrc_fail(err, "%s: RoPE needs an even head size, got %d", source, c->head_dim);
    if (c->d_ff <= 0 || c->d_ff > (1 << 20)) return egrc_fail(err, "%s: MLP width %d is out of range", source, c->d_ff);
    if (c->max_seq <= 0 || c->max_seq > (1 << 24))
        return egrc_fail(err, "%s: max positions %d is out of range", source, c->max_seq);
    if (!(c->norm_eps > 0.0f)) return egrc_fail(err, "%s: the norm epsilon must be positive", source);
    return 0;
}

int egrc_config_parse_hf(const char *json, size_t len, const char *source, egrc_model_config *cfg, egrc_error *err) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return egrc_fail(err, "%s: not a JSON object", source);
    }
    memset(cfg, 0, sizeof *cfg);
    int rc = -1;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!cJSON_IsString(type)) {
        egrc_fail(err, "%s: missing 'model_type' (expected \"gpt2\", \"llama\", \"mistral\" or \"qwen2\")", source);
        goto done;
    }
    if (strcmp(type->valuestring, "gpt2") == 0) {
        cfg->arch = EGRC_ARCH_GPT2;
        if (parse_gpt2(root, source, cfg, err)) goto done;
    } else if (strcmp(type->valuestring, "llama") == 0 || strcmp(type->valuestring, "mistral") == 0 ||
               strcmp(type->valuestring, "qwen2") == 0) {
        /* mistral is loaded as llama (same tensors, same math without a window) */
        cfg->arch = strcmp(type->valuestring, "qwen2") == 0 ? EGRC_ARCH_QWEN2 : EGRC_ARCH_LLAMA;
        if (parse_llama_family(root, source, cfg, err)) goto done;
    } else {
        egrc_fail(err, "%s: model_type '%s' is not supported (egrc trains gpt2, llama, mistral and qwen2 models)", source,
                  type->valuestring);
        goto done;
    }
    if (get_token_id(root, "bos_token_id", &cfg->bos_token_id, source, err) ||
        get_token_id(root, "eos_token_id", &cfg->eos_token_id, source, err))
        goto done;
    rc = egrc_config_validate(cfg, source, err);
done:
    cJSON_Delete(root);
    return rc;
}

int egrc_config_load_hf(const char *path, egrc_model_config *cfg, egrc_error *err) {
    size_t len;
    char *text = egrc_read_file(path, 16u << 20, &len, err);
    if (!text) return -1;
    int rc = egrc_config_parse_hf(text, len, path, cfg, err);
    free(text);
    return rc;
}

static void add_token_id(cJSON *root, const char *key, int id) {
    if (id >= 0) cJSON_AddNumberToObject(root, key, id);
    else cJSON_AddNullToObject(root, key);
}

char *egrc_config_to_hf_json(const egrc_model_config *c) {
    cJSON *root = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(root, "architectures");
    const char *class_name = c->arch == EGRC_ARCH_GPT2    ? "GPT2LMHeadModel"
                             : c->arch == EGRC_ARCH_LLAMA ? "LlamaForCausalLM"
                                                          : "Qwen2ForCausalLM";
    cJSON_AddItemToArray(archs, cJSON_CreateString(class_name));
    cJSON_AddStringToObject(root, "model_type", egrc_arch_name(c->arch));
    cJSON_AddNumberToObject(root, "vocab_size", c->vocab_size);
    cJSON_AddBoolToObject(root, "tie_word_embeddings", c->tied_embeddings);
    add_token_id(root, "bos_token_id", c->bos_token_id);
    add_token_id(root, "eos_token_id", c->eos_token_id);
    cJSON_AddStringToObject(root, "torch_dtype", "float32");
    if (c->arch == EGRC_ARCH_GPT2) {
        cJSON_AddNumberToObject(root, "n_layer", c->n_layer);
        cJSON_AddNumberToObject(root, "n_head", c->n_head);
        cJSON_AddNumberToObject(root, "n_embd", c->d_model);
        cJSON_AddNumberToObject(root, "n_positions", c->max_seq);
        cJSON_AddNumberToObject(root, "n_inner", c->d_ff);
        cJSON_AddNumberToObject(root, "layer_norm_epsilon", c->norm_eps);
        cJSON_AddStringToObject(root, "activation_function", "gelu_new");
    } else {
        cJSON_AddNumberToObject(root, "num_hidden_layers", c->n_layer);
        cJSON_AddNumberToObject(root, "num_attention_heads", c->n_head);
        cJSON_AddNumberToObject(root, "num_key_value_heads", c->n_kv_head);
        cJSON_AddNumberToObject(root, "hidden_size", c->d_model);
        cJSON_AddNumberToObject(root, "head_dim", c->head_dim);
        cJSON_AddNumberToObject(root, "intermediate_size", c->d_ff);
        cJSON_AddNumberToObject(root, "max_position_embeddings", c->max_seq);
        cJSON_AddNumberToObject(root, "rms_norm_eps", c->norm_eps);
        cJSON_AddNumberToObject(root, "rope_theta", c->rope_theta);
        cJSON_AddStringToObject(root, "hidden_act", "silu");
        if (c->arch == EGRC_ARCH_LLAMA) {
            cJSON_AddBoolToObject(root, "attention_bias", c->qkv_bias);
            cJSON_AddBoolToObject(root, "mlp_bias", c->mlp_bias);
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

typedef struct preset {
    const char *name;
    egrc_model_config config;
} preset;

static const preset presets[] = {
    {"gpt2-124M", {EGRC_ARCH_GPT2, 50257, 12, 12, 12, 768, 64, 3072, 1024, 1e-5f, 0.0f, 1, 1, 1, 1, 50256, 50256}},
    {"gpt2-tiny", {EGRC_ARCH_GPT2, 512, 2, 4, 4, 64, 16, 256, 64, 1e-5f, 0.0f, 1, 1, 1, 1, -1, -1}},
    {"llama-tiny", {EGRC_ARCH_LLAMA, 512, 2, 4, 2, 64, 16, 160, 128, 1e-5f, 500000.0f, 0, 0, 0, 1, -1, -1}},
    {"qwen2-tiny", {EGRC_ARCH_QWEN2, 512, 2, 4, 2, 64, 16, 176, 128, 1e-6f, 10000.0f, 1, 0, 0, 0, -1, -1}},
    {"qwen2-0.5B", {EGRC_ARCH_QWEN2, 151936, 24, 14, 2, 896, 64, 4864, 32768, 1e-6f, 1000000.0f, 1, 0, 0, 1, -1, -1}},
};

const char *const *egrc_config_preset_names(void) {
    static const char *names[sizeof presets / sizeof presets[0] + 1];
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) names[i] = presets[i].name;
    return names;
}

int egrc_config_preset(const char *name, egrc_model_config *cfg, egrc_error *err) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(presets[i].name, name) == 0) {
            *cfg = presets[i].config;
            return 0;
        }
    }
    char list[256] = "";
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", presets[i].name);
    }
    return egrc_fail(err, "unknown model preset '%s' (presets: %s; or give a Hugging Face model folder)", name, list);
}
