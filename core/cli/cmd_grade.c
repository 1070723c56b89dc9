/* egrc grade --gold G --pred P: one grading decision from the command line,
 * for checking how a response is graded without writing a program. */
#include "cmd_grade.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "eval/grade.h"

static const char grade_usage[] =
    "usage: egrc grade --gold ANSWER --pred ANSWER_OR_RESPONSE\n"
    "  prints 'correct' when the prediction's answer (\\boxed{}, '#### X', 'the answer is X', else the\n"
    "  whole text as a bare answer, else its last $...$, else its last number) is equivalent to the\n"
    "  gold's (found the same way), 'incorrect' otherwise";

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
    int correct = egrc_grade_response(gold, pred);
    printf("%s\n", correct ? "correct" : "incorrect");
    return EGRC_EXIT_OK;
}
