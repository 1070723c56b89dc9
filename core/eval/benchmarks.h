/* Math benchmarks as JSON Lines: one record per line, each with a question
 * and a gold answer. The six evaluation sets (gsm8k, math500, aime24, amc23,
 * olympiadbench, minerva_math) each keep the answer differently, after
 * "####" in a solution, as a LaTeX string, as a JSON number, as a list of
 * strings, or only as the last \boxed{} of a solution; the loaders turn
 * every record into the same item with the final answer as a LaTeX string
 * (graded later with egrc_answers_equivalent). */
#ifndef EGRC_BENCHMARKS_H
#define EGRC_BENCHMARKS_H

#include <stddef.h>

#include "base/error.h"

/* The longest record of the six benchmarks is 13 KB (olympiadbench); a line
 * of 1 MiB is some 250k tokens, past the context of any model egrc loads, so
 * a longer one is refused before it is parsed, tokenized or given buffers. */
#define EGRC_BENCHMARK_MAX_LINE_BYTES ((size_t)1 << 20)

typedef struct egrc_benchmark_item {
    char *id;          /* the record's "id", "idx" or "unique_id", else its line number */
    char *question;
    char *gold_answer; /* the final answer, LaTeX source as the record writes it */
    size_t line;       /* 1-based line of the record in the file, for messages about it */
} egrc_benchmark_item;

typedef struct egrc_benchmark {
    char *name; /* the folder name ("gsm8k"), or the file name without ".jsonl" */
    char *file; /* the path of the file read ("DIR/gsm8k/test.jsonl"), for messages */
    size_t count;
    egrc_benchmark_item *items;
} egrc_benchmark;

/* Loads a benchmark from its folder (reading test.jsonl there) or from a
 * .jsonl file. Folders named after one of the six benchmarks use that
 * benchmark's fields; any other is read by its first record's fields: the
 * question from "problem" or "question", the answer from "final_answer",
 * "answer" or (extracted) "solution". */
egrc_benchmark *egrc_benchmark_load(const char *path, egrc_error *err);

/* Loads any JSONL file with the question and answer in the named fields.
 * The answer field may be a string, a number, or a list of them (a list is
 * joined with ", "); a string holding a whole solution (one with \boxed{},
 * "####", or several lines) is reduced to its final answer with
 * egrc_extract_answer. Blank lines are skipped; any bad line fails the load
 * with a message naming file:line and the field. A line must be UTF-8 (the
 * message gives the offending byte's offset) and at most
 * EGRC_BENCHMARK_MAX_LINE_BYTES long. */
egrc_benchmark *egrc_benchmark_load_jsonl(const char *path, const char *question_field, const char *answer_field,
                                          egrc_error *err);

void egrc_benchmark_free(egrc_benchmark *bench);

#endif
