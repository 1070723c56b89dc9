/* Bad input to model and benchmark loading: each case must fail with a
 * message that names what is wrong (the key, the tensor, the file and line),
 * never crash. The parsers' own hostile cases are in test_safetensors.c and
 * test_tokenizer.c; bad files are planted in a fresh folder under /tmp. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/benchmarks.h"
#include "io/fileio.h"
#include "nn/checkpoint.h"
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
    expect_config_error("{\"model_type\": \"qwen3\"}", "qwen3");
    expect_config_error("{\"model_type\": \"mistral\", \"vocab_size\": 512, \"num_hidden_layers\": 2, \"hidden_size\": "
                        "64, \"num_attention_heads\": 4, \"intermediate_size\": 8, \"max_position_embeddings\": 32768, "
                        "\"sliding_window\": 4096}",
                        "sliding_window");
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

    /* Mistral without a window (v0.2+ configs write null) is llama. */
    const char *mistral = "{\"model_type\": \"mistral\", \"vocab_size\": 512, \"num_hidden_layers\": 2, "
                          "\"hidden_size\": 64, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
                          "\"intermediate_size\": 8, \"sliding_window\": null, \"rope_theta\": 1000000.0}";
    CHECK(egrc_config_parse_hf(mistral, strlen(mistral), "mistral", &cfg, &err) == 0 && cfg.arch == EGRC_ARCH_LLAMA &&
          cfg.n_kv_head == 2 && !cfg.qkv_bias);
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
    int rc = m ? egrc_model_save_hf(m, s->dir, NULL, &err) : -1;
    egrc_model_free(m);
    return rc;
}

static void remove_scratch(scratch *s) {
    unlink(s->model_path);
    unlink(s->config_path);
    rmdir(s->dir);
}

/* Rewrites the scratch model.safetensors with tensor `drop` left out and, if
 * `extra` is set, that tensor added. */
static void rewrite_tensors(scratch *s, const char *drop, const egrc_st_entry *extra) {
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
    if (extra) entries[used++] = *extra;
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
    static const float four[4] = {1, 2, 3, 4};
    const egrc_st_entry stray = {"model.layers.7.self_attn.q_proj.weight", EGRC_DTYPE_F32, 1, {4}, four};
    rewrite_tensors(&s, NULL, &stray);
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

/* ---- non-finite weights ---- */

/* The bits of 1.0 and of a bad value in one dtype (a double for F64). */
typedef struct planted_value {
    egrc_dtype dtype;
    uint64_t one, bad;
    const char *shown; /* how the message prints the bad value once in f32 */
} planted_value;

static void store(void *data, size_t index, size_t size, uint64_t bits) {
    memcpy((char *)data + index * size, &bits, size); /* little-endian: the low bytes */
}

/* Replaces tensor `name` of the scratch folder by ones in `v.dtype`, with the
 * bad value at flat element `index`; then the load must fail naming them. */
static void expect_nonfinite_refused(const char *name, planted_value v, size_t index, const char *coords) {
    scratch s;
    egrc_error err;
    CHECK(make_scratch(&s) == 0);
    egrc_safetensors *st = egrc_safetensors_open(s.model_path, &err);
    const egrc_st_tensor *t = st ? egrc_safetensors_find(st, name) : NULL;
    CHECK_MSG(t != NULL, "tiny-qwen2 has no tensor '%s'", name);
    if (t) {
        egrc_st_entry entry = {name, v.dtype, t->ndim, {0}, NULL};
        memcpy(entry.shape, t->shape, sizeof entry.shape);
        size_t size = egrc_dtype_size(v.dtype), n = (size_t)t->numel;
        void *data = malloc(n * size);
        for (size_t i = 0; i < n; i++) store(data, i, size, i == index ? v.bad : v.one);
        entry.data = data;
        egrc_safetensors_close(st);
        st = NULL;
        rewrite_tensors(&s, name, &entry);
        free(data);
        char element[64], what[160];
        snprintf(element, sizeof element, "element %zu %s", index, coords);
        snprintf(what, sizeof what, "%s %s at %zu", egrc_dtype_name(v.dtype), v.shown, index);
        expect_load_error(&s, name, what);
        expect_load_error(&s, element, what);
        expect_load_error(&s, v.shown, what);
    }
    egrc_safetensors_close(st);
    remove_scratch(&s);
}

static void test_nonfinite_weights(void) {
    const planted_value f32_nan = {EGRC_DTYPE_F32, 0x3f800000u, 0x7fc00000u, "(nan)"};
    const planted_value f32_neg_inf = {EGRC_DTYPE_F32, 0x3f800000u, 0xff800000u, "(-inf)"};
    const planted_value bf16_nan = {EGRC_DTYPE_BF16, 0x3f80u, 0x7fc0u, "(nan)"};
    const planted_value bf16_inf = {EGRC_DTYPE_BF16, 0x3f80u, 0x7f80u, "(inf)"};
    const planted_value f16_nan = {EGRC_DTYPE_F16, 0x3c00u, 0x7e00u, "(nan)"};
    const planted_value f16_inf = {EGRC_DTYPE_F16, 0x3c00u, 0x7c00u, "(inf)"};
    double one = 1.0, huge = 1e300; /* finite in F64, infinite once in f32 */
    planted_value f64_huge = {EGRC_DTYPE_F64, 0, 0, "(inf)"};
    memcpy(&f64_huge.one, &one, sizeof one);
    memcpy(&f64_huge.bad, &huge, sizeof huge);
    /* embed_tokens is [512, 64]: element 5000 is row 78, column 8, past the scan's first block */
    expect_nonfinite_refused("model.embed_tokens.weight", f32_nan, 5000, "[78, 8]");
    expect_nonfinite_refused("model.embed_tokens.weight", bf16_nan, 0, "[0, 0]");
    expect_nonfinite_refused("model.embed_tokens.weight", f16_inf, 32767, "[511, 63]");
    expect_nonfinite_refused("model.layers.1.mlp.down_proj.weight", bf16_inf, 1234, "[7, 2]");
    expect_nonfinite_refused("model.layers.0.self_attn.k_proj.weight", f16_nan, 100, "[1, 36]");
    expect_nonfinite_refused("model.norm.weight", f32_neg_inf, 63, "[63]");
    expect_nonfinite_refused("model.layers.0.self_attn.q_proj.bias", f64_huge, 7, "[7]");

    /* the scan itself: none, first, last, and only past a block's end */
    float v[10000];
    for (size_t i = 0; i < 10000; i++) v[i] = (float)i - 5000.0f;
    CHECK(egrc_first_nonfinite(v, 10000) == 10000);
    CHECK(egrc_first_nonfinite(v, 0) == 0);
    v[9999] = INFINITY;
    CHECK(egrc_first_nonfinite(v, 10000) == 9999);
    CHECK(egrc_first_nonfinite(v, 9999) == 9999);
    v[4096] = NAN;
    CHECK(egrc_first_nonfinite(v, 10000) == 4096);
    v[0] = -INFINITY;
    CHECK(egrc_first_nonfinite(v, 10000) == 0);
}

/* A checkpoint written after a run diverged: resuming from it must fail,
 * naming the vector, the element and the parameter it belongs to. */
static void test_nonfinite_checkpoint(void) {
    egrc_error err = {""};
    char dir[] = "/tmp/egrc_bad_ckpt_XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    egrc_model *m = egrc_model_load_hf(be, EGRC_TEST_DATA "/tiny-qwen2", &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) return;
    float *host = malloc(m->n_params * sizeof *host);
    m->be->ops->download(m->be, host, m->params, m->n_params * sizeof *host);
    egrc_rng rng;
    egrc_rng_seed(&rng, 1);
    int step = -1;
    CHECK(egrc_checkpoint_save(path, m, 3, &rng, &err) == 0);
    CHECK_MSG(egrc_checkpoint_load(path, m, &step, &rng, &err) == 0 && step == 3, "finite checkpoint: %s", err.msg);

    const size_t C = (size_t)m->cfg.d_model, bad = m->layers[1].fc_w + 2 * C + 5;
    host[bad] = NAN;
    egrc_model_set_params(m, host);
    CHECK(egrc_checkpoint_save(path, m, 4, &rng, &err) == 0);
    char element[64];
    snprintf(element, sizeof element, "element %zu (layers.1.fc_w, row 2, column 5)", bad);
    int rc = egrc_checkpoint_load(path, m, &step, &rng, &err);
    CHECK_MSG(rc == -1 && strstr(err.msg, "ckpt.safetensors") && strstr(err.msg, "'params'") &&
                  strstr(err.msg, element) && strstr(err.msg, "(nan)"),
              "NaN checkpoint: rc=%d '%s'", rc, err.msg);
    free(host);
    egrc_model_free(m);
    unlink(path);
    rmdir(dir);
}

/* ---- benchmark files ---- */

static char bench_dir[64];

static void plant_bench(const char *name, const char *text, size_t len, char *path, size_t size) {
    egrc_error err;
    snprintf(path, size, "%s/%s", bench_dir, name);
    CHECK_MSG(egrc_write_file_atomic(path, text, len, &err) == 0, "%s", err.msg);
}

/* The load of `text` as bench file `name` must fail, the message holding
 * "name:LINE" and `needle`. */
static void expect_bench_error(const char *name, const char *text, size_t len, size_t line, const char *needle) {
    char path[128], where[96];
    plant_bench(name, text, len, path, sizeof path);
    snprintf(where, sizeof where, "%s:%zu:", name, line);
    egrc_error err = {""};
    egrc_benchmark *b = egrc_benchmark_load_jsonl(path, "question", "answer", &err);
    CHECK_MSG(b == NULL && strstr(err.msg, where) && strstr(err.msg, needle), "%s: expected '%s' and '%s', got '%s'",
              name, where, needle, b ? "(loaded)" : err.msg);
    egrc_benchmark_free(b);
    unlink(path);
}

static void test_benchmark_encoding(void) {
    /* The prefix {"question": " is 14 bytes, so a bad byte right after it is byte 15. */
    static const struct {
        const char *name, *line;
    } bad[] = {
        {"latin1.jsonl", "{\"question\": \"caf\xe9\", \"answer\": \"1\"}\n"},
        {"stray_continuation.jsonl", "{\"question\": \"\x80\", \"answer\": \"1\"}\n"},
        {"overlong.jsonl", "{\"question\": \"\xc0\xaf\", \"answer\": \"1\"}\n"},
        {"surrogate.jsonl", "{\"question\": \"\xed\xa0\x80\", \"answer\": \"1\"}\n"},
        {"past_unicode.jsonl", "{\"question\": \"\xf4\x90\x80\x80\", \"answer\": \"1\"}\n"},
        {"cut_sequence.jsonl", "{\"question\": \"\xe2\x88\", \"answer\": \"1\"}\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *prefix = "{\"question\": \"2 \xe2\x88\x9a 4\", \"answer\": \"2\"}\n\n"; /* valid: U+221A */
        char text[256];
        int len = snprintf(text, sizeof text, "%s%s", prefix, bad[i].line);
        const char *offset = i == 0 ? "byte 18 of the line" : "byte 15 of the line";
        expect_bench_error(bad[i].name, text, (size_t)len, 3, offset);
    }
}

static void test_benchmark_lines(void) {
    /* a 2 MiB question: refused by size, before JSON or tokens */
    size_t big = (size_t)2 << 20;
    char *text = malloc(big + 128);
    int head = snprintf(text, 64, "{\"question\": \"1+1\", \"answer\": \"2\"}\n{\"question\": \"");
    memset(text + head, 'x', big);
    size_t len = (size_t)head + big;
    len += (size_t)snprintf(text + len, 64, "\", \"answer\": \"2\"}\n");
    expect_bench_error("huge.jsonl", text, len, 2, "more than the 1048576 bytes (1 MiB) allowed");
    free(text);

    /* every item knows its line (blank lines counted) and the file */
    const char *ok = "{\"question\": \"a\", \"answer\": \"1\"}\n\n  \n{\"question\": \"b \xf0\x9f\x99\x82\", \"answer\": \"2\"}\n";
    char path[128];
    plant_bench("lines.jsonl", ok, strlen(ok), path, sizeof path);
    egrc_error err = {""};
    egrc_benchmark *b = egrc_benchmark_load_jsonl(path, "question", "answer", &err);
    CHECK_MSG(b != NULL, "lines.jsonl: %s", err.msg);
    if (b) {
        CHECK(b->count == 2 && b->items[0].line == 1 && b->items[1].line == 4);
        CHECK(strcmp(b->file, path) == 0);
    }
    egrc_benchmark_free(b);
    unlink(path);
}

static void test_benchmarks(void) {
    snprintf(bench_dir, sizeof bench_dir, "/tmp/egrc_bad_bench_XXXXXX");
    CHECK(mkdtemp(bench_dir) != NULL);
    test_benchmark_encoding();
    test_benchmark_lines();
    rmdir(bench_dir);
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
    test_nonfinite_weights();
    test_nonfinite_checkpoint();
    test_benchmarks();
    test_forward_rejects_bad_ids();
    test_backend_errors();
    egrc_backend_close(be);
    return test_finish("test_bad_input");
}
