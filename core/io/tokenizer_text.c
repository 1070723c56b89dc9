/* Text helpers for the tokenizer: growable buffers, UTF-8 decoding that
 * agrees with Rust's str (what `tokenizers` is written in), GPT-2's
 * byte-level alphabet, and the character classes added tokens use. */
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* Grows *p (an array of `size`-byte elements) to hold at least `need`. */
static int grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return 0;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need) {
        if (cap2 > SIZE_MAX / 2 / size) return -1;
        cap2 *= 2;
    }
    void *q = realloc(*p, cap2 * size);
    if (!q) return -1;
    *p = q;
    *cap = cap2;
    return 0;
}

int egrc_tok_buf_add(egrc_tok_buf *b, const void *data, size_t n) {
    if (n > SIZE_MAX - b->len - 1) return -1;
    void *p = b->p;
    /* +1 keeps room for the NUL decode appends. */
    if (grow(&p, &b->cap, b->len + n + 1, 1) != 0) return -1;
    b->p = p;
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

int egrc_tok_ids_push(egrc_tok_ids *ids, int32_t id) {
    void *p = ids->v;
    if (grow(&p, &ids->cap, ids->len + 1, sizeof *ids->v) != 0) return -1;
    ids->v = p;
    ids->v[ids->len++] = id;
    return 0;
}

int egrc_tok_utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    /* The second byte's allowed range is what excludes overlongs (E0, F0),
     * surrogates (ED) and code points past U+10FFFF (F4). */
    unsigned char lo = 0x80, hi = 0xBF;
    int need;
    uint32_t c;
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1;
        c = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        c = b & 0x0Fu;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        c = b & 0x07u;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return -i;
        unsigned char x = s[i];
        if (i == 1 ? (x < lo || x > hi) : (x < 0x80 || x > 0xBF)) return -i;
        c = (c << 6) | (x & 0x3Fu);
    }
    *cp = c;
    return need + 1;
}

size_t egrc_tok_utf8_check(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int k = egrc_tok_utf8_next(u + i, n - i, &cp);
        if (k < 0) return i;
        i += (size_t)k;
    }
    return n;
}

uint32_t egrc_tok_utf8_before(const char *s, size_t pos, size_t *char_len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t start = pos - 1;
    while (start > 0 && (u[start] & 0xC0) == 0x80) start--;
    uint32_t cp = 0xFFFD;
    egrc_tok_utf8_next(u + start, pos - start, &cp);
    *char_len = pos - start;
    return cp;
}

size_t egrc_tok_utf8_put(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int egrc_tok_utf8_lossy(const char *s, size_t n, egrc_tok_buf *out) {
    static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* Copy the longest valid run in one go. */
        size_t run = i;
        int k = 0;
        uint32_t cp;
        while (run < n && (k = egrc_tok_utf8_next(u + run, n - run, &cp)) > 0) run += (size_t)k;
        if (egrc_tok_buf_add(out, s + i, run - i) != 0) return -1;
        i = run;
        if (i < n) {
            if (egrc_tok_buf_add(out, replacement, sizeof replacement) != 0) return -1;
            i += (size_t)-k;
        }
    }
    return 0;
}

/* GPT-2 keeps the printable Latin-1 bytes as themselves and moves the other
 * 68 (controls, space, DEL..NBSP, soft hyphen), in byte order, to U+0100..U+0143. */
static int printable_byte(uint32_t c) {
    return (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
}

uint32_t egrc_tok_byte_char(unsigned char b) {
    if (printable_byte(b)) return b;
    if (b <= 0x20) return 0x100u + b;
    if (b <= 0xA0) return 0x100u + 33 + (b - 0x7Fu);
    return 0x100u + 67; /* 0xAD */
}

int egrc_tok_char_byte(uint32_t cp) {
    if (printable_byte(cp)) return (int)cp;
    if (cp >= 0x100 && cp <= 0x120) return (int)(cp - 0x100);
    if (cp >= 0x121 && cp <= 0x142) return (int)(0x7F + (cp - 0x121));
    if (cp == 0x143) return 0xAD;
    return -1;
}

int egrc_tok_is_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

int egrc_tok_is_word(uint32_t cp) {
    if (cp == 0x200C || cp == 0x200D) return 1;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
        return 1;
    default:
        return 0;
    }
}
