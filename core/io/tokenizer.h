/* Byte-level BPE tokenizer read from a Hugging Face tokenizer.json.
 *
 * Encodes and decodes exactly as the `tokenizers` library does for byte-level
 * BPE models (GPT-2, Llama 3, Qwen2 families): added/special tokens are split
 * out first, then the normalizer (NFC or none), the pre-tokenizer (Split with a
 * regex using Unicode classes and/or ByteLevel), the byte-to-unicode mapping,
 * BPE merges by rank, vocabulary lookup. Anything else in the file (another
 * model type, an unknown normalizer or pre-tokenizer) is refused at load time
 * with a message naming the JSON key. */
#ifndef EGRC_TOKENIZER_H
#define EGRC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct egrc_tokenizer egrc_tokenizer;

egrc_tokenizer *egrc_tokenizer_load(const char *path, egrc_error *err);
/* Parses tokenizer.json text held in memory; `source_name` appears in errors. */
egrc_tokenizer *egrc_tokenizer_from_json(const char *json, size_t len, const char *source_name,
                                         egrc_error *err);
void egrc_tokenizer_free(egrc_tokenizer *tok);

/* Encodes UTF-8 text (no BOS/EOS added: post-processing is the caller's). On
 * success *ids is malloc'd (caller frees) and *count set. Invalid UTF-8 is an error. */
int egrc_tokenizer_encode(const egrc_tokenizer *tok, const char *text, size_t len, int32_t **ids,
                          size_t *count, egrc_error *err);
/* Decodes ids to a malloc'd NUL-terminated UTF-8 string (special tokens are
 * kept when keep_special is nonzero, dropped otherwise). Byte sequences that are
 * not valid UTF-8 decode to U+FFFD, as `tokenizers` does. Out-of-range ids are an error. */
char *egrc_tokenizer_decode(const egrc_tokenizer *tok, const int32_t *ids, size_t count, int keep_special,
                            egrc_error *err);

/* Size of the id space (max id + 1 over the vocabulary and added tokens). */
int32_t egrc_tokenizer_vocab_size(const egrc_tokenizer *tok);
/* Id of a token by its exact text (added tokens included), or -1. */
int32_t egrc_tokenizer_token_id(const egrc_tokenizer *tok, const char *token_text);
/* Whether an id is an added token marked "special". */
int egrc_tokenizer_is_special(const egrc_tokenizer *tok, int32_t id);

#endif
