/* Tokenizer tests: every case recorded from Hugging Face `tokenizers` must
 * encode to the same ids and decode to the same text; small hand-made
 * tokenizers pin down the options the reference file does not use; and bad
 * files or inputs must fail with a message naming what is wrong. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "io/tokenizer.h"

#define TOK_DIR EGRC_TEST_DATA "/tokenizer"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *bigger = realloc(buf, 2 * cap + 1);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

/* Encodes text and compares with the expected ids. */
static void check_encode(const egrc_tokenizer *tok, const char *text, size_t len, const int32_t *want,
                         size_t want_n, const char *what) {
    int32_t *ids = NULL;
    size_t n = 0;
    egrc_error err = {{0}};
    int rc = egrc_tokenizer_encode(tok, text, len, &ids, &n, &err);
    CHECK_MSG(rc == 0, "%s: encode failed: %s", what, err.msg);
    CHECK_MSG(n == want_n, "%s: %zu ids, expected %zu", what, n, want_n);
    for (size_t i = 0; rc == 0 && i < n && i < want_n; i++)
        CHECK_MSG(ids[i] == want[i], "%s: id %zu is %d, expected %d", what, i, ids[i], want[i]);
    free(ids);
}

static void check_decode(const egrc_tokenizer *tok, const int32_t *ids, size_t n, int keep_special,
                         const char *want, const char *what) {
    egrc_error err = {{0}};
    char *text = egrc_tokenizer_decode(tok, ids, n, keep_special, &err);
    CHECK_MSG(text != NULL, "%s: decode failed: %s", what, err.msg);
    if (text) CHECK_MSG(strcmp(text, want) == 0, "%s: decoded '%s', expected '%s'", what, text, want);
    free(text);
}

static void check_reference_cases(const egrc_tokenizer *tok) {
    size_t len = 0;
    char *json = slurp(TOK_DIR "/cases.json", &len);
    CHECK_MSG(json != NULL, "cannot read %s", TOK_DIR "/cases.json");
    if (!json) return;
    cJSON *cases = cJSON_ParseWithLength(json, len);
    CHECK(cJSON_IsArray(cases));
    int n_cases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(c, "text");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(c, "ids");
        const cJSON *decoded = cJSON_GetObjectItemCaseSensitive(c, "decoded");
        CHECK(cJSON_IsString(text) && cJSON_IsArray(ids) && cJSON_IsString(decoded));
        if (!cJSON_IsString(text) || !cJSON_IsArray(ids) || !cJSON_IsString(decoded)) continue;
        size_t n = (size_t)cJSON_GetArraySize(ids), i = 0;
        int32_t *want = malloc((n ? n : 1) * sizeof *want);
        const cJSON *id;
        cJSON_ArrayForEach(id, ids) want[i++] = (int32_t)id->valuedouble;
        char what[96];
        snprintf(what, sizeof what, "case %d (%.40s)", n_cases, text->valuestring);
        check_encode(tok, text->valuestring, strlen(text->valuestring), want, n, what);
        check_decode(tok, want, n, 1, decoded->valuestring, what);
        free(want);
        n_cases++;
    }
    CHECK_MSG(n_cases >= 14, "only %d cases in cases.json", n_cases);
    cJSON_Delete(cases);
    free(json);
}

static void check_special_tokens(const egrc_tokenizer *tok) {
    CHECK(egrc_tokenizer_vocab_size(tok) == 3000);
    int32_t think = egrc_tokenizer_token_id(tok, "<think>");
    int32_t end_think = egrc_tokenizer_token_id(tok, "</think>");
    CHECK(think == 3 && end_think == 4);
    CHECK(egrc_tokenizer_is_special(tok, think));
    CHECK(!egrc_tokenizer_is_special(tok, egrc_tokenizer_token_id(tok, "a")));
    CHECK(egrc_tokenizer_token_id(tok, "no such token") == -1);
    check_encode(tok, "<think>", 7, (const int32_t[]){3}, 1, "<think> alone");
    check_encode(tok, "<think></think><|im_end|>", 25, (const int32_t[]){3, 4, 2}, 3, "adjacent specials");
    int32_t ids[] = {3, egrc_tokenizer_token_id(tok, "a"), 4};
    check_decode(tok, ids, 3, 1, "<think>a</think>", "keep_special");
    check_decode(tok, ids, 3, 0, "a", "drop special");
    check_decode(tok, NULL, 0, 1, "", "no ids");
}

/* U+180E is \s to PCRE2 but not to Oniguruma, whose answer this is. */
static void check_regex_spaces(const egrc_tokenizer *tok) {
    check_encode(tok, "\xE1\xA0\x8E't", 5, (const int32_t[]){162, 259, 241, 11, 88}, 5, "U+180E is not a space");
}

/* Bytes that are not UTF-8 on their own decode to U+FFFD, one per maximal
 * invalid subpart (String::from_utf8_lossy). */
static void check_lossy_decode(const egrc_tokenizer *tok) {
    /* U+00E4 and U+00B8 are the byte-level characters for bytes E4 and B8:
     * the first two bytes of a three-byte character. */
    int32_t e4 = egrc_tokenizer_token_id(tok, "\xC3\xA4"), b8 = egrc_tokenizer_token_id(tok, "\xC2\xB8");
    int32_t a = egrc_tokenizer_token_id(tok, "a");
    CHECK(e4 >= 0 && b8 >= 0 && a >= 0);
    check_decode(tok, (const int32_t[]){e4, b8, a}, 3, 1, "\xEF\xBF\xBD" "a", "truncated sequence");
    check_decode(tok, (const int32_t[]){b8, b8}, 2, 1, "\xEF\xBF\xBD\xEF\xBF\xBD", "stray continuations");
}

static void check_bad_inputs(const egrc_tokenizer *tok) {
    egrc_error err = {{0}};
    int32_t *ids = NULL;
    size_t n = 0;
    static const struct {
        const char *text;
        size_t len;
    } bad[] = {{"abc\xff", 4}, {"\xC0\xAF", 2}, {"\xED\xA0\x80", 3}, {"\xF4\x90\x80\x80", 4}, {"ok\xE4\xB8", 4}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        CHECK_MSG(egrc_tokenizer_encode(tok, bad[i].text, bad[i].len, &ids, &n, &err) == -1, "bad text %zu", i);
        CHECK_MSG(strstr(err.msg, "UTF-8") != NULL, "bad text %zu: '%s'", i, err.msg);
        CHECK(ids == NULL && n == 0);
    }
    char *text = egrc_tokenizer_decode(tok, (const int32_t[]){5, 3000}, 2, 1, &err);
    CHECK(text == NULL);
    CHECK_MSG(strstr(err.msg, "3000") != NULL, "'%s'", err.msg);
    text = egrc_tokenizer_decode(tok, (const int32_t[]){-1}, 1, 1, &err);
    CHECK(text == NULL);
}

static void expect_load_error(const char *json, const char *needle, const char *what) {
    egrc_error err = {{0}};
    egrc_tokenizer *tok = egrc_tokenizer_from_json(json, strlen(json), "bad.json", &err);
    CHECK_MSG(tok == NULL, "%s: loaded", what);
    CHECK_MSG(strstr(err.msg, needle) != NULL && strstr(err.msg, "bad.json") != NULL,
              "%s: message '%s' lacks '%s'", what, err.msg, needle);
    egrc_tokenizer_free(tok);
}

static void expect_file_error(const char *path, const char *needle) {
    egrc_error err = {{0}};
    egrc_tokenizer *tok = egrc_tokenizer_load(path, &err);
    CHECK_MSG(tok == NULL, "%s: loaded", path);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", path, err.msg, needle);
    egrc_tokenizer_free(tok);
}

/* A tiny tokenizer around a model and pipeline given as JSON fragments. */
#define TINY(model, extra)                                                                         \
    "{\"model\": " model ", \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false}," \
    " \"decoder\": {\"type\": \"ByteLevel\"}" extra "}"
#define TINY_MODEL "{\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}"

static void check_bad_files(const char *reference, size_t reference_len) {
    expect_file_error(TOK_DIR "/tokenizer_missing_model.json", "model is missing");
    expect_file_error(TOK_DIR "/tokenizer_unigram.json", "model.type 'Unigram' is not supported");
    /* T5's files carry no model.type; the refusal still names the kind. */
    expect_file_error(TOK_DIR "/tokenizer_unigram_untyped.json",
                      "model.type 'Unigram' (no type given; told by its fields) is not supported");
    expect_file_error(TOK_DIR "/tokenizer_vocab_array.json", "model.vocab must be an object");
    expect_file_error(TOK_DIR "/tokenizer_merge_unknown.json", "model.merges[1]");
    expect_file_error(TOK_DIR "/no_such_file.json", "no_such_file.json");

    egrc_error err = {{0}};
    for (size_t cut = 1; cut < reference_len; cut += reference_len / 7) {
        egrc_tokenizer *tok = egrc_tokenizer_from_json(reference, cut, "cut.json", &err);
        CHECK_MSG(tok == NULL && strstr(err.msg, "not valid JSON"), "truncated at %zu: '%s'", cut, err.msg);
        egrc_tokenizer_free(tok);
    }
    size_t depth = 20000;
    char *deep = malloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    expect_load_error(deep, "not valid JSON", "deep nesting");
    free(deep);

    expect_load_error("", "empty", "empty file");
    expect_load_error("[1, 2]", "top level", "array at top level");
    expect_load_error(TINY(TINY_MODEL, "") " junk", "after the JSON value", "trailing data");
    expect_load_error(TINY("{\"type\": \"BPE\", \"merges\": []}", ""), "model.vocab is missing", "no vocab");
    expect_load_error(TINY("{\"type\": \"BPE\", \"vocab\": {}}", ""), "model.merges is missing", "no merges");
    expect_load_error(TINY("{\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}", ""), "model.vocab['a']",
                      "negative id");
    expect_load_error(TINY("{\"type\": \"BPE\", \"vocab\": {\"a\": 16777216}, \"merges\": []}", ""),
                      "model.vocab['a']", "huge id");
    expect_load_error(TINY("{\"type\": \"BPE\", \"vocab\": {\"a\": 1.5}, \"merges\": []}", ""), "model.vocab['a']",
                      "fractional id");
    expect_load_error(TINY("{\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}", ""),
                      "model.vocab gives id 0", "duplicate id");
    expect_load_error(TINY("{\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}", ""), "model.merges[0]",
                      "merge without a space");
    expect_load_error(TINY("{\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\", 1]]}", ""),
                      "model.merges[0]", "merge pair of wrong type");
    expect_load_error(TINY("{\"type\": \"BPE\", \"vocab\": {\"a\": \"0\"}, \"merges\": []}", ""), "model.vocab['a']",
                      "id as a string");
    expect_load_error(TINY("{\"type\": \"BPE\", \"vocab\": {}, \"merges\": [], \"unk_token\": \"<unk>\"}", ""),
                      "model.unk_token", "unknown unk_token");
    expect_load_error(TINY("{\"type\": \"BPE\", \"vocab\": {}, \"merges\": [], \"dropout\": 0.1}", ""),
                      "model.dropout", "dropout");
    expect_load_error(TINY("{\"type\": \"BPE\", \"vocab\": {}, \"merges\": [], \"byte_fallback\": true}", ""),
                      "model.byte_fallback", "byte_fallback");
    expect_load_error(TINY("{\"type\": \"BPE\", \"vocab\": {}, \"merges\": [], \"fuse_unk\": 1}", ""),
                      "model.fuse_unk", "fuse_unk not a bool");
    expect_load_error(TINY(TINY_MODEL, ", \"normalizer\": {\"type\": \"NFKC\"}"), "normalizer.type 'NFKC'", "NFKC");
    expect_load_error(TINY(TINY_MODEL, ", \"added_tokens\": [{\"id\": 7}]"), "added_tokens[0].content",
                      "added token without content");
    expect_load_error(TINY(TINY_MODEL, ", \"added_tokens\": [{\"id\": -3, \"content\": \"x\"}]"),
                      "added_tokens[0].id", "negative added id");
    /* tokenizers gives added tokens its own ids: vocabulary ids, then 3, 4, ... */
    expect_load_error(TINY(TINY_MODEL, ", \"added_tokens\": [{\"id\": 1, \"content\": \"<x>\"}]"),
                      "added_tokens[0].id is 1, but tokenizers gives '<x>' id 3", "added id taken");
    expect_load_error(TINY(TINY_MODEL, ", \"added_tokens\": [{\"id\": 2, \"content\": \"a\"}]"),
                      "added_tokens[0].id is 2, but tokenizers gives 'a' id 0", "added id not the vocab's");
    expect_load_error(TINY(TINY_MODEL, ", \"added_tokens\": [{\"id\": 3, \"content\": \"x\"}, {\"id\": 3, "
                                       "\"content\": \"y\"}]"),
                      "added_tokens[1].id is 3", "two added tokens, one id");
    expect_load_error(TINY(TINY_MODEL, ", \"added_tokens\": [{\"id\": 3, \"content\": \"x\"}, {\"id\": 4, "
                                       "\"content\": \"x\"}]"),
                      "added_tokens[1].content 'x' appears twice", "added token twice");
    expect_load_error(TINY("{\"vocab\": {\"a\": 0, \"b\": 3}, \"merges\": []}",
                           ", \"added_tokens\": [{\"id\": 2, \"content\": \"x\"}, {\"id\": 3, \"content\": \"y\"}]"),
                      "added_tokens[1].id 3 already belongs to 'b'", "added id inside a sparse vocab");
    expect_load_error("{\"model\": " TINY_MODEL ", \"pre_tokenizer\": {\"type\": \"Whitespace\"}}",
                      "pre_tokenizer.type 'Whitespace'", "unsupported pre-tokenizer");
    expect_load_error("{\"model\": " TINY_MODEL ", \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": "
                      "[{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}]}}",
                      "pre_tokenizer.pretokenizers[0].pattern.Regex", "bad regex");
    expect_load_error("{\"model\": " TINY_MODEL ", \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": "
                      "{\"String\": \" \"}, \"behavior\": \"Removed\"}}",
                      "pre_tokenizer.behavior 'Removed'", "Split behavior");
    expect_load_error("{\"model\": " TINY_MODEL ", \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
                      "decoder is missing", "no decoder");
    expect_load_error("{\"model\": " TINY_MODEL ", \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"decoder\": "
                      "{\"type\": \"WordPiece\"}}",
                      "decoder.type 'WordPiece'", "wrong decoder");
    expect_load_error("{\"model\": " TINY_MODEL ", \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": "
                      "{\"String\": \" \"}, \"behavior\": \"Isolated\"}, \"decoder\": {\"type\": \"ByteLevel\"}}",
                      "ByteLevel", "no ByteLevel step");
}

static egrc_tokenizer *tiny(const char *json) {
    egrc_error err = {{0}};
    egrc_tokenizer *tok = egrc_tokenizer_from_json(json, strlen(json), "tiny.json", &err);
    CHECK_MSG(tok != NULL, "tiny tokenizer: %s", err.msg);
    return tok;
}

/* Options the reference file leaves at their defaults. Expected ids follow
 * from the rules tokenizers applies (see each comment). */
static void check_options(void) {
    /* Ġ is the byte-level character for a space. */
#define VOCAB "\"a\": 0, \"b\": 1, \"ab\": 2, \"\xC4\xA0\": 3, \"\xC4\xA0" "ab\": 4, \"c\": 5, \"abc\": 6"
    egrc_tokenizer *tok = tiny("{\"model\": {\"type\": \"BPE\", \"vocab\": {" VOCAB "}, \"merges\": [[\"a\", \"b\"], "
                               "\"\xC4\xA0 ab\"]}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"decoder\": "
                               "{\"type\": \"ByteLevel\"}, \"added_tokens\": [{\"id\": 7, \"content\": \"<x>\", "
                               "\"lstrip\": true, \"rstrip\": true, \"special\": true}, {\"id\": 8, \"content\": "
                               "\"ba\", \"single_word\": true}, {\"id\": 9, \"content\": \" c\", \"rstrip\": true, "
                               "\"normalized\": false}]}");
    if (tok) {
        /* add_prefix_space defaults to true: " ab ab" -> [Ġab, Ġab]. */
        check_encode(tok, "ab ab", 5, (const int32_t[]){4, 4}, 2, "prefix space");
        check_decode(tok, (const int32_t[]){4, 4}, 2, 1, " ab ab", "prefix space decode");
        /* abc is in the vocabulary but no merge reaches it. */
        check_encode(tok, "abc", 3, (const int32_t[]){4, 5}, 2, "no ignore_merges");
        /* lstrip/rstrip swallow the spaces; each side then gets its prefix space. */
        check_encode(tok, "ab  <x>  ab", 11, (const int32_t[]){4, 7, 4}, 3, "lstrip rstrip");
        /* single_word: "ba" glued to "c" is not the added token. */
        check_encode(tok, "cba", 3, (const int32_t[]){3, 5, 1, 0}, 4, "single_word glued");
        /* "c " -> " c " -> [Ġc as Ġ c, Ġ], then the token. */
        check_encode(tok, "c ba", 4, (const int32_t[]){3, 5, 3, 8}, 4, "single_word alone");
        /* Without unk_token a character outside the vocabulary is dropped, so
         * its neighbours merge: " azb" -> Ġ a b -> Ġab. */
        check_encode(tok, "azb", 3, (const int32_t[]){4}, 1, "unknown char dropped");
        /* The search resumes where " c" ended, inside the space its rstrip
         * swallowed, so the second " c" is found there too. */
        check_encode(tok, " c c", 4, (const int32_t[]){9, 9}, 2, "match inside stripped space");
        egrc_tokenizer_free(tok);
    }
    tok = tiny("{\"model\": {\"type\": \"BPE\", \"vocab\": {" VOCAB ", \"<unk>\": 9}, \"merges\": [\"a b\"], "
               "\"ignore_merges\": true, \"unk_token\": \"<unk>\", \"fuse_unk\": true}, \"pre_tokenizer\": "
               "{\"type\": \"ByteLevel\", \"add_prefix_space\": false}, \"decoder\": {\"type\": \"ByteLevel\"}}");
    if (tok) {
        check_encode(tok, "abc", 3, (const int32_t[]){6}, 1, "ignore_merges");
        check_encode(tok, "azzb", 4, (const int32_t[]){0, 9, 1}, 3, "fused unk");
        egrc_tokenizer_free(tok);
    }
    /* A normalized added token matches its NFC form: "e" + U+0301 -> U+00E9. */
    tok = tiny("{\"model\": {\"type\": \"BPE\", \"vocab\": {" VOCAB "}, \"merges\": []}, \"normalizer\": "
               "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}]}, \"pre_tokenizer\": {\"type\": "
               "\"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"String\": \"c\"}, "
               "\"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": "
               "false}]}, \"decoder\": {\"type\": \"ByteLevel\"}, \"added_tokens\": [{\"id\": 7, \"content\": "
               "\"e\xCC\x81\", \"normalized\": true}]}");
    if (tok) {
        check_encode(tok, "a\xC3\xA9" "b", 4, (const int32_t[]){0, 7, 1}, 3, "normalized added token");
        check_encode(tok, "ae\xCC\x81" "b", 5, (const int32_t[]){0, 7, 1}, 3, "normalized added, decomposed");
        /* Split on the literal "c" isolates it: "acb" -> a | c | b. */
        check_encode(tok, "acb", 3, (const int32_t[]){0, 5, 1}, 3, "Split String");
        egrc_tokenizer_free(tok);
    }
#undef VOCAB
    /* Digits (SmolLM's first step) cuts numbers off before ByteLevel, so the
     * merge "a 1" never applies; ids checked against tokenizers 0.23.3. */
    for (int individual = 0; individual < 2; individual++) {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"1\": 0, \"2\": 1, \"12\": 2, \"a\": 3, "
                 "\"a1\": 4}, \"merges\": [\"1 2\", \"a 1\"]}, \"pre_tokenizer\": {\"type\": \"Sequence\", "
                 "\"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": %s}, {\"type\": "
                 "\"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]}, \"decoder\": "
                 "{\"type\": \"ByteLevel\"}}",
                 individual ? "true" : "false");
        tok = tiny(json);
        if (!tok) continue;
        if (individual)
            check_encode(tok, "a12", 3, (const int32_t[]){3, 0, 1}, 3, "Digits individual");
        else
            check_encode(tok, "a12", 3, (const int32_t[]){3, 2}, 2, "Digits in runs");
        egrc_tokenizer_free(tok);
    }
}

/* An empty token text, as a broken or hostile file may hold: the tokenizer
 * loads, and the token decodes to nothing. (Its first version did pointer
 * arithmetic on a null arena, which clang's UBSan reports: the fuzzer found
 * it, and fuzz/regressions/tokenizer replays that input.) */
static void check_empty_token(void) {
    egrc_tokenizer *tok = tiny("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\": 0, \"a\": 1}, \"merges\": []}, "
                               "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false}, "
                               "\"decoder\": {\"type\": \"ByteLevel\"}}");
    if (!tok) return;
    check_encode(tok, "aa", 2, (const int32_t[]){1, 1}, 2, "beside an empty token");
    check_decode(tok, (const int32_t[]){1, 0, 1}, 3, 1, "aa", "empty token decode");
    egrc_tokenizer_free(tok);
}

int main(void) {
    egrc_error err = {{0}};
    egrc_tokenizer *tok = egrc_tokenizer_load(TOK_DIR "/tokenizer.json", &err);
    CHECK_MSG(tok != NULL, "loading the reference tokenizer: %s", err.msg);
    if (tok) {
        check_reference_cases(tok);
        check_special_tokens(tok);
        check_regex_spaces(tok);
        check_lossy_decode(tok);
        check_bad_inputs(tok);
        egrc_tokenizer_free(tok);
    }
    size_t len = 0;
    char *reference = slurp(TOK_DIR "/tokenizer.json", &len);
    CHECK(reference != NULL);
    if (reference) check_bad_files(reference, len);
    free(reference);
    check_options();
    check_empty_token();
    return test_finish("test_tokenizer");
}
