/* Saving without loss: bf16/f16 rounding as PyTorch rounds, a bf16 folder
 * that stays bf16 through load and save (byte for byte), the source's
 * config keys and eos list kept, its tokenizer and generation files copied,
 * and generation_config.json written for a model egrc created. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend.h"
#include "io/fileio.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "nn/model_hf.h"
#include "test.h"

static uint16_t to_half(egrc_dtype dtype, float x) {
    uint16_t h;
    egrc_f32_to_dtype(dtype, &x, &h, 1);
    return h;
}

static void test_rounding(void) {
    /* bf16: the top half of the f32 bits, rounded to nearest even */
    CHECK(to_half(EGRC_DTYPE_BF16, 1.0f) == 0x3f80);
    CHECK(to_half(EGRC_DTYPE_BF16, 1.0f + 0x1p-8f) == 0x3f80);      /* a tie: stays even */
    CHECK(to_half(EGRC_DTYPE_BF16, 1.0f + 0x3p-8f) == 0x3f82);      /* a tie: up to even */
    CHECK(to_half(EGRC_DTYPE_BF16, 1.0f + 0x1p-7f + 0x1p-9f) == 0x3f81);
    CHECK(to_half(EGRC_DTYPE_BF16, -0.0f) == 0x8000);
    CHECK((to_half(EGRC_DTYPE_BF16, NAN) & 0x7fff) > 0x7f80); /* still a NaN, not infinity */
    CHECK(to_half(EGRC_DTYPE_BF16, 0x1.fffffep127f) == 0x7f80); /* rounds up past the largest bf16 */
    /* f16, against Python's struct 'e' (round half to even) */
    CHECK(to_half(EGRC_DTYPE_F16, 1.0f) == 0x3c00);
    CHECK(to_half(EGRC_DTYPE_F16, 65504.0f) == 0x7bff);
    CHECK(to_half(EGRC_DTYPE_F16, 65519.0f) == 0x7bff);
    CHECK(to_half(EGRC_DTYPE_F16, 65520.0f) == 0x7c00); /* a tie with the next step: infinity */
    CHECK(to_half(EGRC_DTYPE_F16, 0x1p-24f) == 0x0001);
    CHECK(to_half(EGRC_DTYPE_F16, 0x1p-25f) == 0x0000); /* a tie: to even zero */
    CHECK(to_half(EGRC_DTYPE_F16, 0x3p-26f) == 0x0001);
    CHECK(to_half(EGRC_DTYPE_F16, 0.1f) == 0x2e66);
    CHECK(to_half(EGRC_DTYPE_F16, -2.0f) == 0xc000);
    CHECK(to_half(EGRC_DTYPE_F16, 6.1e-5f) == 0x03ff);                  /* the largest subnormal */
    CHECK(to_half(EGRC_DTYPE_F16, 0x1p-14f * (1.0f - 0x1p-12f)) == 0x0400); /* rounds up to the smallest normal */
    CHECK(to_half(EGRC_DTYPE_F16, NAN) == 0x7e00);
    uint16_t unused;
    float one = 1.0f;
    CHECK(egrc_f32_to_dtype(EGRC_DTYPE_I32, &one, &unused, 1) == -1);
}

static char *read_text(const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    return egrc_read_file(path, 1u << 26, &len, NULL);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char path[4200];
    egrc_error err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_MSG(egrc_write_file_atomic(path, text, strlen(text), &err) == 0, "%s", err.msg);
}

static int file_equal(const char *dir_a, const char *dir_b, const char *name) {
    char *a = read_text(dir_a, name), *b = read_text(dir_b, name);
    int same = a && b && strcmp(a, b) == 0;
    free(a);
    free(b);
    return same;
}

static int files_identical(const char *a, const char *b) {
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/model.safetensors", b);
    size_t la, lb;
    char *x = egrc_read_file(pa, 1u << 26, &la, NULL), *y = egrc_read_file(pb, 1u << 26, &lb, NULL);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

/* Every tensor of dir/model.safetensors has `dtype`. */
static int all_tensors_are(const char *dir, egrc_dtype dtype) {
    egrc_error err;
    egrc_safetensors *st = egrc_safetensors_open_dir(dir, &err);
    if (!st) return 0;
    int all = egrc_safetensors_count(st) > 0;
    for (size_t i = 0; i < egrc_safetensors_count(st); i++) all &= egrc_safetensors_at(st, i)->dtype == dtype;
    egrc_safetensors_close(st);
    return all;
}

/* A copy of tiny-qwen2 with what real Instruct folders carry: a key egrc
 * does not use, a list of eos ids, tokenizer and generation files. */
static void make_source(const char *dir) {
    mkdir(dir, 0777);
    char *config = read_text(EGRC_TEST_DATA "/tiny-qwen2", "config.json");
    CHECK(config != NULL);
    if (!config) return;
    char *eos = strstr(config, "\"eos_token_id\": null");
    CHECK(eos != NULL);
    char patched[8192];
    if (eos) {
        snprintf(patched, sizeof patched, "%.*s\"eos_token_id\": [7, 3],\n  \"custom_key\": {\"kept\": true}%s",
                 (int)(eos - config), config, eos + strlen("\"eos_token_id\": null"));
        write_text(dir, "config.json", patched);
    }
    free(config);
    char from[4300], to[4300];
    snprintf(from, sizeof from, "%s/tiny-qwen2/model.safetensors", EGRC_TEST_DATA);
    snprintf(to, sizeof to, "%s/model.safetensors", dir);
    size_t len;
    char *weights = egrc_read_file(from, 1u << 26, &len, NULL);
    egrc_error err;
    CHECK(weights && egrc_write_file_atomic(to, weights, len, &err) == 0);
    free(weights);
    write_text(dir, "tokenizer.json", "{\"model\": {\"type\": \"BPE\"}}\n");
    write_text(dir, "tokenizer_config.json", "{\"chat_template\": \"{{ messages }}\"}\n");
    write_text(dir, "generation_config.json", "{\"eos_token_id\": [7, 3], \"temperature\": 0.6, \"top_p\": 0.95}\n");
}

static void test_folder_round_trip(egrc_backend *be, const char *work) {
    char source[4200], as_bf16[4200], again[4200];
    snprintf(source, sizeof source, "%s/source", work);
    snprintf(as_bf16, sizeof as_bf16, "%s/bf16", work);
    snprintf(again, sizeof again, "%s/again", work);
    make_source(source);
    egrc_error err;
    egrc_model *m = egrc_model_load_hf(be, source, &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) return;
    CHECK(m->source_dtype == EGRC_DTYPE_F32);
    const egrc_dtype bf16 = EGRC_DTYPE_BF16;
    CHECK_MSG(egrc_model_save_hf(m, as_bf16, &bf16, &err) == 0, "%s", err.msg);
    CHECK(all_tensors_are(as_bf16, EGRC_DTYPE_BF16));
    char *config = read_text(as_bf16, "config.json");
    CHECK(config && strstr(config, "\"custom_key\""));           /* a key egrc does not use */
    CHECK(config && strstr(config, "\"eos_token_id\":\t[7, 3]")); /* the list, not its first id */
    CHECK(config && strstr(config, "\"dtype\":\t\"bfloat16\""));  /* transformers 5's key, updated */
    CHECK(config && !strstr(config, "torch_dtype"));             /* and not its deprecated twin */
    CHECK(config && !strstr(config, "\n\t\"rope_theta\""));      /* top level: rope_parameters already says it */
    free(config);
    CHECK(file_equal(source, as_bf16, "tokenizer.json"));
    CHECK(file_equal(source, as_bf16, "tokenizer_config.json"));
    CHECK(file_equal(source, as_bf16, "generation_config.json"));

    /* loaded from bf16, saved with no dtype: bf16 again, the same bytes */
    egrc_model *b = egrc_model_load_hf(be, as_bf16, &err);
    CHECK_MSG(b != NULL, "%s", err.msg);
    if (b) {
        CHECK(b->source_dtype == EGRC_DTYPE_BF16);
        CHECK_MSG(egrc_model_save_hf(b, again, NULL, &err) == 0, "%s", err.msg);
        CHECK(files_identical(as_bf16, again));
        CHECK(file_equal(as_bf16, again, "config.json"));
        egrc_model_free(b);
    }
    /* a folder saved onto itself keeps its side files */
    egrc_model *c = egrc_model_load_hf(be, again, &err);
    CHECK_MSG(c && egrc_model_save_hf(c, again, NULL, &err) == 0, "%s", err.msg);
    CHECK(file_equal(as_bf16, again, "tokenizer.json"));
    CHECK(files_identical(as_bf16, again));
    egrc_model_free(c);
    egrc_model_free(m);
}

static void test_created_model(egrc_backend *be, const char *work) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/created", work);
    egrc_error err;
    egrc_model_config cfg;
    CHECK(egrc_config_preset("gpt2-tiny", &cfg, &err) == 0);
    cfg.bos_token_id = cfg.eos_token_id = 1; /* as a model made for a tokenizer with one end token */
    egrc_model *m = egrc_model_create(be, &cfg, &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) return;
    CHECK_MSG(egrc_model_save_hf(m, dir, NULL, &err) == 0, "%s", err.msg);
    CHECK(all_tensors_are(dir, EGRC_DTYPE_F32));
    char *generation = read_text(dir, "generation_config.json");
    CHECK(generation && strstr(generation, "\"eos_token_id\":\t1"));
    free(generation);
    char *config = read_text(dir, "config.json");
    CHECK(config && strstr(config, "\"torch_dtype\":\t\"float32\""));
    free(config);
    const egrc_dtype i32 = EGRC_DTYPE_I32;
    CHECK(egrc_model_save_hf(m, dir, &i32, &err) == -1 && strstr(err.msg, "supported: F32, BF16, F16"));
    egrc_model_free(m);
}

int main(void) {
    test_rounding();
    char work[] = "/tmp/egrc_model_save_XXXXXX";
    CHECK(mkdtemp(work) != NULL);
    egrc_error err;
    egrc_backend *be = egrc_backend_open("cpu", 0, &err);
    CHECK_MSG(be != NULL, "%s", err.msg);
    if (be) {
        test_folder_round_trip(be, work);
        test_created_model(be, work);
        egrc_backend_close(be);
    }
    char command[4300];
    snprintf(command, sizeof command, "rm -rf '%s'", work);
    CHECK(system(command) == 0);
    return test_finish("test_model_save");
}
