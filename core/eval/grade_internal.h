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

/* "x>2", "1\le x<3", "3>x": the interval the inequality in one variable
 * describes, written to out as "(2,\infty)"; 1 when s is such an
 * inequality (and it fits), else 0. */
int egrc_grade_inequality_interval(const char *s, size_t len, char *out, size_t out_size);

/* 1 when both are equations in variables ("y=2x+1", "2x-y=-1") whose
 * lhs-rhs agree up to a nonzero constant factor at every sample point. */
int egrc_grade_equations_equivalent(const char *g, size_t g_len, const char *p, size_t p_len);

#endif
