/* Normalization and pre-tokenization: turns one stretch of text (between
 * added tokens) into the byte-level words that BPE merges, step by step as
 * `tokenizers` does. Each step reads the word list of the previous one and
 * writes a new list; empty words are dropped after every step, as
 * PreTokenizedString::split does. */
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

int egrc_tok_normalize(egrc_tok_scratch *s, const char *text, size_t len, egrc_error *err) {
    utf8proc_uint8_t *out = NULL;
    /* Length-delimited (no UTF8PROC_NULLTERM): NUL is ordinary text here. */
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &out,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) return egrc_fail(err, "NFC normalization failed: %s", utf8proc_errmsg(n));
    s->norm.len = 0;
    int rc = egrc_tok_buf_add(&s->norm, out, (size_t)n);
    free(out);
    return rc != 0 ? egrc_fail(err, "out of memory normalizing text") : 0;
}

/* Appends one word, mapped to the byte-level alphabet when `map`. */
static int add_word(egrc_tok_words *w, const char *p, size_t n, int map) {
    if (n == 0) return 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        size_t *b = realloc(w->bounds, 2 * cap * sizeof *b);
        if (!b) return -1;
        w->bounds = b;
        w->cap = cap;
    }
    size_t start = w->buf.len;
    if (!map) {
        if (egrc_tok_buf_add(&w->buf, p, n) != 0) return -1;
    } else {
        for (size_t i = 0; i < n; i++) {
            char enc[4];
            size_t k = egrc_tok_utf8_put(egrc_tok_byte_char((unsigned char)p[i]), enc);
            if (egrc_tok_buf_add(&w->buf, enc, k) != 0) return -1;
        }
    }
    w->bounds[2 * w->n] = start;
    w->bounds[2 * w->n + 1] = w->buf.len;
    w->n++;
    return 0;
}

/* One pcre2_match; falls back to the interpreter when the JIT's stack is too
 * small for this subject (long runs of one class can need deep backtracking). */
static int match_at(const pcre2_code *re, pcre2_match_data *md, const char *w, size_t n, size_t from) {
    int rc = pcre2_match(re, (PCRE2_SPTR)w, n, from, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re, (PCRE2_SPTR)w, n, from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
    return rc;
}

/* Splits w into matches and the gaps between them (behavior "Isolated").
 * Empty matches are kept as split points but never right where the previous
 * match ended, which is how the Oniguruma iterator in `tokenizers` avoids
 * looping; w is valid UTF-8, so stepping by a character keeps PCRE2 happy. */
static int split_isolated(const pcre2_code *re, pcre2_match_data *md, const char *w, size_t n,
                          egrc_tok_words *out, int map, egrc_error *err) {
    size_t from = 0, emitted = 0, last_match_end = 0;
    int matched = 0;
    while (from <= n) {
        int rc = match_at(re, md, w, n, from);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return egrc_fail(err, "pre-tokenizer regex failed on the input: %s", (char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t start = ov[0], end = ov[1];
        /* \K can move a match's start; refuse what would not be a clean split. */
        if (start > end || end > n || start < emitted)
            return egrc_fail(err, "pre-tokenizer regex produced an overlapping match (is \\K used?)");
        if (start == end && matched && last_match_end == end) {
            if (from == n) break;
            uint32_t cp;
            int k = egrc_tok_utf8_next((const unsigned char *)w + from, n - from, &cp);
            from += k > 0 ? (size_t)k : 1;
            continue;
        }
        from = last_match_end = end;
        matched = 1;
        if (add_word(out, w + emitted, start - emitted, map) != 0 ||
            add_word(out, w + start, end - start, map) != 0)
            return egrc_fail(err, "out of memory pre-tokenizing text");
        emitted = end;
    }
    if (add_word(out, w + emitted, n - emitted, map) != 0)
        return egrc_fail(err, "out of memory pre-tokenizing text");
    return 0;
}

static int byte_level(const egrc_tok_step *step, egrc_tok_scratch *s, const char *w, size_t n,
                      egrc_tok_words *out, egrc_error *err) {
    if (step->add_prefix_space && w[0] != ' ') {
        s->prefixed.len = 0;
        if (egrc_tok_buf_add(&s->prefixed, " ", 1) != 0 || egrc_tok_buf_add(&s->prefixed, w, n) != 0)
            return egrc_fail(err, "out of memory pre-tokenizing text");
        w = s->prefixed.p;
        n = s->prefixed.len;
    }
    if (step->re) return split_isolated(step->re, s->md, w, n, out, 1, err);
    return add_word(out, w, n, 1) != 0 ? egrc_fail(err, "out of memory pre-tokenizing text") : 0;
}

egrc_tok_words *egrc_tok_pretokenize(const egrc_tokenizer *tok, egrc_tok_scratch *s,
                                     const char *text, size_t len, egrc_error *err) {
    egrc_tok_words *in = &s->words[0], *out = &s->words[1];
    in->n = in->buf.len = 0;
    if (add_word(in, text, len, 0) != 0) {
        egrc_fail(err, "out of memory pre-tokenizing text");
        return NULL;
    }
    for (size_t k = 0; k < tok->n_steps; k++) {
        const egrc_tok_step *step = &tok->steps[k];
        out->n = out->buf.len = 0;
        for (size_t i = 0; i < in->n; i++) {
            const char *w = in->buf.p + in->bounds[2 * i];
            size_t n = in->bounds[2 * i + 1] - in->bounds[2 * i];
            int rc = step->kind == EGRC_TOK_STEP_SPLIT
                         ? split_isolated(step->re, s->md, w, n, out, 0, err)
                         : byte_level(step, s, w, n, out, err);
            if (rc != 0) return NULL;
        }
        egrc_tok_words *t = in;
        in = out;
        out = t;
    }
    return in;
}

void egrc_tok_scratch_free(egrc_tok_scratch *s) {
    pcre2_match_data_free(s->md);
    for (int i = 0; i < 2; i++) {
        free(s->words[i].buf.p);
        free(s->words[i].bounds);
    }
    free(s->norm.p);
    free(s->prefixed.p);
    free(s->sym);
    free(s->heap);
    memset(s, 0, sizeof *s);
}
