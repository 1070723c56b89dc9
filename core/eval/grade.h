/* Grading math answers: pulling the final answer out of a model response or a
 * reference solution, and deciding whether two answers are the same, the way
 * the usual math-benchmark graders (Minerva, lm-eval, Qwen's math eval) do:
 * LaTeX formatting, units, degree signs, thousands separators and the choice
 * between fraction, decimal, radical and pi forms do not matter; the value
 * does, and so do the order of a tuple and the bracket types of an interval.
 *
 * Equivalence is decided on a normalised string (grade_normalize.c), then
 * structurally (matrices, unions, sets, tuples/intervals, unordered lists,
 * +/-), and for each scalar by string, multiple-choice letter, text, and a
 * numeric evaluator (grade_eval.c) that also evaluates expressions in
 * variables (letters, Greek letters, subscripted names) at fixed sample
 * points, so "2n^2+n" matches "n(2n+1)". */
#ifndef EGRC_GRADE_H
#define EGRC_GRADE_H

#include "base/error.h"

/* The final answer of `response` as a malloc'd string, found in this order:
 * the last \boxed{...} / \boxed X / \fbox{...} (nested braces handled), a
 * GSM8K "#### X" line, the last "the answer is X" / "answer: X" phrase (cut at
 * the end of the sentence). When the text contains "</think>", only what
 * follows the last one is searched first, then the whole text.
 * Returns NULL with err->msg set to "" when the text holds no answer (the
 * common case of a truncated or rambling response, not an error); only a real
 * failure (NULL text, out of memory) returns NULL with a message. */
char *egrc_extract_answer(const char *response, egrc_error *err);

/* The fallback answer of a text with no marked one (egrc_extract_answer
 * found none), in Math-Verify's order: the last inline "$...$", then the
 * last number. A malloc'd string, or NULL when there is neither. */
char *egrc_extract_unmarked_answer(const char *text);

/* 1 when the two answers are the same mathematical answer, else 0 (also 0
 * when either is empty or memory runs out). `gold` decides the shape: an
 * unbracketed comma list in the gold ("1, 2") is matched in any order, a
 * bracketed one ("(1, 2)", "[1, 2)") in order with the same brackets. */
int egrc_answers_equivalent(const char *gold, const char *pred);

/* 1 when the answer extracted from `response` is equivalent to the gold's;
 * 0 when it is not, or when the response has no answer. Gold and response
 * are read alike, so a gold given as a worked solution grades by its
 * marked answer: the marked answer (egrc_extract_answer); else the whole
 * text when it is equivalent as it stands (a bare answer); else the
 * fallback (egrc_extract_unmarked_answer). */
int egrc_grade_response(const char *gold_answer, const char *response);

#endif
