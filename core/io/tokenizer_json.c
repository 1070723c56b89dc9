/* Reads everything in tokenizer.json around the model: added tokens, the
 * normalizer, the pre-tokenizer steps and the decoder. Only what byte-level
 * BPE models use is accepted; anything else is refused with a message naming
 * the key, since silently skipping a step would encode differently from
 * `tokenizers`. post_processor, truncation and padding are ignored on
 * purpose: adding BOS/EOS is the caller's job. */
#include "tokenizer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* The pre-tokenizer regex of GPT-2, which ByteLevel applies when use_regex. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Sequences nest one level in practice; the cap keeps recursion shallow on
 * hostile files (cJSON alone allows 1000 levels). */
#define MAX_SEQUENCE_DEPTH 8

static const char *type_of(const cJSON *node, const char *path, const char *src, egrc_error *err) {
    if (!cJSON_IsObject(node)) {
        egrc_fail(err, "%s: %s must be an object", src, path);
        return NULL;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(node, "type");
    if (!cJSON_IsString(type)) {
        egrc_fail(err, "%s: %s.type is missing or not a string", src, path);
        return NULL;
    }
    return type->valuestring;
}

/* The array node[key], required. */
static const cJSON *array_of(const cJSON *node, const char *key, const char *path, const char *src,
                             egrc_error *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(node, key);
    if (!cJSON_IsArray(a)) {
        egrc_fail(err, "%s: %s.%s is missing or not an array", src, path, key);
        return NULL;
    }
    return a;
}

static int parse_normalizer(egrc_tokenizer *tok, const cJSON *node, const char *path, int depth,
                            const char *src, egrc_error *err) {
    if (!node || cJSON_IsNull(node)) return 0;
    const char *type = type_of(node, path, src, err);
    if (!type) return -1;
    if (strcmp(type, "NFC") == 0) {
        tok->nfc = 1;
        return 0;
    }
    if (strcmp(type, "Sequence") != 0)
        return egrc_fail(err,
                         "%s: %s.type '%.64s' is not supported (egrc reads NFC, Sequence or a null "
                         "normalizer)",
                         src, path, type);
    if (depth >= MAX_SEQUENCE_DEPTH)
        return egrc_fail(err, "%s: %s nests Sequences more than %d deep", src, path, MAX_SEQUENCE_DEPTH);
    const cJSON *list = array_of(node, "normalizers", path, src, err);
    if (!list) return -1;
    size_t i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        char child[256];
        snprintf(child, sizeof child, "%.200s.normalizers[%zu]", path, i);
        if (parse_normalizer(tok, e, child, depth + 1, src, err) != 0) return -1;
    }
    return 0;
}

static int add_step(egrc_tokenizer *tok, int kind, int add_prefix_space, const char *src,
                    egrc_error *err) {
    egrc_tok_step *steps = realloc(tok->steps, (tok->n_steps + 1) * sizeof *steps);
    if (!steps) return egrc_fail(err, "%s: out of memory reading pre_tokenizer", src);
    tok->steps = steps;
    steps[tok->n_steps++] = (egrc_tok_step){.kind = kind, .re = NULL, .add_prefix_space = add_prefix_space};
    return 0;
}

/* Compiles into the last step, so egrc_tokenizer_free releases it whatever
 * fails later. */
static int compile_into_last(egrc_tokenizer *tok, const char *pattern, size_t len, int literal,
                             const char *path, const char *src, egrc_error *err) {
    pcre2_code *re = egrc_tok_regex_compile(pattern, len, literal, path, src, err);
    if (!re) return -1;
    tok->steps[tok->n_steps - 1].re = re;
    return 0;
}

static int parse_split(egrc_tokenizer *tok, const cJSON *node, const char *path, const char *src,
                       egrc_error *err) {
    const cJSON *behavior = cJSON_GetObjectItemCaseSensitive(node, "behavior");
    if (!cJSON_IsString(behavior))
        return egrc_fail(err, "%s: %s.behavior is missing or not a string", src, path);
    if (strcmp(behavior->valuestring, "Isolated") != 0)
        return egrc_fail(err, "%s: %s.behavior '%.64s' is not supported (egrc supports \"Isolated\")",
                         src, path, behavior->valuestring);
    int invert;
    if (egrc_tok_json_bool(node, "invert", 0, &invert, path, src, err) != 0) return -1;
    if (invert) return egrc_fail(err, "%s: %s.invert true is not supported", src, path);

    const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(node, "pattern");
    if (!cJSON_IsObject(pattern))
        return egrc_fail(err, "%s: %s.pattern is missing or not an object", src, path);
    const cJSON *regex = cJSON_GetObjectItemCaseSensitive(pattern, "Regex");
    const cJSON *literal = cJSON_GetObjectItemCaseSensitive(pattern, "String");
    const cJSON *text = regex ? regex : literal;
    if (!cJSON_IsString(text) || (regex && literal))
        return egrc_fail(err, "%s: %s.pattern must hold one string, under \"Regex\" or \"String\"", src,
                         path);
    char where[300];
    snprintf(where, sizeof where, "%s.pattern.%s", path, regex ? "Regex" : "String");
    if (add_step(tok, EGRC_TOK_STEP_SPLIT, 0, src, err) != 0) return -1;
    return compile_into_last(tok, text->valuestring, strlen(text->valuestring),
                             !regex, where, src, err);
}

static int parse_pretok(egrc_tokenizer *tok, const cJSON *node, const char *path, int depth,
                        const char *src, egrc_error *err) {
    const char *type = type_of(node, path, src, err);
    if (!type) return -1;
    if (strcmp(type, "Split") == 0) return parse_split(tok, node, path, src, err);
    if (strcmp(type, "ByteLevel") == 0) {
        int prefix, use_regex;
        if (egrc_tok_json_bool(node, "add_prefix_space", 1, &prefix, path, src, err) != 0 ||
            egrc_tok_json_bool(node, "use_regex", 1, &use_regex, path, src, err) != 0 ||
            add_step(tok, EGRC_TOK_STEP_BYTELEVEL, prefix, src, err) != 0)
            return -1;
        return use_regex ? compile_into_last(tok, gpt2_pattern, sizeof gpt2_pattern - 1, 0,
                                             "the GPT-2 pattern", src, err)
                         : 0;
    }
    if (strcmp(type, "Digits") == 0) {
        /* Digits splits off what Rust's char::is_numeric accepts, which is
         * exactly \p{N} (Nd, Nl, No); one by one or in runs. */
        int individual;
        if (egrc_tok_json_bool(node, "individual_digits", 0, &individual, path, src, err) != 0 ||
            add_step(tok, EGRC_TOK_STEP_SPLIT, 0, src, err) != 0)
            return -1;
        const char *digits = individual ? "\\p{N}" : "\\p{N}+";
        return compile_into_last(tok, digits, strlen(digits), 0, path, src, err);
    }
    if (strcmp(type, "Sequence") != 0)
        return egrc_fail(err,
                         "%s: %s.type '%.64s' is not supported (egrc reads Split, ByteLevel, Digits "
                         "and Sequence pre-tokenizers)",
                         src, path, type);
    if (depth >= MAX_SEQUENCE_DEPTH)
        return egrc_fail(err, "%s: %s nests Sequences more than %d deep", src, path, MAX_SEQUENCE_DEPTH);
    const cJSON *list = array_of(node, "pretokenizers", path, src, err);
    if (!list) return -1;
    size_t i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        char child[256];
        snprintf(child, sizeof child, "%.200s.pretokenizers[%zu]", path, i);
        if (parse_pretok(tok, e, child, depth + 1, src, err) != 0) return -1;
    }
    return 0;
}

/* Byte-level BPE only round-trips when the text is mapped to the byte
 * alphabet exactly once on the way in and mapped back on the way out. */
static int load_pipeline(egrc_tokenizer *tok, const cJSON *root, const char *src, egrc_error *err) {
    if (parse_normalizer(tok, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "normalizer", 0, src,
                         err) != 0)
        return -1;
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (!pre || cJSON_IsNull(pre))
        return egrc_fail(err, "%s: pre_tokenizer is missing (egrc reads byte-level BPE tokenizers, whose "
                              "pre_tokenizer includes ByteLevel)", src);
    if (parse_pretok(tok, pre, "pre_tokenizer", 0, src, err) != 0) return -1;
    size_t byte_level = 0;
    for (size_t i = 0; i < tok->n_steps; i++) byte_level += tok->steps[i].kind == EGRC_TOK_STEP_BYTELEVEL;
    if (byte_level != 1)
        return egrc_fail(err, "%s: pre_tokenizer has %zu ByteLevel steps; egrc needs exactly one", src,
                         byte_level);

    const cJSON *decoder = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if (!decoder || cJSON_IsNull(decoder))
        return egrc_fail(err, "%s: decoder is missing (egrc needs a ByteLevel decoder)", src);
    const char *type = type_of(decoder, "decoder", src, err);
    if (!type) return -1;
    if (strcmp(type, "ByteLevel") != 0)
        return egrc_fail(err, "%s: decoder.type '%.64s' is not supported (egrc needs ByteLevel)", src,
                         type);
    return 0;
}

/* Token text quoted in errors is cut to a readable length. */
static int clip(uint32_t len) {
    return len > 64 ? 64 : (int)len;
}

static char *copy_bytes(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* tokenizers does not trust the ids in added_tokens: it gives a token in
 * model.vocab its vocabulary id, and any other the next id past both the
 * vocabulary (counted, not its largest id) and the added tokens so far. A
 * file that disagrees is refused rather than guessed at. */
static int check_added_id(const egrc_tokenizer *tok, const char *text, size_t len, int32_t id,
                          int32_t *max_added, const char *path, const char *src, egrc_error *err) {
    int32_t in_vocab = egrc_tok_strmap_get(&tok->vocab, text, len);
    int32_t vocab_count = (int32_t)tok->vocab.count;
    int32_t expected = in_vocab >= 0 ? in_vocab : *max_added >= vocab_count ? *max_added + 1 : vocab_count;
    if (id != expected)
        return egrc_fail(err, "%s: %s.id is %d, but tokenizers gives '%.64s' id %d", src, path, id, text,
                         expected);
    if (id > *max_added) *max_added = id;
    /* With a sparse vocabulary that next id can be a vocabulary id already. */
    if (in_vocab < 0 && id < tok->n_ids && tok->id_text[id].off != UINT32_MAX)
        return egrc_fail(err, "%s: %s.id %d already belongs to '%.*s' in model.vocab", src, path, id,
                         clip(tok->id_text[id].len), tok->vocab.arena + tok->id_text[id].off);
    return 0;
}

/* What encode searches for: normalized tokens are looked for in normalized
 * text, so in normal form. NULL when out of memory or not normalizable. */
static char *match_form(const egrc_tokenizer *tok, int normalized, const char *text, size_t len,
                        size_t *match_len) {
    if (!normalized || !tok->nfc) {
        *match_len = len;
        return copy_bytes(text, len);
    }
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &nfc,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    char *match = n < 0 ? NULL : copy_bytes((const char *)nfc, (size_t)n);
    *match_len = n < 0 ? 0 : (size_t)n;
    free(nfc);
    return match;
}

/* Fills one added token from added_tokens[i]; returns 1 when it is to be
 * skipped (empty content, which tokenizers ignores too). */
static int read_added(egrc_tokenizer *tok, const cJSON *e, size_t i, egrc_tok_added *a,
                      int32_t *max_added, const char *src, egrc_error *err) {
    char path[64];
    snprintf(path, sizeof path, "added_tokens[%zu]", i);
    if (!cJSON_IsObject(e)) return egrc_fail(err, "%s: %s must be an object", src, path);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
    if (!cJSON_IsString(content))
        return egrc_fail(err, "%s: %s.content is missing or not a string", src, path);
    int32_t id;
    if (egrc_tok_json_id(cJSON_GetObjectItemCaseSensitive(e, "id"), &id) != 0)
        return egrc_fail(err, "%s: %s.id is missing or not an integer in [0, %d)", src, path,
                         EGRC_TOK_MAX_ID);
    int special, single_word, lstrip, rstrip, normalized;
    if (egrc_tok_json_bool(e, "special", 0, &special, path, src, err) != 0 ||
        egrc_tok_json_bool(e, "single_word", 0, &single_word, path, src, err) != 0 ||
        egrc_tok_json_bool(e, "lstrip", 0, &lstrip, path, src, err) != 0 ||
        egrc_tok_json_bool(e, "rstrip", 0, &rstrip, path, src, err) != 0 ||
        egrc_tok_json_bool(e, "normalized", !special, &normalized, path, src, err) != 0)
        return -1;
    const char *text = content->valuestring;
    size_t len = strlen(text);
    if (len == 0) return 1;
    if (egrc_tok_utf8_check(text, len) != len)
        return egrc_fail(err, "%s: %s.content is not valid UTF-8", src, path);
    if (egrc_tok_strmap_get(&tok->added_map, text, len) >= 0)
        return egrc_fail(err, "%s: %s.content '%.64s' appears twice in added_tokens", src, path, text);
    if (check_added_id(tok, text, len, id, max_added, path, src, err) != 0) return -1;

    *a = (egrc_tok_added){.id = id, .content_len = len, .special = (unsigned char)special,
                          .single_word = (unsigned char)single_word, .lstrip = (unsigned char)lstrip,
                          .rstrip = (unsigned char)rstrip, .normalized = (unsigned char)normalized};
    if (!(a->content = copy_bytes(text, len)) || !(a->match = match_form(tok, normalized, text, len, &a->match_len)))
        return egrc_fail(err, "%s: out of memory reading %s", src, path);
    return 0;
}

static int load_added(egrc_tokenizer *tok, const cJSON *root, const char *src, egrc_error *err) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    size_t n = 0;
    if (list && !cJSON_IsNull(list)) {
        if (!cJSON_IsArray(list)) return egrc_fail(err, "%s: added_tokens must be an array", src);
        for (const cJSON *e = list->child; e; e = e->next) n++;
    }
    if (egrc_tok_strmap_init(&tok->added_map, n) != 0 ||
        !(tok->added = calloc(n ? n : 1, sizeof *tok->added)))
        return egrc_fail(err, "%s: out of memory reading added_tokens", src);
    size_t i = 0;
    int32_t max_added = -1;
    for (const cJSON *e = list ? list->child : NULL; e; e = e->next, i++) {
        egrc_tok_added *a = &tok->added[tok->n_added];
        int rc = read_added(tok, e, i, a, &max_added, src, err);
        if (a->content) tok->n_added++; /* owned from here on, freed with tok */
        if (rc < 0) return -1;
        if (rc > 0) continue;
        int32_t existing;
        uint32_t off;
        if (egrc_tok_strmap_put(&tok->added_map, a->content, a->content_len, (int32_t)(tok->n_added - 1),
                                &existing, &off) != 0)
            return egrc_fail(err, "%s: out of memory reading added_tokens", src);
    }
    return 0;
}

/* Extends the id tables to cover added tokens and records which ids they own. */
static int build_id_tables(egrc_tokenizer *tok, const char *src, egrc_error *err) {
    int32_t n_ids = tok->n_ids;
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].id >= n_ids) n_ids = tok->added[i].id + 1;
    size_t slots = (size_t)(n_ids ? n_ids : 1);
    egrc_tok_span *text = realloc(tok->id_text, slots * sizeof *text);
    if (text) tok->id_text = text;
    if (!text || !(tok->id_added = malloc(slots * sizeof *tok->id_added)))
        return egrc_fail(err, "%s: out of memory building the id table (%d ids)", src, n_ids);
    for (int32_t id = tok->n_ids; id < n_ids; id++) text[id] = (egrc_tok_span){UINT32_MAX, 0};
    for (int32_t id = 0; id < n_ids; id++) tok->id_added[id] = -1;
    tok->n_ids = n_ids;
    /* read_added gave every added token its own id. */
    for (size_t i = 0; i < tok->n_added; i++) tok->id_added[tok->added[i].id] = (int32_t)i;
    return 0;
}

typedef struct {
    unsigned char first;
    size_t len, index;
} sort_key;

static int by_first_byte_then_longest(const void *pa, const void *pb) {
    const sort_key *a = pa, *b = pb;
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

static int build_index(egrc_tokenizer *tok, egrc_tok_added_index *ix, int normalized, const char *src,
                       egrc_error *err) {
    sort_key *keys = malloc((tok->n_added ? tok->n_added : 1) * sizeof *keys);
    ix->order = malloc((tok->n_added ? tok->n_added : 1) * sizeof *ix->order);
    if (!keys || !ix->order) {
        free(keys);
        return egrc_fail(err, "%s: out of memory indexing added_tokens", src);
    }
    size_t n = 0;
    for (size_t i = 0; i < tok->n_added; i++) {
        const egrc_tok_added *a = &tok->added[i];
        if (a->normalized == normalized)
            keys[n++] = (sort_key){(unsigned char)a->match[0], a->match_len, i};
    }
    qsort(keys, n, sizeof *keys, by_first_byte_then_longest);
    size_t k = 0;
    for (int b = 0; b <= 256; b++) {
        while (k < n && keys[k].first < b) k++;
        ix->start[b] = k;
    }
    for (size_t i = 0; i < n; i++) ix->order[i] = keys[i].index;
    free(keys);
    return 0;
}

int egrc_tok_load_rest(egrc_tokenizer *tok, const cJSON *root, const char *src, egrc_error *err) {
    /* The pipeline goes first: whether added tokens are stored in NFC depends on it. */
    if (load_pipeline(tok, root, src, err) != 0 || load_added(tok, root, src, err) != 0 ||
        build_id_tables(tok, src, err) != 0 || build_index(tok, &tok->raw_index, 0, src, err) != 0 ||
        build_index(tok, &tok->norm_index, 1, src, err) != 0)
        return -1;
    return 0;
}
