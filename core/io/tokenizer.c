/* The public tokenizer API. Encoding follows `tokenizers` step by step:
 *   1. added tokens with normalized=false are cut out of the raw text;
 *   2. each stretch between them is normalized (NFC when configured), and
 *      added tokens with normalized=true are cut out of that;
 *   3. what is left goes through the pre-tokenizer steps and BPE.
 * Decoding maps each token's characters back to bytes (ByteLevel decoder)
 * and repairs invalid UTF-8 the way String::from_utf8_lossy does. */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "tokenizer_internal.h"

/* tokenizer.json for the largest vocabularies is tens of MB. */
#define MAX_TOKENIZER_FILE_BYTES ((size_t)512 << 20)

void egrc_tokenizer_free(egrc_tokenizer *tok) {
    if (!tok) return;
    egrc_tok_strmap_free(&tok->vocab);
    egrc_tok_pairmap_free(&tok->merges);
    free(tok->id_text);
    free(tok->id_added);
    for (size_t i = 0; i < tok->n_added; i++) {
        free(tok->added[i].content);
        free(tok->added[i].match);
    }
    free(tok->added);
    egrc_tok_strmap_free(&tok->added_map);
    free(tok->raw_index.order);
    free(tok->norm_index.order);
    for (size_t i = 0; i < tok->n_steps; i++) pcre2_code_free(tok->steps[i].re);
    free(tok->steps);
    free(tok);
}

egrc_tokenizer *egrc_tokenizer_from_json(const char *json, size_t len, const char *source_name,
                                         egrc_error *err) {
    const char *src = source_name ? source_name : "tokenizer.json";
    if (!json || len == 0) {
        egrc_fail(err, "%s: the file is empty", src);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : len;
    if (!root) {
        egrc_fail(err, "%s: not valid JSON (parsing stopped at byte %zu of %zu)", src, at, len);
        return NULL;
    }
    /* cJSON stops after the first value; anything but whitespace after it
     * means a damaged file, which serde_json would refuse too. */
    while (at < len && (json[at] == ' ' || json[at] == '\t' || json[at] == '\n' || json[at] == '\r')) at++;
    egrc_tokenizer *tok = NULL;
    if (at < len) {
        egrc_fail(err, "%s: unexpected data after the JSON value at byte %zu", src, at);
    } else if (!cJSON_IsObject(root)) {
        egrc_fail(err, "%s: the top level must be a JSON object", src);
    } else if (!(tok = calloc(1, sizeof *tok))) {
        egrc_fail(err, "%s: out of memory", src);
    } else if (egrc_tok_load_model(tok, cJSON_GetObjectItemCaseSensitive(root, "model"), src, err) != 0 ||
               egrc_tok_load_rest(tok, root, src, err) != 0) {
        egrc_tokenizer_free(tok);
        tok = NULL;
    }
    cJSON_Delete(root);
    return tok;
}

egrc_tokenizer *egrc_tokenizer_load(const char *path, egrc_error *err) {
    size_t len;
    char *json = egrc_read_file(path, MAX_TOKENIZER_FILE_BYTES, &len, err);
    if (!json) return NULL;
    egrc_tokenizer *tok = egrc_tokenizer_from_json(json, len, path, err);
    free(json);
    return tok;
}

/* The longest added token of `ix` starting at text[0..len), or NULL. */
static const egrc_tok_added *added_at(const egrc_tokenizer *tok, const egrc_tok_added_index *ix,
                                      const char *text, size_t len) {
    unsigned char b = (unsigned char)text[0];
    for (size_t k = ix->start[b]; k < ix->start[b + 1]; k++) {
        const egrc_tok_added *a = &tok->added[ix->order[k]];
        if (a->match_len <= len && memcmp(a->match, text, a->match_len) == 0) return a;
    }
    return NULL;
}

static size_t spaces_before(const char *text, size_t pos) {
    size_t start = pos;
    while (start > 0) {
        size_t k;
        if (!egrc_tok_is_space(egrc_tok_utf8_before(text, start, &k))) break;
        start -= k;
    }
    return pos - start;
}

static size_t spaces_after(const char *text, size_t pos, size_t len) {
    size_t end = pos;
    while (end < len) {
        uint32_t cp;
        int k = egrc_tok_utf8_next((const unsigned char *)text + end, len - end, &cp);
        if (k <= 0 || !egrc_tok_is_space(cp)) break;
        end += (size_t)k;
    }
    return end - pos;
}

/* single_word tokens only count when not glued to a word character. */
static int glued_to_word(const char *text, size_t start, size_t stop, size_t len) {
    size_t k;
    if (start > 0 && egrc_tok_is_word(egrc_tok_utf8_before(text, start, &k))) return 1;
    uint32_t cp;
    return stop < len && egrc_tok_utf8_next((const unsigned char *)text + stop, len - stop, &cp) > 0 &&
           egrc_tok_is_word(cp);
}

typedef struct {
    const egrc_tokenizer *tok;
    egrc_tok_scratch scratch;
    egrc_tok_ids ids;
} encoder;

static int encode_words(encoder *e, const char *text, size_t len, egrc_error *err) {
    egrc_tok_words *w = egrc_tok_pretokenize(e->tok, &e->scratch, text, len, err);
    if (!w) return -1;
    for (size_t i = 0; i < w->n; i++) {
        size_t from = w->bounds[2 * i], to = w->bounds[2 * i + 1];
        if (egrc_tok_bpe_word(e->tok, &e->scratch, w->buf.p + from, to - from, &e->ids, err) != 0) return -1;
    }
    return 0;
}

static int encode_stretch(encoder *e, int normalized, const char *text, size_t len, egrc_error *err);

/* What lies between added tokens: on the raw pass it is normalized and
 * searched again for normalized tokens; on that second pass it is encoded. */
static int encode_gap(encoder *e, int normalized, const char *text, size_t len, egrc_error *err) {
    if (len == 0) return 0;
    if (normalized) return encode_words(e, text, len, err);
    if (!e->tok->nfc) return encode_stretch(e, 1, text, len, err);
    /* The normalized pass never normalizes again, so scratch.norm stays put. */
    if (egrc_tok_normalize(&e->scratch, text, len, err) != 0) return -1;
    return encode_stretch(e, 1, e->scratch.norm.p, e->scratch.norm.len, err);
}

/* Cuts added tokens out of text as tokenizers' AddedVocabulary does: the
 * leftmost, then longest, match wins; a single_word match glued to a word is
 * skipped; lstrip/rstrip tokens swallow the whitespace beside them. The
 * search resumes where the match itself ended, even when rstrip swallowed
 * more, so a token may start inside whitespace already swallowed; it is
 * emitted then with no gap before it, and `done` follows its end, exactly
 * like the aho-corasick loop in tokenizers. */
static int encode_stretch(encoder *e, int normalized, const char *text, size_t len, egrc_error *err) {
    const egrc_tokenizer *tok = e->tok;
    const egrc_tok_added_index *ix = normalized ? &tok->norm_index : &tok->raw_index;
    size_t done = 0, pos = 0;
    while (pos < len) {
        const egrc_tok_added *a = added_at(tok, ix, text + pos, len - pos);
        if (!a) {
            pos++;
            continue;
        }
        size_t start = pos, end = pos + a->match_len, stop = end;
        pos = end;
        if (a->single_word && glued_to_word(text, start, end, len)) continue;
        if (a->lstrip) {
            start -= spaces_before(text, start);
            if (start < done) start = done;
        }
        if (a->rstrip) stop += spaces_after(text, stop, len);
        if (done < start && encode_gap(e, normalized, text + done, start - done, err) != 0) return -1;
        if (egrc_tok_ids_push(&e->ids, a->id) != 0) return egrc_fail(err, "out of memory encoding text");
        done = stop;
    }
    return done < len ? encode_gap(e, normalized, text + done, len - done, err) : 0;
}

int egrc_tokenizer_encode(const egrc_tokenizer *tok, const char *text, size_t len, int32_t **ids,
                          size_t *count, egrc_error *err) {
    if (!tok || !ids || !count || (!text && len)) return egrc_fail(err, "tokenizer encode: invalid arguments");
    *ids = NULL;
    *count = 0;
    size_t bad = len ? egrc_tok_utf8_check(text, len) : 0;
    if (bad < len)
        return egrc_fail(err, "text to encode is not valid UTF-8 (byte 0x%02X at offset %zu)",
                         (unsigned)(unsigned char)text[bad], bad);
    encoder e = {.tok = tok};
    int rc = 0;
    if (tok->n_steps && !(e.scratch.md = pcre2_match_data_create(1, NULL)))
        rc = egrc_fail(err, "out of memory encoding text");
    if (rc == 0 && len) rc = encode_stretch(&e, 0, text, len, err);
    egrc_tok_scratch_free(&e.scratch);
    if (rc != 0) {
        free(e.ids.v);
        return -1;
    }
    *ids = e.ids.v;
    *count = e.ids.len;
    return 0;
}

/* A token's bytes under the ByteLevel decoder: its characters mapped back to
 * bytes, or, when any character is outside the byte alphabet (an added token
 * like "<think>" is inside it; one like "中文" is not), its text as is. */
static int decode_token(const char *t, size_t n, egrc_tok_buf *out) {
    size_t mark = out->len, i = 0;
    while (i < n) {
        uint32_t cp;
        int k = egrc_tok_utf8_next((const unsigned char *)t + i, n - i, &cp);
        int b = k > 0 ? egrc_tok_char_byte(cp) : -1;
        if (b < 0) {
            out->len = mark;
            return egrc_tok_buf_add(out, t, n);
        }
        unsigned char byte = (unsigned char)b;
        if (egrc_tok_buf_add(out, &byte, 1) != 0) return -1;
        i += (size_t)k;
    }
    return 0;
}

char *egrc_tokenizer_decode(const egrc_tokenizer *tok, const int32_t *ids, size_t count, int keep_special,
                            egrc_error *err) {
    if (!tok || (!ids && count)) {
        egrc_fail(err, "tokenizer decode: invalid arguments");
        return NULL;
    }
    egrc_tok_buf bytes = {0}, text = {0};
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= tok->n_ids) {
            rc = egrc_fail(err, "token id %d (at position %zu) is outside the vocabulary [0, %d)", id, i,
                           tok->n_ids);
            break;
        }
        const char *t;
        size_t n;
        if (tok->id_added[id] >= 0) {
            const egrc_tok_added *a = &tok->added[tok->id_added[id]];
            if (a->special && !keep_special) continue;
            t = a->match;
            n = a->match_len;
        } else if (tok->id_text[id].off != UINT32_MAX) {
            t = tok->vocab.arena + tok->id_text[id].off;
            n = tok->id_text[id].len;
        } else {
            continue; /* an unused id inside the range: tokenizers skips it too */
        }
        if (decode_token(t, n, &bytes) != 0) rc = egrc_fail(err, "out of memory decoding tokens");
    }
    if (rc == 0 && (egrc_tok_utf8_lossy(bytes.p, bytes.len, &text) != 0 || egrc_tok_buf_add(&text, "", 0) != 0))
        rc = egrc_fail(err, "out of memory decoding tokens");
    free(bytes.p);
    if (rc != 0) {
        free(text.p);
        return NULL;
    }
    text.p[text.len] = '\0';
    return text.p;
}

int32_t egrc_tokenizer_vocab_size(const egrc_tokenizer *tok) {
    return tok ? tok->n_ids : 0;
}

int32_t egrc_tokenizer_token_id(const egrc_tokenizer *tok, const char *token_text) {
    if (!tok || !token_text) return -1;
    size_t len = strlen(token_text);
    int32_t added = egrc_tok_strmap_get(&tok->added_map, token_text, len);
    if (added >= 0) return tok->added[added].id;
    return egrc_tok_strmap_get(&tok->vocab, token_text, len);
}

int egrc_tokenizer_is_special(const egrc_tokenizer *tok, int32_t id) {
    if (!tok || id < 0 || id >= tok->n_ids || tok->id_added[id] < 0) return 0;
    return tok->added[tok->id_added[id]].special;
}
