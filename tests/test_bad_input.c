/* Bad input to model loading: each case must fail with a message that names
 * what is wrong (the key, the tensor, the file), never crash. The parsers'
 * own hostile cases are in test_safetensors.c and test_tokenizer.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/fileio.h"
#include "nn/model_hf.h"
#include "io/safetensors.h"
#include "test.h"

static egrc_backend *be;

static void expect_config_error(const char *json, const char *needle) {
    egrc_model_config cfg;
    egrc_error err = {""};
    int rc = egrc_config_parse_hf(json, strlen(json), "config.json", &cfg, &err);
    CHECK_MSG(rc == -1 && strstr(err.msg, needle) && strstr(err.msg, "config.json"),
              "expected an error naming '%s', got rc=%d '%s'", needle, rc, err.msg);
}

static void test_configs(void) {
    expect_config_error("{\"model_type\": \"mistral\"}", "mistral");
    expect_config_error("{}", "model_type");
    expect_config_error("[1, 2]", "not a JSON object");
    expect_config_error("{\"model_type\": \"qwen2\", \"vocab_size\": 10", "not a JSON object"); /* truncated */
    expect_config_error("{\"model_type\": \"qwen2\", \"vocab_size\": 512, \"num_hidden_layers\": 2, "
                        "\"num_attention_heads\": 4, \"intermediate_size\": 8}",
                        "hidden_size");
    expect_config_error("{\"model_type\": \"llama\", \"vocab_size\": 512, \"num_hidden_layers\": 2, \"hidden_size\": "
                        "64, \"num_attention_heads\": 4, \"num_key_value_heads\": 3, \"intermediate_size\": 8}",
                        "key/value heads");
    expect_config_error("{\"model_type\": \"llama\", \"vocab_size\": \"many\"}", "vocab_size");
    expect_config_error("{\"model_type\": \"llama\", \"vocab_size\": 512, \"num_hidden_layers\": 2, \"hidden_size\": "
                        "64, \"num_attention_heads\": 4, \"intermediate_size\": 8, \"rope_scaling\": {\"rope_type\": "
                        "\"llama3\", \"factor\": 8.0}}",
                        "llama3");
    expect_config_error("{\"model_type\": \"gpt2\", \"vocab_size\": 512, \"n_layer\": 2, \"n_head\": 4, \"n_embd\": "
                        "64, \"n_positions\": 64, \"activation_function\": \"relu\"}",
                        "relu");
    expect_config_error("{\"model_type\": \"llama\", \"vocab_size\": -5, \"num_hidden_layers\": 2, \"hidden_size\": "
                        "64, \"num_attention_heads\": 4, \"intermediate_size\": 8}",
                        "vocab_size");

    /* rope_theta is accepted at the top level and under rope_parameters. */
    const char *top = "{\"model_type\": \"llama\", \"vocab_size\": 512, \"num_hidden_layers\": 2, \"hidden_size\": 64, "
                      "\"num_attention_heads\": 4, \"intermediate_size\": 8, \"rope_theta\": 500000.0}";
    const char *nested = "{\"model_type\": \"qwen2\", \"vocab_size\": 512, \"num_hidden_layers\": 2, \"hidden_size\": "
                         "64, \"num_attention_heads\": 4, \"intermediate_size\": 8, \"rope_parameters\": "
                         "{\"rope_theta\": 250000.0, \"rope_type\": \"default\"}}";
    egrc_model_config cfg;
    egrc_error err;
    CHECK(egrc_config_parse_hf(top, strlen(top), "top", &cfg, &err) == 0 && cfg.rope_theta == 500000.0f);
    CHECK(egrc_config_parse_hf(nested, strlen(nested), "nested", &cfg, &err) == 0 && cfg.rope_theta == 250000.0f);
    CHECK(cfg.n_kv_head == 4 && cfg.qkv_bias && !cfg.attn_out_bias);
}

/* A scratch model folder made from tiny-qwen2, then broken in one way. */
typedef struct scratch {
    char dir[64];
    char model_path[128];
    char config_path[128];
} scratch;

static int make_scratch(scratch *s) {
    egrc_error err;
    snprintf(s->dir, sizeof s->dir, "/tmp/egrc_bad_input_XXXXXX");
    if (!mkdtemp(s->dir)) return -1;
    snprintf(s->model_path, sizeof s->model_path, "%s/model.safetensors", s->dir);
    snprintf(s->config_path, sizeof s->config_path, "%s/config.json", s->dir);
    egrc_model *m = egrc_model_load_hf(be, EGRC_TEST_DATA "/tiny-qwen2", &err);
    int rc = m ? egrc_model_save_hf(m, s->dir, &err) : -1;
    egrc_model_free(m);
    return rc;
}

static void remove_scratch(scratch *s) {
    unlink(s->model_path);
    unlink(s->config_path);
    rmdir(s->dir);
}

/* Rewrites the scratch model.safetensors with tensor `drop` left out and, if
 * `extra` is set, one extra tensor by that name. */
static void rewrite_tensors(scratch *s, const char *drop, const char *extra) {
    egrc_error err;
    egrc_safetensors *st = egrc_safetensors_open(s->model_path, &err);
    if (!st) return;
    size_t n = egrc_safetensors_count(st);
    egrc_st_entry *entries = calloc(n + 1, sizeof *entries);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const egrc_st_tensor *t = egrc_safetensors_at(st, i);
        if (drop && strcmp(t->name, drop) == 0) continue;
        entries[used].name = t->name;
        entries[used].dtype = t->dtype;
        entries[used].ndim = t->ndim;
        memcpy(entries[used].shape, t->shape, sizeof t->shape);
        entries[used].data = t->data;
        used++;
    }
    static const float four[4] = {1, 2, 3, 4};
    if (extra) entries[used++] = (egrc_st_entry){extra, EGRC_DTYPE_F32, 1, {4}, four};
    /* Write beside, then rename: the source mapping stays valid while writing. */
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s/rewritten.safetensors", s->dir);
    CHECK(egrc_safetensors_write(tmp, entries, used, NULL, &err) == 0);
    egrc_safetensors_close(st);
    rename(tmp, s->model_path);
    free(entries);
}

static void expect_load_error(scratch *s, const char *needle, const char *what) {
    egrc_error err = {""};
    egrc_model *m = egrc_model_load_hf(be, s->dir, &err);
    CHECK_MSG(m == NULL && strstr(err.msg, needle), "%s: expected an error naming '%s', got '%s'", what, needle,
              err.msg);
    egrc_model_free(m);
}

static void test_model_folders(void) {
    scratch s;
    egrc_error err;
    CHECK(make_scratch(&s) == 0);
    egrc_model *ok = egrc_model_load_hf(be, s.dir, &err);
    CHECK_MSG(ok != NULL, "the unbroken scratch folder must load: %s", err.msg);
    egrc_model_free(ok);

    rewrite_tensors(&s, "model.layers.1.mlp.up_proj.weight", NULL);
    expect_load_error(&s, "model.layers.1.mlp.up_proj.weight", "missing tensor");
    remove_scratch(&s);

    CHECK(make_scratch(&s) == 0);
    rewrite_tensors(&s, NULL, "model.layers.7.self_attn.q_proj.weight");
    expect_load_error(&s, "model.layers.7.self_attn.q_proj.weight", "unexpected tensor");
    remove_scratch(&s);

    /* config.json says a different MLP width than the weights have */
    CHECK(make_scratch(&s) == 0);
    size_t len;
    char *config = egrc_read_file(s.config_path, 1 << 20, &len, &err);
    char *width = config ? strstr(config, "\"intermediate_size\"") : NULL;
    width = width ? strstr(width, "176") : NULL;
    CHECK(width != NULL);
    if (width) {
        width[2] = '9'; /* 176 -> 179 */
        CHECK(egrc_write_file_atomic(s.config_path, config, len, &err) == 0);
        expect_load_error(&s, "shape", "shape mismatch");
    }
    free(config);

    /* a truncated weights file */
    char *bytes = egrc_read_file(s.model_path, 16 << 20, &len, &err);
    CHECK(bytes != NULL);
    if (bytes) {
        CHECK(egrc_write_file_atomic(s.model_path, bytes, len / 2, &err) == 0);
        expect_load_error(&s, "model.safetensors", "truncated file");
    }
    free(bytes);

    /* no weights at all */
    unlink(s.model_path);
    expect_load_error(&s, "model.safetensors", "missing weights");
    remove_scratch(&s);
}

static void test_forward_rejects_bad_ids(void) {
    egrc_error err = {""};
    egrc_model *m = egrc_model_load_hf(be, EGRC_TEST_DATA "/tiny-gpt2", &err);
    if (!m) return;
    int32_t tokens[4] = {1, 2, 512, 3}, targets[4] = {2, 3, 4, -1};
    CHECK(egrc_model_forward(m, tokens, targets, 1, 4, NULL, &err) == -1 && strstr(err.msg, "512"));
    tokens[2] = 7;
    targets[1] = 100000;
    CHECK(egrc_model_forward(m, tokens, targets, 1, 4, NULL, &err) == -1 && strstr(err.msg, "100000"));
    int32_t long_seq[65] = {0};
    CHECK(egrc_model_forward(m, long_seq, NULL, 1, 65, NULL, &err) == -1 && strstr(err.msg, "64"));
    CHECK(egrc_model_backward(m, 1.0f, &err) == -1); /* no forward with targets happened */
    egrc_model_free(m);
}

static void test_backend_errors(void) {
    egrc_error err = {""};
    /* no GPU in the test environment: the plugin is missing, or finds no driver or device */
    CHECK(egrc_backend_open("cuda", 0, &err) == NULL && strstr(err.msg, "backend 'cuda'") &&
          (strstr(err.msg, "libegrc-backend-cuda.so") || strstr(err.msg, "driver") || strstr(err.msg, "device")));
    CHECK(egrc_backend_open("../evil", 0, &err) == NULL && strstr(err.msg, "not a valid backend name"));
    CHECK(egrc_backend_open("cpu", 3, &err) == NULL && strstr(err.msg, "device 3"));
}

int main(void) {
    egrc_error err;
    be = egrc_backend_open("cpu", 0, &err);
    CHECK_MSG(be != NULL, "%s", err.msg);
    if (!be) return test_finish("test_bad_input");
    test_configs();
    test_model_folders();
    test_forward_rejects_bad_ids();
    test_backend_errors();
    egrc_backend_close(be);
    return test_finish("test_bad_input");
}
