/* Builds the task suite's tokenizer, recipes/data/task_tokenizer.json: a
 * byte-level BPE trained on prompts and traces of core/eval/tasks.h.
 *
 * Build and run from the repository root (it is not part of the CMake build:
 * its output is committed, and rerunning it is only needed when the suite's
 * text changes):
 *
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Icore tools/make_task_tokenizer.c core/eval/tasks.c \
 *       core/eval/tasks_trace.c core/base/error.c core/io/fileio.c -lcjson -lpcre2-8 -lm -o /tmp/make_task_tokenizer
 *   /tmp/make_task_tokenizer recipes/data/task_tokenizer.json
 *
 * The result is deterministic: a fixed corpus seed, and ties between equally
 * frequent pairs broken by token id.
 *
 * The layout follows Qwen2: a Split pre-tokenizer with Qwen2's regex (whose
 * \p{N} alternative makes every digit a word of its own, so no merge can ever
 * join digits and numbers are always spelled digit by digit), then ByteLevel
 * without its own regex; ids 0-255 are the 256 byte tokens, merges follow,
 * then the added tokens "<|endoftext|>" (special: EOS and padding), "<think>"
 * and "</think>". The think markers are not marked special, as in Qwen3, so
 * decoding that drops special tokens still keeps them for answer checking. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "eval/tasks.h"

#define CORPUS_SEED 20251118u
/* Problems per family and level; each gives a concise and a verbose text. */
#define CORPUS_PER_CELL 2000
/* The id space before added tokens, and the least count worth a merge
 * (rarer pairs would be tokens the model hardly ever sees). */
#define MAX_VOCAB 1021
#define MIN_PAIR_COUNT 200
#define MAX_WORD_TYPES 4096
#define MAX_WORD_LEN 64

static const char split_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

typedef struct {
    char text[MAX_WORD_LEN];
    int len;
    long count;
    int sym[MAX_WORD_LEN]; /* token ids, merged in place */
    int n_sym;
} word;

typedef struct {
    char text[MAX_WORD_LEN];
    int len;
} token;

static word words[MAX_WORD_TYPES];
static int n_words;
static int word_slot[2 * MAX_WORD_TYPES]; /* open addressing: index + 1, 0 empty */
static token tokens[MAX_VOCAB];
static int n_tokens;
static int merges[MAX_VOCAB][2];
static int n_merges;
static long pair_count[MAX_VOCAB][MAX_VOCAB];

static void die(const char *what) {
    fprintf(stderr, "make_task_tokenizer: %s\n", what);
    exit(1);
}

static void count_word(const char *s, size_t len) {
    if (len >= MAX_WORD_LEN) die("a pre-tokenized word is longer than MAX_WORD_LEN");
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    for (uint32_t i = h % (2 * MAX_WORD_TYPES);; i = (i + 1) % (2 * MAX_WORD_TYPES)) {
        int k = word_slot[i] - 1;
        if (k < 0) {
            if (n_words == MAX_WORD_TYPES) die("more distinct words than MAX_WORD_TYPES");
            word *w = &words[n_words];
            memcpy(w->text, s, len);
            w->len = (int)len;
            w->count = 1;
            word_slot[i] = ++n_words;
            return;
        }
        if (words[k].len == (int)len && memcmp(words[k].text, s, len) == 0) {
            words[k].count++;
            return;
        }
    }
}

/* Pre-tokenizes one stretch of text between added tokens. */
static void count_words(const pcre2_code *re, pcre2_match_data *md, const char *s, size_t len) {
    size_t at = 0;
    while (at < len) {
        if (pcre2_match(re, (PCRE2_SPTR)s, len, at, 0, md, NULL) < 0) die("the split regex failed on the corpus");
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        /* The regex matches every character class, so matches tile the text. */
        if (ov[0] != at || ov[1] <= ov[0]) die("the split regex left a gap in the corpus");
        count_word(s + ov[0], ov[1] - ov[0]);
        at = ov[1];
    }
}

/* Cuts the added tokens out of text, as the tokenizer does before splitting. */
static void count_text(const pcre2_code *re, pcre2_match_data *md, const char *s) {
    static const char *const markers[] = {EGRC_TASK_THINK_OPEN, EGRC_TASK_THINK_CLOSE};
    while (*s) {
        const char *next = NULL;
        size_t skip = 0;
        for (int m = 0; m < 2; m++) {
            const char *hit = strstr(s, markers[m]);
            if (hit && (!next || hit < next)) {
                next = hit;
                skip = strlen(markers[m]);
            }
        }
        size_t len = next ? (size_t)(next - s) : strlen(s);
        count_words(re, md, s, len);
        s += len + skip;
    }
}

static void build_corpus(void) {
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)split_regex, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code,
                                   &at, NULL);
    if (!re) die("the split regex does not compile");
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    egrc_rng rng;
    egrc_rng_seed(&rng, CORPUS_SEED);
    char text[EGRC_TASK_TEXT_MAX];
    for (int f = 0; f < EGRC_TASK_FAMILIES; f++)
        for (int d = 1; d <= EGRC_TASK_DIFFICULTIES; d++)
            for (int i = 0; i < CORPUS_PER_CELL; i++) {
                egrc_task_problem p;
                egrc_error err;
                if (egrc_task_generate(f, d, &rng, &p, &err) != 0) die(err.msg);
                for (int style = 0; style < 2; style++) {
                    if (egrc_task_prompt(&p, text, sizeof text, &err) != 0) die(err.msg);
                    count_text(re, md, text);
                    if (egrc_task_trace(&p, style ? EGRC_TRACE_VERBOSE : EGRC_TRACE_CONCISE, &rng, text,
                                        sizeof text, &err) != 0)
                        die(err.msg);
                    count_text(re, md, text);
                }
            }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
}

static int find_token(const char *s, int len) {
    for (int i = 0; i < n_tokens; i++)
        if (tokens[i].len == len && memcmp(tokens[i].text, s, (size_t)len) == 0) return i;
    return -1;
}

/* Classic BPE training: merge the most frequent adjacent pair, count again. */
static void train(void) {
    for (int b = 0; b < 256; b++) {
        tokens[b].text[0] = (char)b;
        tokens[b].len = 1;
    }
    n_tokens = 256;
    for (int i = 0; i < n_words; i++) {
        for (int k = 0; k < words[i].len; k++) words[i].sym[k] = (unsigned char)words[i].text[k];
        words[i].n_sym = words[i].len;
    }
    while (n_tokens < MAX_VOCAB) {
        memset(pair_count, 0, sizeof pair_count);
        for (int i = 0; i < n_words; i++)
            for (int k = 0; k + 1 < words[i].n_sym; k++)
                pair_count[words[i].sym[k]][words[i].sym[k + 1]] += words[i].count;
        int best_a = -1, best_b = -1;
        long best = MIN_PAIR_COUNT - 1;
        for (int a = 0; a < n_tokens; a++)
            for (int b = 0; b < n_tokens; b++)
                if (pair_count[a][b] > best) {
                    best = pair_count[a][b];
                    best_a = a;
                    best_b = b;
                }
        if (best_a < 0) break;
        char joined[MAX_WORD_LEN];
        int len = tokens[best_a].len + tokens[best_b].len;
        memcpy(joined, tokens[best_a].text, (size_t)tokens[best_a].len);
        memcpy(joined + tokens[best_a].len, tokens[best_b].text, (size_t)tokens[best_b].len);
        /* Two merge paths can spell the same string; it keeps one id. */
        int merged = find_token(joined, len);
        if (merged < 0) {
            merged = n_tokens++;
            memcpy(tokens[merged].text, joined, (size_t)len);
            tokens[merged].len = len;
        }
        merges[n_merges][0] = best_a;
        merges[n_merges][1] = best_b;
        n_merges++;
        for (int i = 0; i < n_words; i++) {
            word *w = &words[i];
            int out = 0;
            for (int k = 0; k < w->n_sym; k++) {
                if (k + 1 < w->n_sym && w->sym[k] == best_a && w->sym[k + 1] == best_b) {
                    w->sym[out++] = merged;
                    k++;
                } else {
                    w->sym[out++] = w->sym[k];
                }
            }
            w->n_sym = out;
        }
    }
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
 * the rest for 256, 257, ... in byte order. */
static uint32_t byte_char(unsigned char b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    uint32_t n = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) n++;
    return 256 + n;
}

/* A token's text in the byte-level alphabet, UTF-8 encoded. */
static void byte_level(const token *t, char *out) {
    for (int i = 0; i < t->len; i++) {
        uint32_t cp = byte_char((unsigned char)t->text[i]);
        if (cp < 0x80) {
            *out++ = (char)cp;
        } else {
            *out++ = (char)(0xC0 | (cp >> 6));
            *out++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    *out = '\0';
}

static cJSON *added_token(int id, const char *content, int special) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "id", id);
    cJSON_AddStringToObject(t, "content", content);
    cJSON_AddBoolToObject(t, "single_word", 0);
    cJSON_AddBoolToObject(t, "lstrip", 0);
    cJSON_AddBoolToObject(t, "rstrip", 0);
    cJSON_AddBoolToObject(t, "normalized", 0);
    cJSON_AddBoolToObject(t, "special", special);
    return t;
}

static cJSON *byte_level_step(int with_regex_options) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "type", "ByteLevel");
    cJSON_AddBoolToObject(s, "add_prefix_space", with_regex_options);
    cJSON_AddBoolToObject(s, "trim_offsets", with_regex_options);
    cJSON_AddBoolToObject(s, "use_regex", with_regex_options);
    return s;
}

static char *to_json(void) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON_AddItemToArray(added, added_token(n_tokens, EGRC_TASK_EOS, 1));
    cJSON_AddItemToArray(added, added_token(n_tokens + 1, EGRC_TASK_THINK_OPEN, 0));
    cJSON_AddItemToArray(added, added_token(n_tokens + 2, EGRC_TASK_THINK_CLOSE, 0));
    cJSON_AddNullToObject(root, "normalizer");

    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "Sequence");
    cJSON *steps = cJSON_AddArrayToObject(pre, "pretokenizers");
    cJSON *split = cJSON_CreateObject();
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", split_regex);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", 0);
    cJSON_AddItemToArray(steps, split);
    cJSON_AddItemToArray(steps, byte_level_step(0));
    cJSON_AddNullToObject(root, "post_processor");
    cJSON_AddItemToObject(root, "decoder", byte_level_step(1));

    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    char a[2 * MAX_WORD_LEN + 1], b[2 * MAX_WORD_LEN + 1];
    for (int i = 0; i < n_tokens; i++) {
        byte_level(&tokens[i], a);
        cJSON_AddNumberToObject(vocab, a, i);
    }
    cJSON *list = cJSON_AddArrayToObject(model, "merges");
    for (int i = 0; i < n_merges; i++) {
        byte_level(&tokens[merges[i][0]], a);
        byte_level(&tokens[merges[i][1]], b);
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(a));
        cJSON_AddItemToArray(pair, cJSON_CreateString(b));
        cJSON_AddItemToArray(list, pair);
    }
    char *json = cJSON_Print(root);
    cJSON_Delete(root);
    if (!json) die("out of memory writing JSON");
    return json;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_task_tokenizer OUTPUT.json\n");
        return 2;
    }
    build_corpus();
    train();
    char *json = to_json();
    size_t len = strlen(json);
    json[len] = '\n'; /* a text file ends with a newline; the NUL is not written */
    egrc_error err;
    if (egrc_write_file_atomic(argv[1], json, len + 1, &err) != 0) die(err.msg);
    free(json);
    printf("%s: %d word types, %d merges, %d ids (%d tokens + 3 added)\n", argv[1], n_words, n_merges,
           n_tokens + 3, n_tokens);
    return 0;
}
