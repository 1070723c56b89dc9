/* libFuzzer target for the math grader (core/eval/grade*.c): the input,
 * split at its first tab into gold and prediction, is graded through
 * egrc_grade_response and egrc_answers_equivalent. Any bytes must give a
 * verdict of 0 or 1 in bounded time; never crash or read outside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/grade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* an embedded NUL just ends the text early */
    char *tab = strchr(text, '\t');
    const char *gold = text, *pred = "";
    if (tab) *tab = '\0', pred = tab + 1;
    int verdicts = egrc_grade_response(gold, pred) + egrc_answers_equivalent(gold, pred);
    if (verdicts < 0 || verdicts > 2) abort();
    free(text);
    return 0;
}
