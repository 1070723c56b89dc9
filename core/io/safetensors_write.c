/* Writing .safetensors files (egrc_safetensors_write in safetensors.h).
 *
 * The output is deterministic: tensors sorted by name in the header and laid
 * out in that order in the data region, the header padded with spaces to a
 * multiple of 8 bytes as the reference writer does (so data starts 8-aligned),
 * and "__metadata__" present only when metadata is given. The file is written
 * through the atomic-file API, so an interrupted write never tears the old one. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "safetensors.h"

typedef struct strbuf {
    char *data;
    size_t len, cap;
    int oom; /* sticky, so building code checks once at the end */
} strbuf;

static void put(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *bigger = realloc(b->data, cap);
        if (!bigger) {
            b->oom = 1;
            return;
        }
        b->data = bigger;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void put_str(strbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_i64(strbuf *b, int64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    put(b, tmp, (size_t)n);
}

/* A JSON string literal. Bytes >= 0x80 pass through untouched: names are UTF-8. */
static void put_json_string(strbuf *b, const char *s) {
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(b, esc, 2);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc, 6);
        } else {
            put(b, s, 1);
        }
    }
    put(b, "\"", 1);
}

/* Checks one entry and computes its byte size. */
static int check_entry(const char *path, const egrc_st_entry *e, size_t index, int64_t *nbytes, egrc_error *err) {
    if (!e->name) return egrc_fail(err, "%s: entry %zu has no name", path, index);
    if (strcmp(e->name, "__metadata__") == 0)
        return egrc_fail(err, "%s: '__metadata__' is reserved and cannot name a tensor", path);
    size_t size = egrc_dtype_size(e->dtype);
    if (size == 0) return egrc_fail(err, "%s: tensor '%s': unknown dtype %d", path, e->name, (int)e->dtype);
    if (e->ndim < 0 || e->ndim > EGRC_ST_MAX_DIMS)
        return egrc_fail(err, "%s: tensor '%s': %d dimensions; 0 to %d are supported", path, e->name, e->ndim,
                         EGRC_ST_MAX_DIMS);
    int64_t numel = 1;
    for (int d = 0; d < e->ndim; d++) {
        int64_t dim = e->shape[d];
        if (dim < 0) return egrc_fail(err, "%s: tensor '%s': shape dimension %d is negative", path, e->name, d);
        if (dim != 0 && numel > INT64_MAX / 8 / dim)
            return egrc_fail(err, "%s: tensor '%s': shape has more elements than can be addressed", path, e->name);
        numel *= dim;
    }
    *nbytes = numel * (int64_t)size;
    if (*nbytes > 0 && !e->data) return egrc_fail(err, "%s: tensor '%s' has no data", path, e->name);
    return 0;
}

static int check_metadata(const char *path, const char *const *metadata, egrc_error *err) {
    for (size_t i = 0; metadata && metadata[i]; i += 2) {
        if (!metadata[i + 1])
            return egrc_fail(err, "%s: metadata key '%s' has no value", path, metadata[i]);
        for (size_t j = 0; j < i; j += 2)
            if (strcmp(metadata[i], metadata[j]) == 0)
                return egrc_fail(err, "%s: metadata key '%s' is given twice", path, metadata[i]);
    }
    return 0;
}

typedef struct write_item {
    const egrc_st_entry *entry;
    int64_t nbytes;
} write_item;

static int item_name_cmp(const void *a, const void *b) {
    return strcmp(((const write_item *)a)->entry->name, ((const write_item *)b)->entry->name);
}

static void build_header(strbuf *b, const write_item *items, size_t count, const char *const *metadata) {
    put(b, "{", 1);
    if (metadata && metadata[0]) {
        put_str(b, "\"__metadata__\":{");
        for (size_t i = 0; metadata[i]; i += 2) {
            if (i) put(b, ",", 1);
            put_json_string(b, metadata[i]);
            put(b, ":", 1);
            put_json_string(b, metadata[i + 1]);
        }
        put(b, "}", 1);
    }
    int64_t offset = 0;
    for (size_t i = 0; i < count; i++) {
        const egrc_st_entry *e = items[i].entry;
        if (i || (metadata && metadata[0])) put(b, ",", 1);
        put_json_string(b, e->name);
        put_str(b, ":{\"dtype\":\"");
        put_str(b, egrc_dtype_name(e->dtype));
        put_str(b, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d) put(b, ",", 1);
            put_i64(b, e->shape[d]);
        }
        put_str(b, "],\"data_offsets\":[");
        put_i64(b, offset);
        put(b, ",", 1);
        offset += items[i].nbytes;
        put_i64(b, offset);
        put_str(b, "]}");
    }
    put(b, "}", 1);
    while (b->len % 8) put(b, " ", 1);
}

static int write_all(const char *path, const write_item *items, size_t count, const strbuf *header,
                     egrc_error *err) {
    egrc_atomic_file *f = egrc_atomic_open(path, err);
    if (!f) return -1;
    unsigned char prefix[8];
    for (int i = 0; i < 8; i++) prefix[i] = (unsigned char)((uint64_t)header->len >> (8 * i));
    int rc = egrc_atomic_write(f, prefix, sizeof prefix, err);
    if (rc == 0) rc = egrc_atomic_write(f, header->data, header->len, err);
    for (size_t i = 0; rc == 0 && i < count; i++)
        if (items[i].nbytes > 0) rc = egrc_atomic_write(f, items[i].entry->data, (size_t)items[i].nbytes, err);
    if (rc != 0) {
        egrc_atomic_abort(f);
        return -1;
    }
    return egrc_atomic_commit(f, err);
}

int egrc_safetensors_write(const char *path, const egrc_st_entry *entries, size_t count,
                           const char *const *metadata, egrc_error *err) {
    if (check_metadata(path, metadata, err) != 0) return -1;
    write_item *items = malloc((count ? count : 1) * sizeof *items);
    if (!items) return egrc_fail(err, "%s: out of memory preparing %zu tensors", path, count);
    int rc = 0;
    int64_t total = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        items[i].entry = &entries[i];
        rc = check_entry(path, &entries[i], i, &items[i].nbytes, err);
        /* Offsets above 2^53 would not survive a JSON reader that uses doubles. */
        if (rc == 0 && items[i].nbytes > ((int64_t)1 << 53) - total)
            rc = egrc_fail(err, "%s: tensor data adds up to more than 2^53 bytes", path);
        if (rc == 0) total += items[i].nbytes;
    }
    if (rc == 0 && count > 1) {
        qsort(items, count, sizeof *items, item_name_cmp);
        for (size_t i = 1; rc == 0 && i < count; i++)
            if (strcmp(items[i - 1].entry->name, items[i].entry->name) == 0)
                rc = egrc_fail(err, "%s: tensor '%s' is given twice", path, items[i].entry->name);
    }
    strbuf header = {0};
    if (rc == 0) {
        build_header(&header, items, count, metadata);
        if (header.oom) rc = egrc_fail(err, "%s: out of memory building the header", path);
    }
    if (rc == 0) rc = write_all(path, items, count, &header, err);
    free(header.data);
    free(items);
    return rc;
}
