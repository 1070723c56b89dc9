/* Reads the "model" object of tokenizer.json: a byte-level BPE vocabulary,
 * its merge list, and the few options that change how a word is merged.
 * Options that would make encoding differ from plain byte-level BPE
 * (dropout, subword prefixes/suffixes, byte fallback) are refused rather
 * than half-honoured. */
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

int egrc_tok_json_id(const cJSON *v, int32_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    /* The range test comes first (NaN fails it), so the cast is defined. */
    if (!(d >= 0 && d < EGRC_TOK_MAX_ID) || d != (double)(int32_t)d) return -1;
    *out = (int32_t)d;
    return 0;
}

int egrc_tok_json_bool(const cJSON *obj, const char *key, int dflt, int *out, const char *path,
                       const char *src, egrc_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsBool(v))
        return egrc_fail(err, "%s: %s%s%s must be true or false", src, path, *path ? "." : "", key);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return 0;
}

/* model.<key> may be absent, null or "" (what byte-level BPE files write). */
static int check_no_affix(const cJSON *model, const char *key, const char *src, egrc_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, key);
    if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && v->valuestring[0] == '\0')) return 0;
    return egrc_fail(err,
                     "%s: model.%s is set, which egrc does not support (byte-level BPE uses neither "
                     "subword prefixes nor suffixes)",
                     src, key);
}

/* tokenizers accepts a model without "type" and tells the kinds apart by
 * their fields (T5's files are written so): a vocab array is Unigram's,
 * max_input_chars_per_word is WordPiece's, a vocab without merges is
 * WordLevel's. Returns the kind, so a refusal can name it. */
static const char *model_kind(const cJSON *model) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (cJSON_IsString(type)) return type->valuestring;
    if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(model, "vocab"))) return "Unigram";
    if (cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word")) return "WordPiece";
    if (!cJSON_GetObjectItemCaseSensitive(model, "merges")) return "WordLevel";
    return "BPE";
}

static int check_options(egrc_tokenizer *tok, const cJSON *model, const char *src, egrc_error *err) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (type && !cJSON_IsNull(type) && !cJSON_IsString(type))
        return egrc_fail(err, "%s: model.type must be a string", src);
    const char *kind = model_kind(model);
    if (strcmp(kind, "BPE") != 0)
        return egrc_fail(err,
                         "%s: model.type '%.64s'%s is not supported: egrc reads BPE models only "
                         "(byte-level BPE as in GPT-2, Llama 3, Qwen); Unigram (T5), WordPiece "
                         "(BERT) and WordLevel tokenizers cannot be loaded",
                         src, kind, cJSON_IsString(type) ? "" : " (no type given; told by its fields)");
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return egrc_fail(err,
                         "%s: model.dropout must be null or 0 (dropout makes encoding random, which "
                         "egrc does not support)",
                         src);
    if (check_no_affix(model, "continuing_subword_prefix", src, err) != 0 ||
        check_no_affix(model, "end_of_word_suffix", src, err) != 0)
        return -1;
    int byte_fallback = 0;
    if (egrc_tok_json_bool(model, "byte_fallback", 0, &byte_fallback, "model", src, err) != 0 ||
        egrc_tok_json_bool(model, "fuse_unk", 0, &tok->fuse_unk, "model", src, err) != 0 ||
        egrc_tok_json_bool(model, "ignore_merges", 0, &tok->ignore_merges, "model", src, err) != 0)
        return -1;
    if (byte_fallback)
        return egrc_fail(err,
                         "%s: model.byte_fallback true is not supported (byte-level BPE covers every "
                         "byte without it)",
                         src);
    return 0;
}

static int load_vocab(egrc_tokenizer *tok, const cJSON *model, const char *src, egrc_error *err) {
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!vocab) return egrc_fail(err, "%s: model.vocab is missing", src);
    if (!cJSON_IsObject(vocab))
        return egrc_fail(err, "%s: model.vocab must be an object mapping token text to id", src);

    /* First pass: validate and find the largest id, so the id -> text table
     * can be allocated once. */
    int32_t max_id = -1;
    size_t n = 0;
    for (const cJSON *e = vocab->child; e; e = e->next, n++) {
        size_t klen = strlen(e->string);
        if (egrc_tok_utf8_check(e->string, klen) != klen)
            return egrc_fail(err, "%s: model.vocab entry %zu has a token that is not valid UTF-8", src, n);
        int32_t id;
        if (egrc_tok_json_id(e, &id) != 0)
            return egrc_fail(err, "%s: model.vocab['%.64s'] must be an integer id in [0, %d)", src,
                             e->string, EGRC_TOK_MAX_ID);
        if (id > max_id) max_id = id;
    }
    tok->n_ids = max_id + 1;
    if (egrc_tok_strmap_init(&tok->vocab, n) != 0 ||
        !(tok->id_text = malloc((size_t)(tok->n_ids ? tok->n_ids : 1) * sizeof *tok->id_text)))
        return egrc_fail(err, "%s: out of memory reading model.vocab (%zu tokens)", src, n);
    for (int32_t i = 0; i < tok->n_ids; i++) tok->id_text[i] = (egrc_tok_span){UINT32_MAX, 0};

    for (const cJSON *e = vocab->child; e; e = e->next) {
        size_t klen = strlen(e->string);
        int32_t id = (int32_t)e->valuedouble, existing;
        uint32_t off;
        int rc = egrc_tok_strmap_put(&tok->vocab, e->string, klen, id, &existing, &off);
        if (rc < 0) return egrc_fail(err, "%s: out of memory reading model.vocab", src);
        if (rc > 0)
            return egrc_fail(err, "%s: model.vocab lists the token '%.64s' twice", src, e->string);
        if (tok->id_text[id].off != UINT32_MAX)
            return egrc_fail(err, "%s: model.vocab gives id %d to both '%.*s' and '%.64s'", src, id,
                             tok->id_text[id].len > 64 ? 64 : (int)tok->id_text[id].len,
                             tok->vocab.arena + tok->id_text[id].off, e->string);
        tok->id_text[id] = (egrc_tok_span){off, (uint32_t)klen};
    }
    return 0;
}

/* Splits merges[i] into its two tokens: "a b" (the original merges.txt
 * form) or ["a", "b"] (tokenizers >= 0.20, which allows spaces in tokens). */
static int merge_parts(const cJSON *e, size_t i, const char *part[2], size_t len[2], const char *src,
                       egrc_error *err) {
    if (cJSON_IsString(e)) {
        const char *s = e->valuestring;
        const char *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' '))
            return egrc_fail(err, "%s: model.merges[%zu] '%.64s' must be two tokens separated by one space",
                             src, i, s);
        part[0] = s;
        len[0] = (size_t)(sp - s);
        part[1] = sp + 1;
        len[1] = strlen(sp + 1);
        return 0;
    }
    if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) &&
        cJSON_IsString(e->child->next)) {
        part[0] = e->child->valuestring;
        part[1] = e->child->next->valuestring;
        len[0] = strlen(part[0]);
        len[1] = strlen(part[1]);
        return 0;
    }
    return egrc_fail(err, "%s: model.merges[%zu] must be a string \"a b\" or an array [\"a\", \"b\"]",
                     src, i);
}

static int load_merges(egrc_tokenizer *tok, const cJSON *model, const char *src, egrc_error *err) {
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!merges) return egrc_fail(err, "%s: model.merges is missing", src);
    if (!cJSON_IsArray(merges)) return egrc_fail(err, "%s: model.merges must be an array", src);
    size_t n = 0;
    for (const cJSON *e = merges->child; e; e = e->next) n++;
    if (n > UINT32_MAX || egrc_tok_pairmap_init(&tok->merges, n) != 0)
        return egrc_fail(err, "%s: out of memory reading model.merges (%zu merges)", src, n);

    egrc_tok_buf joined = {0};
    int rc = 0;
    size_t i = 0;
    for (const cJSON *e = merges->child; e && rc == 0; e = e->next, i++) {
        const char *part[2] = {NULL, NULL};
        size_t len[2] = {0, 0};
        rc = merge_parts(e, i, part, len, src, err);
        if (rc != 0) break;
        joined.len = 0;
        if (egrc_tok_buf_add(&joined, part[0], len[0]) != 0 ||
            egrc_tok_buf_add(&joined, part[1], len[1]) != 0) {
            rc = egrc_fail(err, "%s: out of memory reading model.merges", src);
            break;
        }
        int32_t left = egrc_tok_strmap_get(&tok->vocab, part[0], len[0]);
        int32_t right = egrc_tok_strmap_get(&tok->vocab, part[1], len[1]);
        int32_t merged = egrc_tok_strmap_get(&tok->vocab, joined.p, joined.len);
        const char *missing = left < 0 ? part[0] : right < 0 ? part[1] : merged < 0 ? joined.p : NULL;
        int missing_len = (int)(left < 0 ? len[0] : right < 0 ? len[1] : joined.len);
        if (missing) {
            rc = egrc_fail(err, "%s: model.merges[%zu] uses the token '%.*s', which is not in model.vocab",
                           src, i, missing_len > 64 ? 64 : missing_len, missing);
            break;
        }
        if (egrc_tok_pairmap_put(&tok->merges, left, right, (uint32_t)i, merged) != 0)
            rc = egrc_fail(err, "%s: out of memory reading model.merges", src);
    }
    free(joined.p);
    return rc;
}

static int load_unk(egrc_tokenizer *tok, const cJSON *model, const char *src, egrc_error *err) {
    tok->unk_id = -1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (!unk || cJSON_IsNull(unk)) return 0;
    if (!cJSON_IsString(unk)) return egrc_fail(err, "%s: model.unk_token must be a string or null", src);
    tok->unk_id = egrc_tok_strmap_get(&tok->vocab, unk->valuestring, strlen(unk->valuestring));
    if (tok->unk_id < 0)
        return egrc_fail(err, "%s: model.unk_token '%.64s' is not in model.vocab", src, unk->valuestring);
    return 0;
}

int egrc_tok_load_model(egrc_tokenizer *tok, const cJSON *model, const char *src, egrc_error *err) {
    if (!model || cJSON_IsNull(model)) return egrc_fail(err, "%s: model is missing", src);
    if (!cJSON_IsObject(model)) return egrc_fail(err, "%s: model must be an object", src);
    if (check_options(tok, model, src, err) != 0 || load_vocab(tok, model, src, err) != 0 ||
        load_unk(tok, model, src, err) != 0 || load_merges(tok, model, src, err) != 0)
        return -1;
    return 0;
}
