/* libFuzzer target for the tokenizer: the input is a tokenizer.json. Loading
 * must either succeed or fail with a message; a tokenizer that loads must
 * encode and decode without crashing, including the input itself as text
 * (valid UTF-8 or not) and ids at and past the edges of the vocabulary.
 * Build: clang -fsanitize=fuzzer,address,undefined -Icore fuzz/fuzz_tokenizer.c
 *        core/base/error.c core/io/fileio.c core/io/tokenizer*.c -lcjson -lpcre2-8 -lutf8proc -lm */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const egrc_tokenizer *tok, const char *text, size_t len) {
    egrc_error err;
    int32_t *ids = NULL;
    size_t n = 0;
    if (egrc_tokenizer_encode(tok, text, len, &ids, &n, &err) != 0) return;
    for (int keep = 0; keep <= 1; keep++) free(egrc_tokenizer_decode(tok, ids, n, keep, &err));
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    egrc_error err;
    egrc_tokenizer *tok = egrc_tokenizer_from_json((const char *)data, size, "fuzz.json", &err);
    if (!tok) return 0;

    static const char *const texts[] = {
        "Hello world",
        "  leading and trailing  ",
        "It's 12345 apples, isn't it? I'LL see.",
        "na\xC3\xAFve caf\xC3\xA9 e\xCC\x81 \xE2\x80\x94 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\xA4\x96",
        "<|im_start|>user\n<think>x</think><|im_end|>\r\n\t\t",
        "",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) round_trip(tok, texts[i], strlen(texts[i]));
    round_trip(tok, (const char *)data, size < 4096 ? size : 4096);

    int32_t top = egrc_tokenizer_vocab_size(tok);
    int32_t edges[] = {0, top / 2, top - 1};
    for (int keep = 0; keep <= 1; keep++) free(egrc_tokenizer_decode(tok, edges, top > 0 ? 3 : 0, keep, &err));
    int32_t outside[] = {top};
    free(egrc_tokenizer_decode(tok, outside, 1, 1, &err));
    for (int32_t id = -1; id <= top && id < 64; id++) egrc_tokenizer_is_special(tok, id);
    egrc_tokenizer_token_id(tok, "<think>");
    egrc_tokenizer_token_id(tok, "a");
    egrc_tokenizer_free(tok);
    return 0;
}
