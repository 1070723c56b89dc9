/* safetensors reading (mmap'd, fully validated) and writing (atomic). See safetensors.h. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"

/* Tensor bytes are handed out raw and converted with memcpy, which is only
 * right where the host byte order matches the format's little-endian one. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "egrc's safetensors code assumes a little-endian host"
#endif

/* Same cap as the reference implementation: a header this big is an attack
 * or a corrupt length, not a model. */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
/* cJSON numbers are doubles, which stop representing every integer above 2^53. */
#define ST_MAX_JSON_INT 9007199254740992.0
/* Keeps numel * dtype size (at most 8 bytes) inside int64_t. */
#define ST_MAX_NUMEL (INT64_MAX / 8)

typedef struct st_mapping {
    void *addr;
    size_t len;
} st_mapping;

struct egrc_safetensors {
    egrc_st_tensor *tensors; /* sorted by name once loading finishes */
    size_t count, cap;
    char **meta; /* key, value, key, value, ... in file order; the first key wins */
    size_t meta_count, meta_cap;
    st_mapping *maps; /* one per opened file, unmapped on close */
    size_t map_count, map_cap;
};

/* Returns a grown copy of `items` able to hold `need` elements, or NULL (with
 * `items` untouched) when memory runs out; *cap is updated only on success. */
static void *grow(void *items, size_t *cap, size_t need, size_t elem_size) {
    if (need <= *cap) return items;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need) n *= 2;
    void *bigger = realloc(items, n * elem_size);
    if (bigger) *cap = n;
    return bigger;
}

static int push_meta(egrc_safetensors *st, const char *key, const char *value) {
    char **meta = grow(st->meta, &st->meta_cap, st->meta_count + 2, sizeof *meta);
    if (!meta) return -1;
    st->meta = meta;
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    meta[st->meta_count++] = k;
    meta[st->meta_count++] = v;
    return 0;
}

/* Formats "<src>: tensor '<name>': <message>" into err. */
static int tensor_fail(egrc_error *err, const char *src, const char *name, const char *fmt, ...)
    EGRC_PRINTF(4, 5);
static int tensor_fail(egrc_error *err, const char *src, const char *name, const char *fmt, ...) {
    char what[sizeof err->msg];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    return egrc_fail(err, "%s: tensor '%s': %s", src, name, what);
}

/* Reads a JSON number that must be a non-negative integer a double holds
 * exactly; on failure *why says what is wrong with it. */
static int json_uint(const cJSON *item, uint64_t *out, const char **why) {
    if (!cJSON_IsNumber(item)) {
        *why = "is not a number";
        return -1;
    }
    double d = item->valuedouble;
    if (d < 0) *why = "is negative";
    else if (!(d <= ST_MAX_JSON_INT)) *why = "is too large";
    else if (d != (double)(uint64_t)d) *why = "is not an integer"; /* d is in range, so the cast is defined */
    else {
        *out = (uint64_t)d;
        return 0;
    }
    return -1;
}

static void format_shape(const int64_t *shape, int ndim, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

static int parse_dtype(const cJSON *entry, const char *src, const char *name, egrc_dtype *dtype,
                       egrc_error *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (!item) return tensor_fail(err, src, name, "missing \"dtype\"");
    if (!cJSON_IsString(item)) return tensor_fail(err, src, name, "\"dtype\" is not a string");
    if (egrc_dtype_from_name(item->valuestring, dtype) == 0) return 0;
    return tensor_fail(err, src, name, "unknown dtype '%s' (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)",
                       item->valuestring);
}

static int parse_shape(const cJSON *entry, const char *src, const char *name, egrc_st_tensor *t,
                       egrc_error *err) {
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    if (!shape) return tensor_fail(err, src, name, "missing \"shape\"");
    if (!cJSON_IsArray(shape)) return tensor_fail(err, src, name, "\"shape\" is not an array");
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > EGRC_ST_MAX_DIMS)
        return tensor_fail(err, src, name, "shape has %d dimensions; at most %d are supported", ndim,
                           EGRC_ST_MAX_DIMS);
    t->ndim = 0;
    t->numel = 1;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape) {
        uint64_t v;
        const char *why;
        if (json_uint(dim, &v, &why) != 0)
            return tensor_fail(err, src, name, "shape dimension %d %s", t->ndim, why);
        if (v != 0 && (uint64_t)t->numel > (uint64_t)ST_MAX_NUMEL / v)
            return tensor_fail(err, src, name, "shape dimensions multiply to more elements than can be addressed");
        t->shape[t->ndim++] = (int64_t)v;
        t->numel *= (int64_t)v;
    }
    return 0;
}

/* Parses one header entry into *t (name not yet owned) and its byte range
 * within the data region. */
static int parse_tensor(const cJSON *entry, const char *src, const uint8_t *data, size_t data_len,
                        egrc_st_tensor *t, uint64_t *begin_out, egrc_error *err) {
    const char *name = t->name;
    if (!cJSON_IsObject(entry)) return tensor_fail(err, src, name, "header entry is not a JSON object");
    if (parse_dtype(entry, src, name, &t->dtype, err) != 0) return -1;
    if (parse_shape(entry, src, name, t, err) != 0) return -1;

    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!offsets) return tensor_fail(err, src, name, "missing \"data_offsets\"");
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return tensor_fail(err, src, name, "\"data_offsets\" must be an array of 2 integers");
    uint64_t range[2];
    for (int i = 0; i < 2; i++) {
        const char *why;
        if (json_uint(cJSON_GetArrayItem(offsets, i), &range[i], &why) != 0)
            return tensor_fail(err, src, name, "data_offsets[%d] %s", i, why);
    }
    if (range[0] > range[1])
        return tensor_fail(err, src, name, "data_offsets [%" PRIu64 ", %" PRIu64 ") begin after they end",
                           range[0], range[1]);
    if (range[1] > data_len)
        return tensor_fail(err, src, name,
                           "data_offsets [%" PRIu64 ", %" PRIu64 ") extend past the data region (%zu bytes)",
                           range[0], range[1], data_len);
    uint64_t need = (uint64_t)t->numel * egrc_dtype_size(t->dtype);
    if (range[1] - range[0] != need) {
        char shape[256];
        format_shape(t->shape, t->ndim, shape, sizeof shape);
        return tensor_fail(err, src, name,
                           "dtype/shape mismatch: %s %s needs %" PRIu64 " bytes but data_offsets [%" PRIu64
                           ", %" PRIu64 ") hold %" PRIu64,
                           egrc_dtype_name(t->dtype), shape, need, range[0], range[1], range[1] - range[0]);
    }
    t->data = data + range[0];
    t->nbytes = (size_t)need;
    *begin_out = range[0];
    return 0;
}

static int parse_metadata(egrc_safetensors *st, const cJSON *meta, const char *src, egrc_error *err) {
    if (!cJSON_IsObject(meta)) return egrc_fail(err, "%s: \"__metadata__\" is not a JSON object", src);
    const cJSON *kv;
    cJSON_ArrayForEach(kv, meta) {
        if (!cJSON_IsString(kv))
            return egrc_fail(err, "%s: \"__metadata__\" entry '%s' is not a string", src, kv->string);
        if (push_meta(st, kv->string, kv->valuestring) != 0)
            return egrc_fail(err, "%s: out of memory reading \"__metadata__\"", src);
    }
    return 0;
}

typedef struct st_span {
    uint64_t begin, end;
    const char *name;
} st_span;

static int span_cmp(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Rejects tensors sharing bytes, as the reference implementation does: a
 * writer never produces them and they let one tensor's update corrupt another. */
static int check_overlaps(st_span *spans, size_t n, const char *src, egrc_error *err) {
    qsort(spans, n, sizeof *spans, span_cmp);
    size_t widest = 0; /* the earlier span reaching furthest */
    for (size_t i = 1; i < n; i++) {
        if (spans[i].begin < spans[widest].end)
            return egrc_fail(err,
                             "%s: tensors '%s' [%" PRIu64 ", %" PRIu64 ") and '%s' [%" PRIu64 ", %" PRIu64
                             ") overlap in the data region",
                             src, spans[widest].name, spans[widest].begin, spans[widest].end, spans[i].name,
                             spans[i].begin, spans[i].end);
        if (spans[i].end > spans[widest].end) widest = i;
    }
    return 0;
}

static int parse_entries(egrc_safetensors *st, const cJSON *root, const char *src, const uint8_t *data,
                         size_t data_len, egrc_error *err) {
    size_t n = (size_t)cJSON_GetArraySize(root);
    st_span *spans = malloc((n ? n : 1) * sizeof *spans);
    if (!spans) return egrc_fail(err, "%s: out of memory reading the header", src);
    size_t nspans = 0;
    int rc = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "__metadata__") == 0) {
            rc = parse_metadata(st, item, src, err);
            if (rc != 0) break;
            continue;
        }
        egrc_st_tensor t = {.name = item->string};
        uint64_t begin = 0;
        rc = parse_tensor(item, src, data, data_len, &t, &begin, err);
        if (rc != 0) break;
        egrc_st_tensor *tensors = grow(st->tensors, &st->cap, st->count + 1, sizeof *tensors);
        if (tensors) st->tensors = tensors;
        t.name = strdup(item->string);
        if (!tensors || !t.name) {
            rc = egrc_fail(err, "%s: out of memory reading the header", src);
            free((char *)t.name);
            break;
        }
        st->tensors[st->count++] = t;
        spans[nspans++] = (st_span){begin, begin + t.nbytes, item->string};
    }
    if (rc == 0) rc = check_overlaps(spans, nspans, src, err);
    free(spans);
    return rc;
}

/* Validates one safetensors image and appends its tensors and metadata to st. */
static int parse_image(egrc_safetensors *st, const uint8_t *bytes, size_t len, const char *src, egrc_error *err) {
    if (len < 8)
        return egrc_fail(err, "%s: file is %zu bytes, too short for the 8-byte header length a safetensors file starts with",
                         src, len);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)bytes[i] << (8 * i);
    if (n > ST_MAX_HEADER)
        return egrc_fail(err, "%s: header length %" PRIu64 " exceeds the 100 MB limit (corrupt or not a safetensors file)",
                         src, n);
    if (n > len - 8)
        return egrc_fail(err, "%s: header length %" PRIu64 " extends past the end of the file (%zu bytes)", src, n,
                         len);
    /* A private NUL-terminated copy, so no JSON parser bug can ever read past the header. */
    char *text = malloc((size_t)n + 1);
    if (!text) return egrc_fail(err, "%s: out of memory reading the %" PRIu64 "-byte header", src, n);
    memcpy(text, bytes + 8, (size_t)n);
    text[n] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)n, &end, 0);
    int rc = 0;
    if (!root) {
        rc = egrc_fail(err, "%s: header is not valid JSON (error near byte %td of %" PRIu64 ")", src,
                       end ? end - text : 0, n);
    } else if (!cJSON_IsObject(root)) {
        rc = egrc_fail(err, "%s: header is not a JSON object", src);
    } else {
        /* Writers pad the header with spaces; anything else after the object is damage. */
        for (const char *p = end; p < text + n; p++) {
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
                rc = egrc_fail(err, "%s: header has stray bytes after the JSON object (at byte %td of %" PRIu64 ")",
                               src, p - text, n);
                break;
            }
        }
        if (rc == 0) rc = parse_entries(st, root, src, bytes + 8 + n, len - 8 - (size_t)n, err);
    }
    cJSON_Delete(root);
    free(text);
    return rc;
}

static int tensor_name_cmp(const void *a, const void *b) {
    return strcmp(((const egrc_st_tensor *)a)->name, ((const egrc_st_tensor *)b)->name);
}

/* Sorts by name so find() can binary-search, and rejects names given twice
 * (JSON objects may repeat keys; which copy "wins" would be parser trivia). */
static int finalize(egrc_safetensors *st, const char *src, egrc_error *err) {
    if (st->count > 1) qsort(st->tensors, st->count, sizeof *st->tensors, tensor_name_cmp);
    for (size_t i = 1; i < st->count; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
            return egrc_fail(err, "%s: tensor '%s' is defined more than once", src, st->tensors[i].name);
    return 0;
}

static egrc_safetensors *st_new(const char *src, egrc_error *err) {
    egrc_safetensors *st = calloc(1, sizeof *st);
    if (!st) egrc_fail(err, "%s: out of memory", src);
    return st;
}

void egrc_safetensors_close(egrc_safetensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->count; i++) free((char *)st->tensors[i].name);
    for (size_t i = 0; i < st->meta_count; i++) free(st->meta[i]);
    for (size_t i = 0; i < st->map_count; i++) munmap(st->maps[i].addr, st->maps[i].len);
    free(st->tensors);
    free(st->meta);
    free(st->maps);
    free(st);
}

/* Maps one file read-only, keeps the mapping in st, and parses it. */
static int map_file(egrc_safetensors *st, const char *path, egrc_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return egrc_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return egrc_fail(err, "%s: not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    if ((off_t)len != sb.st_size || len < 8) {
        close(fd);
        if (len < 8) return parse_image(st, NULL, len, path, err); /* reports the short file */
        return egrc_fail(err, "%s: file is too large to map", path);
    }
    void *addr = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (addr == MAP_FAILED) return egrc_fail(err, "%s: cannot mmap: %s", path, strerror(map_errno));
    st_mapping *maps = grow(st->maps, &st->map_cap, st->map_count + 1, sizeof *maps);
    if (!maps) {
        munmap(addr, len);
        return egrc_fail(err, "%s: out of memory", path);
    }
    st->maps = maps;
    st->maps[st->map_count++] = (st_mapping){addr, len};
    return parse_image(st, addr, len, path, err);
}

egrc_safetensors *egrc_safetensors_open(const char *path, egrc_error *err) {
    egrc_safetensors *st = st_new(path, err);
    if (st && (map_file(st, path, err) != 0 || finalize(st, path, err) != 0)) {
        egrc_safetensors_close(st);
        return NULL;
    }
    return st;
}

egrc_safetensors *egrc_safetensors_from_memory(const void *bytes, size_t len, const char *source_name,
                                               egrc_error *err) {
    const char *src = source_name ? source_name : "<memory>";
    if (!bytes && len) {
        egrc_fail(err, "%s: no bytes given for a %zu-byte image", src, len);
        return NULL;
    }
    egrc_safetensors *st = st_new(src, err);
    if (st && (parse_image(st, bytes, len, src, err) != 0 || finalize(st, src, err) != 0)) {
        egrc_safetensors_close(st);
        return NULL;
    }
    return st;
}

static char *join_path(const char *dir, const char *name) {
    size_t size = strlen(dir) + strlen(name) + 2;
    char *path = malloc(size);
    if (path) snprintf(path, size, "%s/%s", dir, name);
    return path;
}

/* One weight_map entry: the shard a tensor lives in. */
typedef struct st_listing {
    const char *tensor, *shard;
} st_listing;

static int listing_tensor_cmp(const void *a, const void *b) {
    return strcmp(((const st_listing *)a)->tensor, ((const st_listing *)b)->tensor);
}

static int listing_shard_cmp(const void *a, const void *b) {
    return strcmp(((const st_listing *)a)->shard, ((const st_listing *)b)->shard);
}

static int listing_find_cmp(const void *key, const void *elem) {
    return strcmp(key, ((const st_listing *)elem)->tensor);
}

/* Opens each distinct shard once and cross-checks it against the weight map:
 * every tensor a shard holds must be listed under that shard, and every listed
 * tensor must turn up, so a mixed-up or half-copied folder fails loudly.
 * Lookups are binary searches: MoE checkpoints list ~100k tensors. */
static int load_shards(egrc_safetensors *st, const char *dir, const char *index_path, const cJSON *weight_map,
                       egrc_error *err) {
    size_t n = (size_t)cJSON_GetArraySize(weight_map);
    if (n == 0) return egrc_fail(err, "%s: \"weight_map\" is empty", index_path);
    st_listing *by_tensor = malloc(2 * n * sizeof *by_tensor);
    if (!by_tensor) return egrc_fail(err, "%s: out of memory", index_path);
    st_listing *by_shard = by_tensor + n;
    size_t count = 0;
    int rc = 0;
    const cJSON *kv;
    cJSON_ArrayForEach(kv, weight_map) {
        if (!cJSON_IsString(kv)) {
            rc = egrc_fail(err, "%s: weight_map entry for tensor '%s' is not a string", index_path, kv->string);
            goto done;
        }
        /* The index is data, not trusted: it must not reach outside the folder. */
        const char *s = kv->valuestring;
        if (!*s || strchr(s, '/') || strstr(s, "..")) {
            rc = egrc_fail(err, "%s: tensor '%s': shard name '%s' must be a plain file name in the same folder",
                           index_path, kv->string, s);
            goto done;
        }
        by_tensor[count++] = (st_listing){kv->string, s};
    }
    memcpy(by_shard, by_tensor, count * sizeof *by_shard);
    qsort(by_tensor, count, sizeof *by_tensor, listing_tensor_cmp);
    qsort(by_shard, count, sizeof *by_shard, listing_shard_cmp);
    for (size_t i = 1; i < count; i++) {
        if (strcmp(by_tensor[i - 1].tensor, by_tensor[i].tensor) == 0) {
            rc = egrc_fail(err, "%s: tensor '%s' is listed twice in weight_map", index_path, by_tensor[i].tensor);
            goto done;
        }
    }
    for (size_t i = 0; i < count; i++) {
        const char *shard = by_shard[i].shard;
        if (i > 0 && strcmp(shard, by_shard[i - 1].shard) == 0) continue;
        char *path = join_path(dir, shard);
        if (!path) {
            rc = egrc_fail(err, "%s: out of memory", index_path);
            goto done;
        }
        size_t first = st->count;
        rc = map_file(st, path, err);
        for (size_t j = first; rc == 0 && j < st->count; j++) {
            const st_listing *l =
                bsearch(st->tensors[j].name, by_tensor, count, sizeof *by_tensor, listing_find_cmp);
            if (!l || strcmp(l->shard, shard) != 0)
                rc = egrc_fail(err, "%s: tensor '%s' is in this shard but %s does not list it here", path,
                               st->tensors[j].name, index_path);
        }
        free(path);
        if (rc != 0) goto done;
    }
    rc = finalize(st, dir, err);
    for (size_t i = 0; rc == 0 && i < count; i++)
        if (!egrc_safetensors_find(st, by_tensor[i].tensor))
            rc = egrc_fail(err, "%s/%s: tensor '%s' is missing (%s lists it in this shard)", dir, by_tensor[i].shard,
                           by_tensor[i].tensor, index_path);
done:
    free(by_tensor);
    return rc;
}

egrc_safetensors *egrc_safetensors_open_dir(const char *dir, egrc_error *err) {
    char *single = join_path(dir, "model.safetensors");
    char *index_path = join_path(dir, "model.safetensors.index.json");
    egrc_safetensors *st = NULL;
    struct stat sb;
    if (!single || !index_path) {
        egrc_fail(err, "%s: out of memory", dir);
    } else if (stat(single, &sb) == 0) {
        st = egrc_safetensors_open(single, err);
    } else if (stat(index_path, &sb) != 0) {
        egrc_fail(err, "%s: holds neither model.safetensors nor model.safetensors.index.json", dir);
    } else {
        size_t len = 0;
        char *text = egrc_read_file(index_path, (size_t)ST_MAX_HEADER, &len, err);
        cJSON *root = text ? cJSON_ParseWithLength(text, len) : NULL;
        const cJSON *weight_map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
        if (text && !root)
            egrc_fail(err, "%s: not valid JSON", index_path);
        else if (text && !cJSON_IsObject(weight_map))
            egrc_fail(err, "%s: has no \"weight_map\" object", index_path);
        else if (text && (st = st_new(dir, err)) && load_shards(st, dir, index_path, weight_map, err) != 0) {
            egrc_safetensors_close(st);
            st = NULL;
        }
        cJSON_Delete(root);
        free(text);
    }
    free(single);
    free(index_path);
    return st;
}

size_t egrc_safetensors_count(const egrc_safetensors *st) { return st->count; }

const egrc_st_tensor *egrc_safetensors_at(const egrc_safetensors *st, size_t index) {
    return index < st->count ? &st->tensors[index] : NULL;
}

static int find_cmp(const void *key, const void *elem) {
    return strcmp(key, ((const egrc_st_tensor *)elem)->name);
}

const egrc_st_tensor *egrc_safetensors_find(const egrc_safetensors *st, const char *name) {
    if (st->count == 0) return NULL;
    return bsearch(name, st->tensors, st->count, sizeof *st->tensors, find_cmp);
}

const char *egrc_safetensors_metadata(const egrc_safetensors *st, const char *key) {
    for (size_t i = 0; i + 1 < st->meta_count; i += 2)
        if (strcmp(st->meta[i], key) == 0) return st->meta[i + 1];
    return NULL;
}

/* IEEE half -> single, exact for every input: subnormals are rescaled, and
 * inf/nan keep their sign and payload. */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0) {
        float v = (float)mant * 0x1p-24f; /* mant * 2^-24 is exactly representable */
        return sign ? -v : v;
    }
    uint32_t bits = sign | (exp == 31 ? 0x7f800000u : (exp + 112) << 23) | mant << 13;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static int count_mismatch(const egrc_st_tensor *t, int64_t count, egrc_error *err) {
    return egrc_fail(err, "tensor '%s' has %" PRId64 " elements but the caller expects %" PRId64, t->name, t->numel,
                     count);
}

int egrc_st_tensor_to_f32(const egrc_st_tensor *t, float *out, int64_t count, egrc_error *err) {
    if (count != t->numel) return count_mismatch(t, count, err);
    /* memcpy, not casts: mapped tensor data need not be aligned for its dtype. */
    const uint8_t *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case EGRC_DTYPE_F32:
        if (n) memcpy(out, p, n * 4);
        return 0;
    case EGRC_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = f16_to_f32(h);
        }
        return 0;
    case EGRC_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16; /* bf16 is the top half of an f32 */
            memcpy(&out[i], &bits, 4);
        }
        return 0;
    case EGRC_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d; /* IEEE round-to-nearest; out-of-range values become inf */
        }
        return 0;
    default:
        return egrc_fail(err, "tensor '%s' has dtype %s, which does not convert to F32", t->name,
                         egrc_dtype_name(t->dtype));
    }
}

int egrc_st_tensor_to_i64(const egrc_st_tensor *t, int64_t *out, int64_t count, egrc_error *err) {
    if (count != t->numel) return count_mismatch(t, count, err);
    const uint8_t *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case EGRC_DTYPE_I64:
        if (n) memcpy(out, p, n * 8);
        return 0;
    case EGRC_DTYPE_I32:
        for (size_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            out[i] = v;
        }
        return 0;
    case EGRC_DTYPE_I16:
        for (size_t i = 0; i < n; i++) {
            int16_t v;
            memcpy(&v, p + 2 * i, 2);
            out[i] = v;
        }
        return 0;
    case EGRC_DTYPE_I8: /* two's complement by hand: converting 128..255 to int8_t is implementation-defined */
        for (size_t i = 0; i < n; i++) out[i] = p[i] < 128 ? p[i] : (int64_t)p[i] - 256;
        return 0;
    case EGRC_DTYPE_U8:
        for (size_t i = 0; i < n; i++) out[i] = p[i];
        return 0;
    default:
        return egrc_fail(err, "tensor '%s' has dtype %s, which does not convert to I64", t->name,
                         egrc_dtype_name(t->dtype));
    }
}
