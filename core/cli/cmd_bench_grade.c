/* egrc bench grade FILE: grading speed over a file of answer pairs (one
 * "gold<TAB>prediction[<TAB>...]" a line, '#' lines skipped, as in
 * tests/data/grade/cases.tsv), graded through egrc_grade_response as the RL
 * reward does, repeated until a second has passed; prints pairs/s on this
 * one core. */
#include "cmd_bench_grade.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "eval/grade.h"

#define MAX_PAIRS 100000
#define MIN_SECONDS 1.0

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int egrc_cmd_bench_grade(int argc, char **argv) {
    if (argc != 4) return egrc_cli_error(EGRC_EXIT_USAGE, "usage: egrc bench grade FILE (gold<TAB>prediction lines)", NULL);
    FILE *f = fopen(argv[3], "r");
    if (!f) return egrc_cli_error(EGRC_EXIT_FAILURE, "cannot open the pairs file", argv[3]);
    char **golds = malloc(MAX_PAIRS * sizeof *golds), **preds = malloc(MAX_PAIRS * sizeof *preds);
    size_t n = 0;
    char line[8192];
    while (golds && preds && n < MAX_PAIRS && fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        line[strcspn(line, "\r\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = '\0';
        char *pred_end = strchr(tab + 1, '\t');
        if (pred_end) *pred_end = '\0';
        golds[n] = strdup(line), preds[n] = strdup(tab + 1);
        if (!golds[n] || !preds[n]) break;
        n++;
    }
    fclose(f);
    int code = EGRC_EXIT_OK;
    if (!n) {
        code = egrc_cli_error(EGRC_EXIT_FAILURE, "no gold<TAB>prediction pairs in", argv[3]);
    } else {
        size_t graded = 0, correct = 0;
        double start = seconds_now(), elapsed = 0.0;
        while (elapsed < MIN_SECONDS) {
            for (size_t i = 0; i < n; i++) correct += (size_t)egrc_grade_response(golds[i], preds[i]);
            graded += n;
            elapsed = seconds_now() - start;
        }
        printf("%zu pairs, %zu graded in %.2f s: %.0f pairs/s (%.1f%% correct)\n", n, graded, elapsed,
               (double)graded / elapsed, 100.0 * (double)correct / (double)graded);
    }
    for (size_t i = 0; i < n; i++) free(golds[i]), free(preds[i]);
    free(golds);
    free(preds);
    return code;
}
