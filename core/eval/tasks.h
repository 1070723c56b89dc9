/* The built-in reasoning task suite: six families of procedurally generated
 * arithmetic problems with worked reasoning traces, small and regular enough
 * that a transformer of a few layers learns them in minutes on a CPU.
 *
 * It exists to reproduce the method in miniature: a model is first trained
 * (SFT) on responses that reason verbosely (re-checking, restating, logical
 * connectors such as "Wait", "Hmm", "So") mixed with concise ones, and RL then
 * shortens its reasoning while accuracy holds. Both styles contain only
 * correct arithmetic, so length is the one thing that separates them.
 *
 * Text formats (ASCII only; numbers are written in decimal and the task
 * tokenizer keeps every digit its own token):
 *   prompt    "Q: 7 + 5 - 3 = ?\nA: "
 *   response  "<think>7 + 5 = 12. 12 - 3 = 9.</think> \boxed{9}"   (concise)
 *             "<think>Okay, let me think about this. First, 7 + 5 = 12. Wait,
 *              let me double-check. 7 + 5 = 12. Yes. Then 12 - 3 = 9. ...
 *              So the answer is 9.</think> \boxed{9}"              (verbose)
 * The caller appends the EOS token after a response.
 *
 * The families, each with difficulty levels 1..EGRC_TASK_DIFFICULTIES:
 *   chain    "7 + 5 - 3 = ?"           2, 3, 4 operands up to 9, 20, 30
 *   mul      "47 * 6 = ?"              2..9, 10..49, 50..99 times 2..9; a 2-digit
 *                                      factor is split into tens and units
 *   paren    "(4 + 3) * 2 = ?"         (a + b) * c with a + b <= 9; (a +/- b) * c
 *                                      otherwise; (a +/- b) * c +/- d
 *   compare  "Which is larger, 47 or 52?"  differing tens; same tens; 3 digits,
 *                                      asking for the larger or the smaller
 *   mod      "What is 23 mod 5?"       divisor and quotient <= 5; a 1-digit
 *                                      quotient otherwise; a 2-digit quotient
 *   word     "Tom has 5 apples, buys 3 more, gives away 2. How many apples now?"
 *                                      1, 2, 3 actions
 * No intermediate result is negative, no question belongs to two levels, and
 * every problem's steps are stored in the problem, so traces are rendered
 * from them rather than re-derived.
 *
 * Train/eval split: a problem belongs to the evaluation split when a hash of
 * its question text, mixed with `eval_seed`, falls in one of
 * EGRC_TASK_EVAL_SHARE buckets (1 in EGRC_TASK_EVAL_SHARE of every family and
 * level). Training sampling rejects evaluation problems and evaluation
 * sampling rejects the rest, so the two never share a question, at any
 * sample count, without a set held in memory. The fixed evaluation list
 * (egrc_task_eval_set) is drawn from the evaluation split.
 *
 * All randomness comes from the egrc_rng passed in: the same seed gives the
 * same problems and traces on every machine. */
#ifndef EGRC_TASKS_H
#define EGRC_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/rng.h"

enum {
    EGRC_TASK_CHAIN,
    EGRC_TASK_MUL,
    EGRC_TASK_PAREN,
    EGRC_TASK_COMPARE,
    EGRC_TASK_MOD,
    EGRC_TASK_WORD,
    EGRC_TASK_FAMILIES
};

#define EGRC_TASK_DIFFICULTIES 3
#define EGRC_TASK_MAX_STEPS 8
#define EGRC_TASK_QUESTION_MAX 128
#define EGRC_TASK_ANSWER_MAX 16
/* A buffer of this size holds any prompt, and any trace of either style. */
#define EGRC_TASK_TEXT_MAX 2048
/* One problem in this many belongs to the evaluation split. */
#define EGRC_TASK_EVAL_SHARE 8

/* The task tokenizer (tools/make_task_tokenizer.c made it), relative to the
 * repository root, and the special tokens the suite's text uses. */
#define EGRC_TASK_TOKENIZER_PATH "recipes/data/task_tokenizer.json"
#define EGRC_TASK_EOS "<|endoftext|>" /* also the padding token */
/* Changes whenever the traces' text changes, so models trained on older
 * traces (kept under runs/ by the recipes) are not mistaken for current ones.
 * 2: every verbose trace opens with "Okay,". */
#define EGRC_TASK_TRACES_VERSION 2
#define EGRC_TASK_THINK_OPEN "<think>"
#define EGRC_TASK_THINK_CLOSE "</think>"

/* One step of the worked solution. op '+', '-', '*': "a op b = result".
 * op '<', '>': the comparison "a op b" (result is 0). */
typedef struct egrc_task_step {
    int a, b, result;
    char op;
} egrc_task_step;

typedef struct egrc_task_problem {
    int family;     /* EGRC_TASK_CHAIN .. EGRC_TASK_WORD */
    int difficulty; /* 1 .. EGRC_TASK_DIFFICULTIES */
    char question[EGRC_TASK_QUESTION_MAX];
    char answer[EGRC_TASK_ANSWER_MAX]; /* what \boxed{} must hold, e.g. "9" */
    int n_steps;
    egrc_task_step steps[EGRC_TASK_MAX_STEPS];
} egrc_task_problem;

typedef enum { EGRC_TRACE_CONCISE, EGRC_TRACE_VERBOSE } egrc_trace_style;
typedef enum { EGRC_TASK_TRAIN, EGRC_TASK_EVAL } egrc_task_split;

int egrc_task_family_count(void);
/* "chain", "mul", "paren", "compare", "mod", "word"; NULL out of range. */
const char *egrc_task_family_name(int family);
/* The family of that name, or -1. */
int egrc_task_family_find(const char *name);

/* Draws one problem of a family and level, ignoring the split. */
int egrc_task_generate(int family, int difficulty, egrc_rng *rng, egrc_task_problem *out,
                       egrc_error *err);

/* Whether a problem belongs to the evaluation split of eval_seed. */
int egrc_task_is_eval(const egrc_task_problem *p, uint64_t eval_seed);

/* Draws a problem of the split. family -1 draws the family uniformly and
 * difficulty 0 the level, anew for every draw. Fails only for a bad family
 * or level, or when no problem of the split turns up in many draws (a
 * family and level whose few problems all fall in the other split). */
int egrc_task_sample(egrc_task_split split, uint64_t eval_seed, int family, int difficulty,
                     egrc_rng *rng, egrc_task_problem *out, egrc_error *err);

/* The fixed evaluation list: for each family, then each level, up to
 * per_cell distinct problems of the evaluation split, drawn from an RNG
 * seeded by eval_seed and the cell. A cell with fewer evaluation problems
 * than per_cell gives all it has. The list for a smaller per_cell is a
 * per-cell prefix of the list for a larger one. *out is malloc'd (the
 * caller frees it) and *count set. */
int egrc_task_eval_set(uint64_t eval_seed, int per_cell, egrc_task_problem **out, size_t *count,
                       egrc_error *err);

/* "Q: <question>\nA: " into buf (NUL-terminated). */
int egrc_task_prompt(const egrc_task_problem *p, char *buf, size_t size, egrc_error *err);

/* The full response: "<think>" reasoning "</think> \boxed{answer}". CONCISE
 * states each step once and draws nothing from rng. VERBOSE states the same
 * steps with connectors, restatements and re-checks, their number drawn from
 * rng (about 3-5x the concise length, with a spread). Fails when buf is too
 * small (EGRC_TASK_TEXT_MAX always suffices). */
int egrc_task_trace(const egrc_task_problem *p, egrc_trace_style style, egrc_rng *rng, char *buf,
                    size_t size, egrc_error *err);

/* 1 when the response has "</think>" followed (anywhere later) by
 * "\boxed{...}" whose content, spaces trimmed, equals the gold answer; only
 * the first \boxed after the first "</think>" counts. 0 otherwise, including
 * a response with no answer or no closing brace. */
int egrc_task_check(const egrc_task_problem *p, const char *response);

#endif
