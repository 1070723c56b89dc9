/* Open-addressing hash maps for the tokenizer: token text -> id, and an id
 * pair -> merge. Both are sized once from the number of entries the file
 * declares (load factor at most 1/2) and never rehashed, so probing stays
 * short and no entry moves after insertion. */
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a: simple, and good enough for short token strings. */
static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3u;
    }
    return h;
}

/* splitmix64's finalizer: id pairs are small, clustered integers, and this
 * spreads them over all bits. */
static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    return x;
}

/* Smallest power of two holding `expected` entries at load factor <= 1/2. */
static size_t table_size(size_t expected) {
    size_t cap = 16;
    while (cap / 2 < expected) {
        if (cap > SIZE_MAX / 4) return 0;
        cap *= 2;
    }
    return cap;
}

int egrc_tok_strmap_init(egrc_tok_strmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    size_t cap = table_size(expected);
    if (!cap || cap > SIZE_MAX / sizeof *m->slots) return -1;
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) return -1;
    for (size_t i = 0; i < cap; i++) m->slots[i].val = -1;
    m->mask = cap - 1;
    return 0;
}

void egrc_tok_strmap_free(egrc_tok_strmap *m) {
    free(m->slots);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

static int slot_matches(const egrc_tok_strmap *m, const egrc_tok_slot *s, uint64_t h, const char *key,
                        size_t len) {
    return s->hash == h && s->len == len && memcmp(m->arena + s->off, key, len) == 0;
}

int32_t egrc_tok_strmap_get(const egrc_tok_strmap *m, const char *key, size_t len) {
    if (!m->slots) return -1;
    uint64_t h = hash_bytes(key, len);
    for (size_t i = (size_t)h & m->mask;; i = (i + 1) & m->mask) {
        const egrc_tok_slot *s = &m->slots[i];
        if (s->val < 0) return -1;
        if (slot_matches(m, s, h, key, len)) return s->val;
    }
}

/* Copies key into the arena; offsets stay valid when the arena moves. The
 * arena exists once any key does, an empty one too, so that arena + off
 * always points into it. */
static int arena_add(egrc_tok_strmap *m, const char *key, size_t len, uint32_t *off) {
    if (len > UINT32_MAX || m->arena_len > UINT32_MAX - len) return -1;
    if (!m->arena || m->arena_len + len > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap : 4096;
        while (cap < m->arena_len + len) cap *= 2;
        char *p = realloc(m->arena, cap);
        if (!p) return -1;
        m->arena = p;
        m->arena_cap = cap;
    }
    if (len) memcpy(m->arena + m->arena_len, key, len);
    *off = (uint32_t)m->arena_len;
    m->arena_len += len;
    return 0;
}

int egrc_tok_strmap_put(egrc_tok_strmap *m, const char *key, size_t len, int32_t val,
                        int32_t *existing, uint32_t *off) {
    uint64_t h = hash_bytes(key, len);
    size_t i = (size_t)h & m->mask;
    for (;; i = (i + 1) & m->mask) {
        egrc_tok_slot *s = &m->slots[i];
        if (s->val < 0) break;
        if (slot_matches(m, s, h, key, len)) {
            *existing = s->val;
            *off = s->off;
            return 1;
        }
    }
    /* Keeping half the table empty bounds probe lengths; the caller sized it. */
    if (m->count + 1 > (m->mask + 1) / 2) return -1;
    uint32_t at;
    if (arena_add(m, key, len, &at) != 0) return -1;
    m->slots[i] = (egrc_tok_slot){.hash = h, .off = at, .len = (uint32_t)len, .val = val};
    m->count++;
    *off = at;
    return 0;
}

static uint64_t pair_key(int32_t left, int32_t right) {
    return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
}

int egrc_tok_pairmap_init(egrc_tok_pairmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    size_t cap = table_size(expected);
    if (!cap || cap > SIZE_MAX / sizeof *m->slots) return -1;
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) return -1;
    for (size_t i = 0; i < cap; i++) m->slots[i].merged = -1;
    m->mask = cap - 1;
    return 0;
}

void egrc_tok_pairmap_free(egrc_tok_pairmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

int egrc_tok_pairmap_put(egrc_tok_pairmap *m, int32_t left, int32_t right, uint32_t rank,
                         int32_t merged) {
    uint64_t key = pair_key(left, right);
    size_t i = (size_t)hash_u64(key) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        egrc_tok_pair_slot *s = &m->slots[i];
        if (s->merged < 0) break;
        if (s->key == key) {
            s->rank = rank;
            s->merged = merged;
            return 0;
        }
    }
    if (m->count + 1 > (m->mask + 1) / 2) return -1;
    m->slots[i] = (egrc_tok_pair_slot){.key = key, .rank = rank, .merged = merged};
    m->count++;
    return 0;
}

const egrc_tok_pair_slot *egrc_tok_pairmap_get(const egrc_tok_pairmap *m, int32_t left,
                                               int32_t right) {
    if (!m->slots) return NULL;
    uint64_t key = pair_key(left, right);
    for (size_t i = (size_t)hash_u64(key) & m->mask;; i = (i + 1) & m->mask) {
        const egrc_tok_pair_slot *s = &m->slots[i];
        if (s->merged < 0) return NULL;
        if (s->key == key) return s;
    }
}
