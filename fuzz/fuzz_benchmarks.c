/* libFuzzer target for the benchmark JSONL loader (core/eval/benchmarks.c):
 * any bytes, written to a file, are loaded as each of the six known
 * benchmarks (each reads its own fields), as a file of unknown origin
 * (fields detected from the first record) and with fields named by the
 * caller. Every load must either give items that are whole (an id, a
 * question, a non-empty gold answer, all UTF-8, on increasing lines of the
 * file) or fail with a message naming the file; never crash or read
 * outside the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#include "eval/benchmarks.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Folder names that select a known benchmark's fields in egrc_benchmark_load. */
static const char *const known_benchmarks[] = {"gsm8k", "math500", "aime24", "amc23", "olympiadbench", "minerva_math"};
#define N_KNOWN (sizeof known_benchmarks / sizeof *known_benchmarks)

/* DIR/input.jsonl holds the current input; DIR/<benchmark>/test.jsonl are
 * links to it, so one write serves every format. */
static char work_dir[4096];
static char input_path[4200];
static char link_paths[N_KNOWN][4200];

static void remove_work_dir(void) {
    for (size_t i = 0; i < N_KNOWN; i++) {
        unlink(link_paths[i]);
        char folder[4200];
        snprintf(folder, sizeof folder, "%s/%s", work_dir, known_benchmarks[i]);
        rmdir(folder);
    }
    unlink(input_path);
    rmdir(work_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(work_dir, sizeof work_dir, "%s/egrc-fuzz-benchmarks-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(work_dir)) {
        perror("fuzz_benchmarks: mkdtemp");
        exit(1);
    }
    snprintf(input_path, sizeof input_path, "%s/input.jsonl", work_dir);
    for (size_t i = 0; i < N_KNOWN; i++) {
        char folder[4200];
        snprintf(folder, sizeof folder, "%s/%s", work_dir, known_benchmarks[i]);
        snprintf(link_paths[i], sizeof link_paths[i], "%s/test.jsonl", folder);
        if (mkdir(folder, 0700) != 0 || symlink(input_path, link_paths[i]) != 0) {
            perror("fuzz_benchmarks: preparing the benchmark folders");
            exit(1);
        }
    }
    atexit(remove_work_dir);
    return 0;
}

static int is_utf8(const char *text) {
    const utf8proc_uint8_t *bytes = (const utf8proc_uint8_t *)text;
    utf8proc_ssize_t len = (utf8proc_ssize_t)strlen(text);
    for (utf8proc_ssize_t at = 0; at < len;) {
        utf8proc_int32_t codepoint;
        utf8proc_ssize_t used = utf8proc_iterate(bytes + at, len - at, &codepoint);
        if (used <= 0) return 0;
        at += used;
    }
    return 1;
}

static size_t count_lines(const uint8_t *data, size_t size) {
    size_t lines = 1;
    for (const uint8_t *p = data; (p = memchr(p, '\n', (size_t)(data + size - p))) != NULL; p++) lines++;
    return lines;
}

static void check_load(const egrc_benchmark *bench, const egrc_error *err, const char *file_name, size_t lines) {
    if (!bench) {
        if (memchr(err->msg, '\0', sizeof err->msg) == NULL || !strstr(err->msg, file_name)) abort();
        return;
    }
    if (bench->count == 0 || !bench->name || !bench->file) abort();
    size_t previous_line = 0;
    for (size_t i = 0; i < bench->count; i++) {
        const egrc_benchmark_item *item = &bench->items[i];
        if (!item->id || !item->question || !item->gold_answer || !item->gold_answer[0]) abort();
        if (!is_utf8(item->question) || !is_utf8(item->gold_answer) || !is_utf8(item->id)) abort();
        if (item->line <= previous_line || item->line > lines) abort();
        previous_line = item->line;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *f = fopen(input_path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(input_path);
        abort();
    }
    size_t lines = count_lines(data, size);
    egrc_error err;
    for (size_t i = 0; i < N_KNOWN; i++) {
        err.msg[0] = '\0';
        egrc_benchmark *bench = egrc_benchmark_load(link_paths[i], &err);
        check_load(bench, &err, "test.jsonl", lines);
        egrc_benchmark_free(bench);
    }
    err.msg[0] = '\0';
    egrc_benchmark *bench = egrc_benchmark_load(input_path, &err);
    check_load(bench, &err, "input.jsonl", lines);
    egrc_benchmark_free(bench);
    /* Fields a recipe names itself (benchmarks.load_jsonl in Lua). */
    err.msg[0] = '\0';
    bench = egrc_benchmark_load_jsonl(input_path, "q", "a", &err);
    check_load(bench, &err, "input.jsonl", lines);
    egrc_benchmark_free(bench);
    return 0;
}
