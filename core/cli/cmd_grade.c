/* egrc grade --gold G --pred P: one grading decision from the command line,
 * for checking how a response is graded without writing a program. */
#include "cmd_grade.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval/grade.h"

static const char grade_usage[] =
    "usage: egrc grade --gold ANSWER --pred ANSWER_OR_RESPONSE\n"
    "  prints 'correct' when the prediction (a response whose final answer is found as \\boxed{},\n"
    "  '#### X' or 'the answer is X', or else a bare answer) is equivalent to the gold answer,\n"
    "  'incorrect' otherwise";

int egrc_cmd_grade(int argc, char **argv) {
    const char *gold = NULL, *pred = NULL;
    for (int i = 2; i < argc; i++) {
        const char **slot = strcmp(argv[i], "--gold") == 0 ? &gold : strcmp(argv[i], "--pred") == 0 ? &pred : NULL;
        if (!slot) {
            fprintf(stderr, "egrc grade: unexpected argument '%s'\n", argv[i]);
            return egrc_cli_error(EGRC_EXIT_USAGE, grade_usage, NULL);
        }
        if (i + 1 >= argc || *slot) {
            fprintf(stderr, "egrc grade: %s needs exactly one value\n", argv[i]);
            return egrc_cli_error(EGRC_EXIT_USAGE, grade_usage, NULL);
        }
        *slot = argv[++i];
    }
    if (!gold || !pred) return egrc_cli_error(EGRC_EXIT_USAGE, grade_usage, NULL);
    /* Unlike egrc_grade_response, a prediction with no marked answer is
     * taken whole: on the command line it is usually a bare answer. */
    egrc_error err;
    char *answer = egrc_extract_answer(pred, &err);
    if (!answer && err.msg[0]) return egrc_cli_error(EGRC_EXIT_FAILURE, err.msg, NULL);
    int correct = egrc_answers_equivalent(gold, answer ? answer : pred);
    free(answer);
    printf("%s\n", correct ? "correct" : "incorrect");
    return EGRC_EXIT_OK;
}
