/* BPE on one word: start from one symbol per character and repeatedly merge
 * the adjacent pair with the lowest merge rank (leftmost on ties) until no
 * pair is in the merge table. Candidates sit in a min-heap keyed by (rank,
 * position); entries made stale by earlier merges are skipped when popped,
 * so a word of n characters costs O(n log n). */
#include "tokenizer_internal.h"

#include <stdlib.h>

static int before(const egrc_tok_candidate *a, const egrc_tok_candidate *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(egrc_tok_candidate *h, size_t *n, egrc_tok_candidate c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&c, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = c;
}

static egrc_tok_candidate heap_pop(egrc_tok_candidate *h, size_t *n) {
    egrc_tok_candidate top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= *n) break;
        if (child + 1 < *n && before(&h[child + 1], &h[child])) child++;
        if (!before(&h[child], &last)) break;
        h[i] = h[child];
        i = child;
    }
    if (*n) h[i] = last;
    return top;
}

/* Queues the pair starting at symbol `left`, if it has a right neighbour and
 * the pair is a merge. */
static void consider(const egrc_tokenizer *tok, const egrc_tok_symbol *sym, int32_t left,
                     egrc_tok_candidate *heap, size_t *n) {
    if (left < 0 || sym[left].next < 0) return;
    const egrc_tok_pair_slot *m = egrc_tok_pairmap_get(&tok->merges, sym[left].id, sym[sym[left].next].id);
    if (m) heap_push(heap, n, (egrc_tok_candidate){.rank = m->rank, .pos = left, .merged = m->merged});
}

static int reserve(egrc_tok_scratch *s, size_t chars) {
    /* Each merge queues at most two new pairs: n - 1 initial + 2(n - 1). */
    if (chars > (size_t)INT32_MAX / 3) return -1;
    if (chars > s->sym_cap) {
        egrc_tok_symbol *sym = realloc(s->sym, chars * sizeof *sym);
        if (!sym) return -1;
        s->sym = sym;
        s->sym_cap = chars;
    }
    if (3 * chars > s->heap_cap) {
        egrc_tok_candidate *heap = realloc(s->heap, 3 * chars * sizeof *heap);
        if (!heap) return -1;
        s->heap = heap;
        s->heap_cap = 3 * chars;
    }
    return 0;
}

/* One symbol per character of the word. A character missing from the
 * vocabulary becomes unk_token (runs fused when fuse_unk) or, without one,
 * is dropped, as tokenizers' BPE does. */
static size_t initial_symbols(const egrc_tokenizer *tok, egrc_tok_symbol *sym, const char *word,
                              size_t len) {
    size_t n = 0, i = 0;
    int unk_pending = 0;
    while (i < len) {
        uint32_t cp;
        int k = egrc_tok_utf8_next((const unsigned char *)word + i, len - i, &cp);
        size_t clen = k > 0 ? (size_t)k : 1;
        int32_t id = egrc_tok_strmap_get(&tok->vocab, word + i, clen);
        i += clen;
        if (id < 0 && tok->unk_id < 0) continue;
        if (id < 0 && unk_pending && tok->fuse_unk) continue;
        if (unk_pending) sym[n++].id = tok->unk_id;
        unk_pending = id < 0;
        if (id >= 0) sym[n++].id = id;
    }
    if (unk_pending) sym[n++].id = tok->unk_id;
    for (size_t j = 0; j < n; j++) {
        sym[j].prev = (int32_t)j - 1;
        sym[j].next = j + 1 < n ? (int32_t)j + 1 : -1;
        sym[j].alive = 1;
    }
    return n;
}

int egrc_tok_bpe_word(const egrc_tokenizer *tok, egrc_tok_scratch *s, const char *word, size_t len,
                      egrc_tok_ids *out, egrc_error *err) {
    if (len == 0) return 0;
    if (tok->ignore_merges) {
        int32_t whole = egrc_tok_strmap_get(&tok->vocab, word, len);
        if (whole >= 0)
            return egrc_tok_ids_push(out, whole) != 0 ? egrc_fail(err, "out of memory encoding text") : 0;
    }
    if (reserve(s, len) != 0) return egrc_fail(err, "out of memory encoding a %zu-byte word", len);
    egrc_tok_symbol *sym = s->sym;
    egrc_tok_candidate *heap = s->heap;
    size_t n = initial_symbols(tok, sym, word, len), queued = 0;
    for (size_t j = 0; j + 1 < n; j++) consider(tok, sym, (int32_t)j, heap, &queued);

    while (queued > 0) {
        egrc_tok_candidate c = heap_pop(heap, &queued);
        egrc_tok_symbol *left = &sym[c.pos];
        if (!left->alive || left->next < 0) continue;
        /* Stale if the pair at this position changed since it was queued.
         * Like tokenizers, compare only the merge result: a different pair
         * producing the same token still counts. */
        const egrc_tok_pair_slot *m = egrc_tok_pairmap_get(&tok->merges, left->id, sym[left->next].id);
        if (!m || m->merged != c.merged) continue;
        egrc_tok_symbol *right = &sym[left->next];
        left->id = c.merged;
        right->alive = 0;
        left->next = right->next;
        if (right->next >= 0) sym[right->next].prev = c.pos;
        consider(tok, sym, left->prev, heap, &queued);
        consider(tok, sym, c.pos, heap, &queued);
    }
    /* Symbol 0 is never merged away: merges always keep the left one. */
    for (int32_t j = n ? 0 : -1; j >= 0; j = sym[j].next)
        if (egrc_tok_ids_push(out, sym[j].id) != 0) return egrc_fail(err, "out of memory encoding text");
    return 0;
}
