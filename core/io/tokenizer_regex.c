/* Compiles tokenizer.json regexes, written for Oniguruma, with PCRE2.
 *
 * The two agree on the syntax these patterns use, and with PCRE2_UCP on
 * \p{L}, \p{N} and \d, but not quite on \s: PCRE2 also counts U+180E
 * (MONGOLIAN VOWEL SEPARATOR, no longer a space since Unicode 6.3) while
 * Oniguruma follows the White_Space property. So \s, \S and [:space:] are
 * rewritten as explicit White_Space sets before compiling. */
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

/* Unicode White_Space, as class members, and its complement. */
static const char space_set[] =
    "\\t-\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";
static const char non_space_set[] =
    "\\x00-\\x08\\x{0E}-\\x{1F}\\x{21}-\\x{84}\\x{86}-\\x{9F}\\x{A1}-\\x{167F}\\x{1681}-\\x{1FFF}"
    "\\x{200B}-\\x{2027}\\x{202A}-\\x{202E}\\x{2030}-\\x{205E}\\x{2060}-\\x{2FFF}\\x{3001}-\\x{10FFFF}";

/* Copies p[from..) up to and including the first `end`, or to the end of
 * the pattern; returns where copying stopped. */
static size_t copy_through(egrc_tok_buf *out, const char *p, size_t len, size_t from, const char *end,
                           int *rc) {
    size_t elen = strlen(end), i = from;
    while (i < len && !(i + elen <= len && memcmp(p + i, end, elen) == 0)) i++;
    i = i < len ? i + elen : len;
    if (egrc_tok_buf_add(out, p + from, i - from) != 0) *rc = -1;
    return i;
}

/* Rewrites \s, \S and [:space:], tracking character classes (where the
 * sets go in bare) and skipping \Q..\E quotes and (?#..) comments. */
static int translate(const char *p, size_t len, egrc_tok_buf *out) {
    int in_class = 0, rc = 0;
    size_t i = 0;
    while (i < len && rc == 0) {
        char c = p[i];
        if (c == '\\' && i + 1 < len) {
            char d = p[i + 1];
            if (d == 'Q') {
                i = copy_through(out, p, len, i, "\\E", &rc);
            } else if (d == 's' || d == 'S') {
                const char *set = d == 's' || !in_class ? space_set : non_space_set;
                const char *open = in_class ? "" : d == 's' ? "[" : "[^";
                if (egrc_tok_buf_add(out, open, strlen(open)) != 0 ||
                    egrc_tok_buf_add(out, set, strlen(set)) != 0 ||
                    egrc_tok_buf_add(out, in_class ? "" : "]", in_class ? 0 : 1) != 0)
                    rc = -1;
                i += 2;
            } else {
                rc = egrc_tok_buf_add(out, p + i, 2);
                i += 2;
            }
            continue;
        }
        if (!in_class && c == '(' && i + 2 < len && p[i + 1] == '?' && p[i + 2] == '#') {
            i = copy_through(out, p, len, i, ")", &rc);
            continue;
        }
        if (in_class && c == '[' && i + 1 < len && p[i + 1] == ':') {
            /* [:space:] differs from Oniguruma's exactly as \s does. */
            static const char posix_space[] = "[:space:]", posix_non_space[] = "[:^space:]";
            if (len - i >= sizeof posix_space - 1 && memcmp(p + i, posix_space, sizeof posix_space - 1) == 0) {
                rc = egrc_tok_buf_add(out, space_set, strlen(space_set));
                i += sizeof posix_space - 1;
            } else if (len - i >= sizeof posix_non_space - 1 &&
                       memcmp(p + i, posix_non_space, sizeof posix_non_space - 1) == 0) {
                rc = egrc_tok_buf_add(out, non_space_set, strlen(non_space_set));
                i += sizeof posix_non_space - 1;
            } else {
                i = copy_through(out, p, len, i, ":]", &rc);
            }
            continue;
        }
        size_t n = 1;
        if (!in_class && c == '[') {
            /* A ']' right after '[' or '[^' is a literal member, not the end. */
            in_class = 1;
            if (i + n < len && p[i + n] == '^') n++;
            if (i + n < len && p[i + n] == ']') n++;
        } else if (in_class && c == ']') {
            in_class = 0;
        }
        rc = egrc_tok_buf_add(out, p + i, n);
        i += n;
    }
    return rc;
}

pcre2_code *egrc_tok_regex_compile(const char *pattern, size_t len, int literal, const char *path,
                                   const char *src, egrc_error *err) {
    egrc_tok_buf rewritten = {0};
    /* The empty add leaves a buffer even for an empty pattern. */
    if (!literal && (translate(pattern, len, &rewritten) != 0 || egrc_tok_buf_add(&rewritten, "", 0) != 0)) {
        free(rewritten.p);
        egrc_fail(err, "%s: out of memory compiling %s", src, path);
        return NULL;
    }
    /* PCRE2_LITERAL allows no PCRE2_UCP; it has no classes to make Unicode-aware. */
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = literal ? pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_LITERAL, &code,
                                             &at, NULL)
                             : pcre2_compile((PCRE2_SPTR)rewritten.p, rewritten.len, PCRE2_UTF | PCRE2_UCP,
                                             &code, &at, NULL);
    free(rewritten.p);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        /* The offset is into the rewritten pattern, so it is not reported. */
        egrc_fail(err, "%s: %s cannot be compiled: %s", src, path, (char *)msg);
        return NULL;
    }
    /* JIT is a speed-up only: without it PCRE2 interprets. */
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}
