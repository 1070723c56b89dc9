/* Pieces shared by the grading files (grade*.c); not part of the public API. */
#ifndef EGRC_GRADE_INTERNAL_H
#define EGRC_GRADE_INTERNAL_H

#include <stddef.h>

/* An answer after normalisation: compact canonical LaTeX (see
 * grade_normalize.c for the rules) and whether a percent sign was dropped. */
typedef struct egrc_norm_answer {
    char *text;
    int percent;
} egrc_norm_answer;

/* Returns 0, or -1 when out of memory. */
int egrc_grade_normalize(const char *answer, egrc_norm_answer *out);

/* Evaluates a normalised scalar expression. `sample` (0, 1, 2) picks the
 * values given to variables; *used_vars reports whether any appeared.
 * Returns 0 with a finite *value, or -1 when the text is not an expression
 * the evaluator understands (or its value is not a finite real). */
int egrc_grade_eval(const char *expr, size_t len, int sample, double *value, int *used_vars);

/* Index of the '}' closing the '{' at s[open], skipping escaped "\{" and
 * "\}" (and any other backslash pair); `len` when it never closes. */
size_t egrc_grade_brace_end(const char *s, size_t len, size_t open);

#endif
