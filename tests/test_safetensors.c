/* Tests for core/io/safetensors.c, core/io/safetensors_write.c and core/io/fileio.c:
 * round trips, the real fixtures, sharded folders, every hostile header the
 * reader must refuse (with a message that says why), dtype conversions and
 * the atomic writer's all-or-nothing behaviour. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/fileio.h"
#include "io/safetensors.h"
#include "test.h"

static char tmp_root[] = "/tmp/egrc_st_test_XXXXXX";

static char *tmp_path(const char *name) {
    static char buf[8][512];
    static int next = 0;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmp_root, name);
    return p;
}

/* Counts entries of `dir` whose names contain `needle` (temp-file leak check). */
static int count_named(const char *dir, const char *needle) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, needle) != NULL;
    closedir(d);
    return n;
}

static void remove_tree_flat(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[1024];
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0) remove_tree_flat(path);
    }
    closedir(d);
    rmdir(dir);
}

static int contains(const char *haystack, const char *needle) { return strstr(haystack, needle) != NULL; }

static void test_round_trip(void) {
    const float f32[6] = {1.0f, -2.0f, 3.5f, 0.0f, -0.0f, 1e-40f};
    const uint16_t f16[3] = {0x3C00, 0xC100, 0x7BFF};
    const uint16_t bf16[2] = {0x3F80, 0xC020};
    const double f64[2] = {3.141592653589793, -1e300};
    const int64_t i64[2] = {INT64_MIN, INT64_MAX};
    const int32_t i32[3] = {-5, 0, 7};
    const int16_t i16[1] = {-300};
    const int8_t i8[4] = {-128, -1, 0, 127};
    const uint8_t u8[2] = {0, 255}, flags[3] = {1, 0, 1};
    const float scalar = 42.0f;
    const egrc_st_entry entries[] = {
        {"w.f32", EGRC_DTYPE_F32, 2, {2, 3}, f32},   {"h.f16", EGRC_DTYPE_F16, 1, {3}, f16},
        {"b.bf16", EGRC_DTYPE_BF16, 2, {1, 2}, bf16}, {"d.f64", EGRC_DTYPE_F64, 1, {2}, f64},
        {"ids", EGRC_DTYPE_I64, 2, {2, 1}, i64},      {"i32", EGRC_DTYPE_I32, 1, {3}, i32},
        {"i16", EGRC_DTYPE_I16, 1, {1}, i16},         {"i8", EGRC_DTYPE_I8, 1, {4}, i8},
        {"u8", EGRC_DTYPE_U8, 1, {2}, u8},            {"mask", EGRC_DTYPE_BOOL, 1, {3}, flags},
        {"scalar", EGRC_DTYPE_F32, 0, {0}, &scalar},  {"empty", EGRC_DTYPE_F32, 2, {0, 5}, NULL},
    };
    const size_t n = sizeof entries / sizeof entries[0];
    const char *meta[] = {"format", "pt", "note", "quote \" and \\ and \n", NULL};
    const char *path = tmp_path("round.safetensors");
    egrc_error err = {{0}};
    CHECK_MSG(egrc_safetensors_write(path, entries, n, meta, &err) == 0, "%s", err.msg);
    CHECK(count_named(tmp_root, ".tmp.") == 0);

    egrc_safetensors *st = egrc_safetensors_open(path, &err);
    CHECK_MSG(st != NULL, "%s", err.msg);
    if (!st) return;
    CHECK(egrc_safetensors_count(st) == n);
    for (size_t i = 0; i < n; i++) {
        const egrc_st_tensor *t = egrc_safetensors_find(st, entries[i].name);
        CHECK_MSG(t != NULL, "tensor %s missing", entries[i].name);
        if (!t) continue;
        CHECK(t->dtype == entries[i].dtype && t->ndim == entries[i].ndim);
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            CHECK(t->shape[d] == entries[i].shape[d]);
            numel *= entries[i].shape[d];
        }
        CHECK(t->numel == numel);
        CHECK(t->nbytes == (size_t)numel * egrc_dtype_size(t->dtype));
        CHECK_MSG(t->nbytes == 0 || memcmp(t->data, entries[i].data, t->nbytes) == 0, "%s differs", t->name);
    }
    for (size_t i = 1; i < n; i++)
        CHECK(strcmp(egrc_safetensors_at(st, i - 1)->name, egrc_safetensors_at(st, i)->name) < 0);
    CHECK(egrc_safetensors_at(st, n) == NULL);
    CHECK(egrc_safetensors_find(st, "nope") == NULL);
    CHECK(egrc_safetensors_metadata(st, "format") && strcmp(egrc_safetensors_metadata(st, "format"), "pt") == 0);
    CHECK(egrc_safetensors_metadata(st, "note") &&
          strcmp(egrc_safetensors_metadata(st, "note"), "quote \" and \\ and \n") == 0);
    CHECK(egrc_safetensors_metadata(st, "absent") == NULL);
    egrc_safetensors_close(st);

    /* Layout: header padded to 8 with spaces, data in name order, metadata first. */
    size_t len = 0;
    char *raw = egrc_read_file(path, 1 << 20, &len, &err);
    CHECK_MSG(raw != NULL, "%s", err.msg);
    if (raw) {
        uint64_t hlen = 0;
        for (int i = 0; i < 8; i++) hlen |= (uint64_t)(unsigned char)raw[i] << (8 * i);
        CHECK(hlen % 8 == 0 && hlen + 8 <= len);
        CHECK(strncmp(raw + 8, "{\"__metadata__\":", 16) == 0);
        CHECK(raw[8 + hlen - 1] == ' ' || raw[8 + hlen - 1] == '}');
        const char *b = strstr(raw + 8, "\"b.bf16\""), *w = strstr(raw + 8, "\"w.f32\"");
        CHECK(b && w && b < w && contains(b, "\"data_offsets\":[0,4]"));
        free(raw);
    }

    /* Without metadata there is no __metadata__ key at all. */
    CHECK_MSG(egrc_safetensors_write(path, entries, 2, NULL, &err) == 0, "%s", err.msg);
    raw = egrc_read_file(path, 1 << 20, &len, &err);
    CHECK(raw && !contains(raw + 8, "__metadata__"));
    free(raw);
}

static void test_fixtures(void) {
    egrc_error err = {{0}};
    egrc_safetensors *st = egrc_safetensors_open(EGRC_TEST_DATA "/tiny-qwen2/model.safetensors", &err);
    CHECK_MSG(st != NULL, "%s", err.msg);
    if (st) {
        const egrc_st_tensor *t = egrc_safetensors_find(st, "model.norm.weight");
        CHECK(t && t->dtype == EGRC_DTYPE_F32 && t->ndim == 1 && t->shape[0] == 64);
        const egrc_st_tensor *lm = egrc_safetensors_find(st, "lm_head.weight");
        CHECK(lm && lm->ndim == 2 && lm->shape[0] == 512 && lm->shape[1] == 64);
        const char *fmt = egrc_safetensors_metadata(st, "format");
        CHECK(fmt && strcmp(fmt, "pt") == 0);
        if (lm) {
            float *buf = malloc((size_t)lm->numel * sizeof *buf);
            CHECK(buf && egrc_st_tensor_to_f32(lm, buf, lm->numel, &err) == 0);
            int finite = 1;
            for (int64_t i = 0; buf && i < lm->numel; i++) finite &= isfinite(buf[i]) != 0;
            CHECK(finite);
            CHECK(egrc_st_tensor_to_f32(lm, buf, lm->numel - 1, &err) != 0 && contains(err.msg, "lm_head.weight"));
            free(buf);
        }
        egrc_safetensors_close(st);
    }
    st = egrc_safetensors_open(EGRC_TEST_DATA "/tiny-qwen2/reference.safetensors", &err);
    CHECK_MSG(st != NULL, "%s", err.msg);
    if (st) {
        const egrc_st_tensor *t = egrc_safetensors_find(st, "input_ids");
        CHECK(t && t->dtype == EGRC_DTYPE_I64 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 16);
        if (t) {
            int64_t ids[32];
            CHECK(egrc_st_tensor_to_i64(t, ids, 32, &err) == 0);
            int in_vocab = 1;
            for (int i = 0; i < 32; i++) in_vocab &= ids[i] >= 0 && ids[i] < 512;
            CHECK(in_vocab);
            float f[32];
            CHECK(egrc_st_tensor_to_f32(t, f, 32, &err) != 0 && contains(err.msg, "I64"));
        }
        egrc_safetensors_close(st);
    }
    st = egrc_safetensors_open_dir(EGRC_TEST_DATA "/tiny-qwen2", &err);
    CHECK_MSG(st && egrc_safetensors_find(st, "model.norm.weight"), "%s", err.msg);
    egrc_safetensors_close(st);
}

static void write_index(const char *dir, const char *json) {
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    egrc_error err = {{0}};
    CHECK_MSG(egrc_write_file_atomic(path, json, strlen(json), &err) == 0, "%s", err.msg);
}

static void expect_dir_fail(const char *dir, const char *want1, const char *want2) {
    egrc_error err = {{0}};
    egrc_safetensors *st = egrc_safetensors_open_dir(dir, &err);
    CHECK_MSG(st == NULL, "open_dir accepted a folder that should fail with '%s'", want1);
    egrc_safetensors_close(st);
    CHECK_MSG(contains(err.msg, want1) && contains(err.msg, want2), "message '%s' lacks '%s' / '%s'", err.msg,
              want1, want2);
}

static void test_sharded(void) {
    const char *dir = tmp_path("sharded");
    CHECK(mkdir(dir, 0755) == 0);
    expect_dir_fail(dir, "neither", "model.safetensors.index.json");
    char s1[600], s2[600];
    snprintf(s1, sizeof s1, "%s/model-00001-of-00002.safetensors", dir);
    snprintf(s2, sizeof s2, "%s/model-00002-of-00002.safetensors", dir);
    const float a[2] = {1, 2}, b[3] = {3, 4, 5};
    const int64_t c[1] = {-9};
    const egrc_st_entry first[] = {{"a", EGRC_DTYPE_F32, 1, {2}, a}, {"b", EGRC_DTYPE_F32, 1, {3}, b}};
    const egrc_st_entry second[] = {{"c", EGRC_DTYPE_I64, 1, {1}, c}};
    const char *meta[] = {"format", "pt", NULL};
    egrc_error err = {{0}};
    CHECK_MSG(egrc_safetensors_write(s1, first, 2, meta, &err) == 0, "%s", err.msg);
    CHECK_MSG(egrc_safetensors_write(s2, second, 1, meta, &err) == 0, "%s", err.msg);
    write_index(dir, "{\"metadata\":{\"total_size\":28},\"weight_map\":{"
                     "\"a\":\"model-00001-of-00002.safetensors\",\"c\":\"model-00002-of-00002.safetensors\","
                     "\"b\":\"model-00001-of-00002.safetensors\"}}");
    egrc_safetensors *st = egrc_safetensors_open_dir(dir, &err);
    CHECK_MSG(st != NULL, "%s", err.msg);
    if (st) {
        CHECK(egrc_safetensors_count(st) == 3);
        const egrc_st_tensor *tb = egrc_safetensors_find(st, "b"), *tc = egrc_safetensors_find(st, "c");
        CHECK(tb && tb->nbytes == sizeof b && memcmp(tb->data, b, sizeof b) == 0);
        CHECK(tc && tc->dtype == EGRC_DTYPE_I64 && memcmp(tc->data, c, sizeof c) == 0);
        CHECK(egrc_safetensors_metadata(st, "format") != NULL);
        egrc_safetensors_close(st);
    }
    write_index(dir, "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                     "\"b\":\"model-00001-of-00002.safetensors\",\"c\":\"model-00002-of-00002.safetensors\","
                     "\"d\":\"model-00002-of-00002.safetensors\"}}");
    expect_dir_fail(dir, "'d' is missing", "model-00002-of-00002.safetensors");
    write_index(dir, "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                     "\"c\":\"model-00002-of-00002.safetensors\"}}");
    expect_dir_fail(dir, "'b'", "does not list");
    write_index(dir, "{\"weight_map\":{\"a\":\"../model-00001-of-00002.safetensors\"}}");
    expect_dir_fail(dir, "plain file name", "'a'");
    write_index(dir, "{\"weight_map\":{\"a\":\"sub/x.safetensors\"}}");
    expect_dir_fail(dir, "plain file name", "sub/x.safetensors");
    write_index(dir, "{\"weight_map\":{\"a\":\"absent.safetensors\"}}");
    expect_dir_fail(dir, "absent.safetensors", "cannot open");
    write_index(dir, "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                     "\"a\":\"model-00001-of-00002.safetensors\"}}");
    expect_dir_fail(dir, "'a'", "listed twice");
    write_index(dir, "{\"weight_map\":{}}");
    expect_dir_fail(dir, "weight_map", "empty");
    write_index(dir, "{\"weight_map\":{\"a\":3}}");
    expect_dir_fail(dir, "'a'", "not a string");
    write_index(dir, "{\"weights\":{}}");
    expect_dir_fail(dir, "weight_map", "index.json");
    write_index(dir, "{\"weight_map\":");
    expect_dir_fail(dir, "not valid JSON", "index.json");
}

/* An image: 8-byte length, the header text, then `data_len` bytes 0..255. */
static unsigned char *make_image(const char *header, size_t data_len, size_t *len) {
    size_t hlen = strlen(header);
    *len = 8 + hlen + data_len;
    unsigned char *img = malloc(*len);
    for (int i = 0; i < 8; i++) img[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(img + 8, header, hlen);
    for (size_t i = 0; i < data_len; i++) img[8 + hlen + i] = (unsigned char)i;
    return img;
}

static void expect_mem_fail(const unsigned char *img, size_t len, const char *want1, const char *want2) {
    egrc_error err = {{0}};
    egrc_safetensors *st = egrc_safetensors_from_memory(img, len, "hostile.safetensors", &err);
    CHECK_MSG(st == NULL, "accepted an image that should fail with '%s'", want1);
    egrc_safetensors_close(st);
    CHECK_MSG(contains(err.msg, "hostile.safetensors") && contains(err.msg, want1) && contains(err.msg, want2),
              "message '%s' lacks '%s' / '%s'", err.msg, want1, want2);
}

static void test_hostile(void) {
    static const struct {
        const char *header;
        size_t data_len;
        const char *want1, *want2;
    } cases[] = {
        {"not json", 0, "not valid JSON", "header"},
        {"", 0, "not valid JSON", "header"},
        {"[1, 2]", 0, "not a JSON object", "header"},
        {"{} x", 0, "stray bytes", "header"},
        {"{\"t.bad\": 5}", 0, "'t.bad'", "not a JSON object"},
        {"{\"t.bad\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "'t.bad'", "missing \"dtype\""},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, "'t.bad'", "missing \"shape\""},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, "'t.bad'", "missing \"data_offsets\""},
        {"{\"t.bad\": {\"dtype\": 7, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "'t.bad'", "not a string"},
        {"{\"t.bad\": {\"dtype\": \"F8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1, "'t.bad'", "unknown dtype 'F8'"},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", 4, "'t.bad'", "not an array"},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4, "'t.bad'", "negative"},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", 4, "'t.bad'", "not an integer"},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0, 4]}}", 4, "'t.bad'", "not a number"},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"shape\": [1e300], \"data_offsets\": [0, 4]}}", 4, "'t.bad'", "too large"},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 4]}}", 4,
         "'t.bad'", "more elements"},
        {"{\"t.bad\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 1]}}", 1, "'t.bad'",
         "9 dimensions"},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8, "'t.bad'", "data_offsets"},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": \"0-4\"}}", 4, "'t.bad'", "data_offsets"},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 4, "data_offsets[0]", "negative"},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4.5]}}", 8, "data_offsets[1]", "integer"},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}}", 8, "'t.bad'", "begin after"},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4, "'t.bad'",
         "data_offsets [0, 8) extend past the data region (4 bytes)"},
        {"{\"t.bad\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 6]}}", 8, "'t.bad'",
         "dtype/shape mismatch"},
        {"{\"t.one\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
         " \"t.two\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8, "overlap", "'t.two'"},
        {"{\"t.one\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [0, 8]},"
         " \"t.two\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [3, 3]}}", 8, "overlap", "'t.one'"},
        {"{\"t.dup\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]},"
         " \"t.dup\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1, 2]}}", 2, "'t.dup'", "more than once"},
        {"{\"__metadata__\": {\"format\": 1}}", 0, "__metadata__", "'format'"},
        {"{\"__metadata__\": [\"pt\"]}", 0, "__metadata__", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        unsigned char *img = make_image(cases[i].header, cases[i].data_len, &len);
        expect_mem_fail(img, len, cases[i].want1, cases[i].want2);
        free(img);
    }
    /* Length-prefix damage: too short, longer than the file, over the 100 MB cap. */
    size_t len;
    unsigned char *img = make_image("{}", 0, &len);
    expect_mem_fail(img, 5, "5 bytes", "too short");
    img[0] = 50;
    expect_mem_fail(img, len, "header length 50", "past the end of the file (10 bytes)");
    img[0] = 0;
    img[3] = 0x10; /* 0x10000000 = 268 MB */
    expect_mem_fail(img, len, "100 MB", "268435456");
    free(img);
    expect_mem_fail(NULL, 0, "0 bytes", "too short");

    /* The same checks through the mmap path, plus a file that is not there. */
    const char *path = tmp_path("short.safetensors");
    egrc_error err = {{0}};
    CHECK(egrc_write_file_atomic(path, "abc", 3, &err) == 0);
    egrc_safetensors *st = egrc_safetensors_open(path, &err);
    CHECK(st == NULL && contains(err.msg, "short.safetensors") && contains(err.msg, "too short"));
    st = egrc_safetensors_open(tmp_path("absent.safetensors"), &err);
    CHECK(st == NULL && contains(err.msg, "absent.safetensors") && contains(err.msg, "cannot open"));
    st = egrc_safetensors_open(tmp_root, &err);
    CHECK(st == NULL && contains(err.msg, "not a regular file"));
}

static float f16_value(uint16_t h) {
    egrc_st_tensor t = {.name = "h", .dtype = EGRC_DTYPE_F16, .ndim = 1, .shape = {1}, .numel = 1, .data = &h,
                        .nbytes = 2};
    float out = -123.0f;
    CHECK(egrc_st_tensor_to_f32(&t, &out, 1, NULL) == 0);
    return out;
}

static float bf16_value(uint16_t h) {
    egrc_st_tensor t = {.name = "b", .dtype = EGRC_DTYPE_BF16, .ndim = 1, .shape = {1}, .numel = 1, .data = &h,
                        .nbytes = 2};
    float out = -123.0f;
    CHECK(egrc_st_tensor_to_f32(&t, &out, 1, NULL) == 0);
    return out;
}

static void test_conversions(void) {
    CHECK(f16_value(0x3C00) == 1.0f);
    CHECK(f16_value(0xC100) == -2.5f);
    CHECK(f16_value(0x7BFF) == 65504.0f);
    CHECK(f16_value(0x0001) == 0x1p-24f);            /* smallest subnormal */
    CHECK(f16_value(0x83FF) == -1023.0f * 0x1p-24f); /* largest subnormal, negative */
    CHECK(f16_value(0x0400) == 0x1p-14f);            /* smallest normal */
    CHECK(f16_value(0x8000) == 0.0f && signbit(f16_value(0x8000)));
    CHECK(isinf(f16_value(0x7C00)) && f16_value(0x7C00) > 0);
    CHECK(isinf(f16_value(0xFC00)) && f16_value(0xFC00) < 0);
    CHECK(isnan(f16_value(0x7E00)) && isnan(f16_value(0xFE01)));

    CHECK(bf16_value(0x3F80) == 1.0f);
    CHECK(bf16_value(0xC020) == -2.5f);
    CHECK(bf16_value(0x477F) == 65280.0f); /* 65504 is not a bf16 value; this is its neighbour */
    CHECK(bf16_value(0x7F7F) == 0x1.FEp127f);
    CHECK(bf16_value(0x0001) == 0x1p-133f);
    CHECK(isinf(bf16_value(0x7F80)) && isinf(bf16_value(0xFF80)) && bf16_value(0xFF80) < 0);
    CHECK(isnan(bf16_value(0x7FC0)));

    /* F64 and integer dtypes, read through a deliberately misaligned buffer. */
    const double d[6] = {1.0, -2.5, 65504.0, 1e-40, 1e300, -INFINITY};
    unsigned char raw[1 + sizeof d];
    memcpy(raw + 1, d, sizeof d);
    egrc_st_tensor t = {.name = "d", .dtype = EGRC_DTYPE_F64, .ndim = 1, .shape = {6}, .numel = 6,
                        .data = raw + 1, .nbytes = sizeof d};
    float f[6];
    CHECK(egrc_st_tensor_to_f32(&t, f, 6, NULL) == 0);
    CHECK(f[0] == 1.0f && f[1] == -2.5f && f[2] == 65504.0f && f[3] == (float)1e-40);
    CHECK(isinf(f[4]) && f[4] > 0 && isinf(f[5]) && f[5] < 0);
    egrc_error err = {{0}};
    CHECK(egrc_st_tensor_to_f32(&t, f, 5, &err) != 0 && contains(err.msg, "'d'") && contains(err.msg, "6 elements"));
    CHECK(egrc_st_tensor_to_i64(&t, NULL, 6, &err) != 0 && contains(err.msg, "F64"));

    const int32_t i32[2] = {-5, INT32_MAX};
    memcpy(raw + 1, i32, sizeof i32);
    t = (egrc_st_tensor){.name = "i", .dtype = EGRC_DTYPE_I32, .ndim = 1, .shape = {2}, .numel = 2, .data = raw + 1,
                         .nbytes = sizeof i32};
    int64_t v[4];
    CHECK(egrc_st_tensor_to_i64(&t, v, 2, NULL) == 0 && v[0] == -5 && v[1] == INT32_MAX);
    const int16_t i16[2] = {-300, 7};
    memcpy(raw + 1, i16, sizeof i16);
    t.dtype = EGRC_DTYPE_I16;
    CHECK(egrc_st_tensor_to_i64(&t, v, 2, NULL) == 0 && v[0] == -300 && v[1] == 7);
    const unsigned char bytes[4] = {0x80, 0xFF, 0x00, 0x7F};
    t = (egrc_st_tensor){.name = "b", .dtype = EGRC_DTYPE_I8, .ndim = 1, .shape = {4}, .numel = 4, .data = bytes,
                         .nbytes = 4};
    CHECK(egrc_st_tensor_to_i64(&t, v, 4, NULL) == 0 && v[0] == -128 && v[1] == -1 && v[2] == 0 && v[3] == 127);
    t.dtype = EGRC_DTYPE_U8;
    CHECK(egrc_st_tensor_to_i64(&t, v, 4, NULL) == 0 && v[0] == 128 && v[1] == 255 && v[3] == 127);
    t.dtype = EGRC_DTYPE_BOOL;
    CHECK(egrc_st_tensor_to_i64(&t, v, 4, &err) != 0 && contains(err.msg, "BOOL"));
    CHECK(egrc_dtype_size(EGRC_DTYPE_BF16) == 2 && strcmp(egrc_dtype_name(EGRC_DTYPE_BF16), "BF16") == 0);
}

static void test_atomic(void) {
    const char *path = tmp_path("atomic.txt");
    egrc_error err = {{0}};
    CHECK_MSG(egrc_write_file_atomic(path, "old contents", 12, &err) == 0, "%s", err.msg);
    egrc_atomic_file *f = egrc_atomic_open(path, &err);
    CHECK_MSG(f != NULL, "%s", err.msg);
    if (f) {
        CHECK(egrc_atomic_write(f, "new and partial", 15, &err) == 0);
        CHECK(count_named(tmp_root, ".tmp.") == 1);
        egrc_atomic_abort(f);
    }
    CHECK(count_named(tmp_root, ".tmp.") == 0);
    size_t len = 0;
    char *text = egrc_read_file(path, 100, &len, &err);
    CHECK(text && len == 12 && strcmp(text, "old contents") == 0);
    free(text);

    CHECK(egrc_write_file_atomic(path, "fresh", 5, &err) == 0);
    text = egrc_read_file(path, 100, &len, &err);
    CHECK(text && len == 5 && strcmp(text, "fresh") == 0);
    free(text);
    CHECK(egrc_read_file(path, 4, &len, &err) == NULL && contains(err.msg, "atomic.txt") && contains(err.msg, "4-byte"));
    CHECK(egrc_read_file(tmp_path("nothing.txt"), 100, &len, &err) == NULL && contains(err.msg, "nothing.txt"));
    CHECK(egrc_write_file_atomic(tmp_path("no/such/dir.txt"), "x", 1, &err) != 0 && contains(err.msg, "dir.txt"));

    /* A rejected safetensors write fails before touching the old file. */
    const float x = 1.0f;
    const egrc_st_entry twice[] = {{"x", EGRC_DTYPE_F32, 0, {0}, &x}, {"x", EGRC_DTYPE_F32, 0, {0}, &x}};
    CHECK(egrc_safetensors_write(path, twice, 2, NULL, &err) != 0 && contains(err.msg, "'x' is given twice"));
    const egrc_st_entry negative[] = {{"neg", EGRC_DTYPE_F32, 1, {-2}, &x}};
    CHECK(egrc_safetensors_write(path, negative, 1, NULL, &err) != 0 && contains(err.msg, "'neg'"));
    const char *bad_meta[] = {"k", NULL};
    CHECK(egrc_safetensors_write(path, NULL, 0, bad_meta, &err) != 0 && contains(err.msg, "'k'"));
    text = egrc_read_file(path, 100, &len, &err);
    CHECK(text && strcmp(text, "fresh") == 0);
    free(text);
    CHECK(count_named(tmp_root, ".tmp.") == 0);
}

int main(void) {
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_fixtures();
    test_sharded();
    test_hostile();
    test_conversions();
    test_atomic();
    remove_tree_flat(tmp_root);
    return test_finish("test_safetensors");
}
