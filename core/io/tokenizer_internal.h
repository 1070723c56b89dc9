/* Internals of the tokenizer module, shared by core/tokenizer*.c and by
 * nothing else. The work is split by concern:
 *   tokenizer_map.c     hash maps (token text -> id, id pair -> merge)
 *   tokenizer_text.c    UTF-8, the byte-level alphabet, growable buffers
 *   tokenizer_model.c   reading model.* (vocab, merges, options)
 *   tokenizer_json.c    reading the rest of tokenizer.json
 *   tokenizer_regex.c   compiling tokenizer.json's (Oniguruma) regexes with PCRE2
 *   tokenizer_pretok.c  NFC and the pre-tokenizer steps
 *   tokenizer_bpe.c     merging one word
 *   tokenizer.c         the public API: added tokens, encode, decode */
#ifndef EGRC_TOKENIZER_INTERNAL_H
#define EGRC_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* Ids live in [0, EGRC_TOK_MAX_ID): large enough for any real vocabulary,
 * small enough that a hostile file cannot make us allocate id tables of
 * absurd size. */
#define EGRC_TOK_MAX_ID (1 << 24)

/* ---- growable buffers (tokenizer_text.c) ---- */

typedef struct {
    char *p;
    size_t len, cap;
} egrc_tok_buf;

typedef struct {
    int32_t *v;
    size_t len, cap;
} egrc_tok_ids;

int egrc_tok_buf_add(egrc_tok_buf *b, const void *data, size_t n);
int egrc_tok_ids_push(egrc_tok_ids *ids, int32_t id);

/* ---- UTF-8 and character classes (tokenizer_text.c) ---- */

/* Decodes the character at s[0..n), n > 0. Returns its length (1-4) with *cp
 * set, or minus the length of the maximal invalid subpart (the bytes that
 * String::from_utf8_lossy replaces by one U+FFFD). Rejects what Rust's str
 * rejects: overlongs, surrogates, code points past U+10FFFF. */
int egrc_tok_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);
/* Offset of the first invalid byte, or n when s[0..n) is valid UTF-8. */
size_t egrc_tok_utf8_check(const char *s, size_t n);
/* Code point of the character ending at s[pos] (s valid UTF-8, pos > 0). */
uint32_t egrc_tok_utf8_before(const char *s, size_t pos, size_t *char_len);
size_t egrc_tok_utf8_put(uint32_t cp, char out[4]);
/* Appends s[0..n) with invalid sequences replaced as from_utf8_lossy does. */
int egrc_tok_utf8_lossy(const char *s, size_t n, egrc_tok_buf *out);

/* GPT-2's reversible byte <-> printable character mapping. */
uint32_t egrc_tok_byte_char(unsigned char b);
/* The byte a character stands for, or -1 when it is not in the alphabet. */
int egrc_tok_char_byte(uint32_t cp);

/* Unicode White_Space, as Rust's \s (used around lstrip/rstrip tokens). */
int egrc_tok_is_space(uint32_t cp);
/* Rust's \w: letters, marks, decimal digits, connector punctuation, ZWJ/ZWNJ. */
int egrc_tok_is_word(uint32_t cp);

/* ---- hash maps (tokenizer_map.c) ---- */

typedef struct {
    uint64_t hash;
    uint32_t off, len; /* key bytes in the map's arena */
    int32_t val;       /* -1 marks an empty slot */
} egrc_tok_slot;

/* Token text -> id. Keys are copied into an arena the map owns, so the id ->
 * text table can point into it by offset. Sized once, never rehashed. */
typedef struct {
    egrc_tok_slot *slots;
    size_t mask, count;
    char *arena;
    size_t arena_len, arena_cap;
} egrc_tok_strmap;

typedef struct {
    uint64_t key;
    uint32_t rank;
    int32_t merged; /* -1 marks an empty slot */
} egrc_tok_pair_slot;

/* (left id, right id) -> (merge rank, id of the merged token). */
typedef struct {
    egrc_tok_pair_slot *slots;
    size_t mask, count;
} egrc_tok_pairmap;

int egrc_tok_strmap_init(egrc_tok_strmap *m, size_t expected);
void egrc_tok_strmap_free(egrc_tok_strmap *m);
/* Returns 0 when inserted, 1 when the key was present (value untouched, and
 * written to *existing), -1 when out of room. *off receives the arena offset. */
int egrc_tok_strmap_put(egrc_tok_strmap *m, const char *key, size_t len, int32_t val,
                        int32_t *existing, uint32_t *off);
int32_t egrc_tok_strmap_get(const egrc_tok_strmap *m, const char *key, size_t len);

int egrc_tok_pairmap_init(egrc_tok_pairmap *m, size_t expected);
void egrc_tok_pairmap_free(egrc_tok_pairmap *m);
/* A pair given again takes the later rank, as tokenizers' HashMap does. */
int egrc_tok_pairmap_put(egrc_tok_pairmap *m, int32_t left, int32_t right, uint32_t rank,
                         int32_t merged);
const egrc_tok_pair_slot *egrc_tok_pairmap_get(const egrc_tok_pairmap *m, int32_t left,
                                               int32_t right);

/* ---- the tokenizer ---- */

typedef struct {
    char *content; /* as written in the file: what egrc_tokenizer_token_id finds */
    size_t content_len;
    /* content, or its NFC form for a normalized token under an NFC
     * normalizer: what encode searches for and decode emits (tokenizers
     * keeps the normalized form as the token's text). */
    char *match;
    size_t match_len;
    int32_t id;
    unsigned char special, single_word, lstrip, rstrip, normalized;
} egrc_tok_added;

/* Added tokens searched in one pass, bucketed by first byte and longest
 * first inside a bucket, so the first hit at a position is the longest. */
typedef struct {
    size_t *order;
    size_t start[257];
} egrc_tok_added_index;

enum { EGRC_TOK_STEP_SPLIT, EGRC_TOK_STEP_BYTELEVEL };

typedef struct {
    int kind;
    pcre2_code *re;       /* Split's pattern; ByteLevel's GPT-2 pattern, or NULL */
    int add_prefix_space; /* ByteLevel only */
} egrc_tok_step;

typedef struct {
    uint32_t off, len; /* in vocab.arena; off == UINT32_MAX: no vocabulary token */
} egrc_tok_span;

struct egrc_tokenizer {
    egrc_tok_strmap vocab;
    egrc_tok_pairmap merges;
    int ignore_merges, fuse_unk;
    int32_t unk_id; /* -1: characters missing from the vocabulary are dropped */

    int32_t n_ids;        /* max id + 1 */
    egrc_tok_span *id_text; /* [n_ids] */
    int32_t *id_added;    /* [n_ids]: index into added, or -1 */

    egrc_tok_added *added;
    size_t n_added;
    egrc_tok_strmap added_map;       /* content -> index into added */
    egrc_tok_added_index raw_index;  /* tokens with normalized=false */
    egrc_tok_added_index norm_index; /* tokens with normalized=true */

    int nfc;
    egrc_tok_step *steps;
    size_t n_steps;
};

/* ---- loading (tokenizer_model.c, tokenizer_json.c) ---- */

/* Reads model.*: fills vocab, merges and the model options, and sets n_ids to
 * the largest vocabulary id + 1. `src` names the file in errors. */
int egrc_tok_load_model(egrc_tokenizer *tok, const cJSON *model, const char *src, egrc_error *err);
/* Reads added_tokens, normalizer, pre_tokenizer and decoder, and builds the
 * id tables; model must be loaded. */
int egrc_tok_load_rest(egrc_tokenizer *tok, const cJSON *root, const char *src, egrc_error *err);

/* Reads an optional boolean member obj[key]; absent or null gives dflt.
 * `path` is obj's own path in the file, for the error. */
int egrc_tok_json_bool(const cJSON *obj, const char *key, int dflt, int *out, const char *path,
                       const char *src, egrc_error *err);
/* Whether v is an integral number in [0, EGRC_TOK_MAX_ID); stores it. */
int egrc_tok_json_id(const cJSON *v, int32_t *out);

/* Compiles a Split pattern (literal: a "String" pattern) or a regex with
 * Unicode classes; `path` names it in errors. NULL on failure. */
pcre2_code *egrc_tok_regex_compile(const char *pattern, size_t len, int literal, const char *path,
                                   const char *src, egrc_error *err);

/* ---- encoding (tokenizer_pretok.c, tokenizer_bpe.c) ---- */

/* Words cut from one piece of text by the pre-tokenizer: word i is
 * buf.p[bounds[2i] .. bounds[2i+1]). */
typedef struct {
    egrc_tok_buf buf;
    size_t *bounds;
    size_t n, cap;
} egrc_tok_words;

typedef struct {
    int32_t id;
    int32_t prev, next; /* neighbours in the word, -1 at the ends */
    int alive;
} egrc_tok_symbol;

typedef struct {
    uint32_t rank;
    int32_t pos, merged;
} egrc_tok_candidate;

/* Scratch reused across the words of one encode call. */
typedef struct {
    pcre2_match_data *md;
    egrc_tok_words words[2];
    egrc_tok_buf norm, prefixed;
    egrc_tok_symbol *sym;
    egrc_tok_candidate *heap;
    size_t sym_cap, heap_cap;
} egrc_tok_scratch;

void egrc_tok_scratch_free(egrc_tok_scratch *s);
/* NFC of text into s->norm (the caller checks tok->nfc). */
int egrc_tok_normalize(egrc_tok_scratch *s, const char *text, size_t len, egrc_error *err);
/* Runs the pre-tokenizer steps over text; returns the words (owned by s). */
egrc_tok_words *egrc_tok_pretokenize(const egrc_tokenizer *tok, egrc_tok_scratch *s,
                                     const char *text, size_t len, egrc_error *err);
/* Appends the ids of one byte-level word. */
int egrc_tok_bpe_word(const egrc_tokenizer *tok, egrc_tok_scratch *s, const char *word, size_t len,
                      egrc_tok_ids *out, egrc_error *err);

#endif
