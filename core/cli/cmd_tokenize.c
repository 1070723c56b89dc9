#include "cmd_tokenize.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "cli.h"
#include "io/tokenizer.h"

static const char tokenize_usage[] = "usage: egrc tokenize TOKENIZER.json TEXT\n"
                                     "       egrc tokenize TOKENIZER.json -   (texts from stdin, one JSON string a line)";

static int print_ids(const egrc_tokenizer *tok, const char *text, size_t len, egrc_error *err) {
    int32_t *ids;
    size_t count;
    if (egrc_tokenizer_encode(tok, text, len, &ids, &count, err)) return -1;
    for (size_t i = 0; i < count; i++) printf("%s%d", i ? " " : "", ids[i]);
    printf("\n");
    free(ids);
    return 0;
}

/* One JSON string a line: the load (30-190 ms for a real tokenizer.json) is
 * paid once for a whole corpus. A JSON string, not raw text, so that texts
 * may hold newlines and any byte sequence the user means. */
static int tokenize_lines(const egrc_tokenizer *tok, egrc_error *err) {
    char *line = NULL;
    size_t capacity = 0;
    long number = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &capacity, stdin)) >= 0) {
        number++;
        cJSON *text = cJSON_ParseWithLength(line, (size_t)len);
        if (!cJSON_IsString(text))
            rc = egrc_fail(err, "stdin:%ld: expected a JSON string (\"...\") on each line", number);
        else if (print_ids(tok, text->valuestring, strlen(text->valuestring), err))
            rc = egrc_error_prefix(err, "stdin:%ld", number);
        cJSON_Delete(text);
    }
    free(line);
    fflush(stdout);
    return rc;
}

int egrc_cmd_tokenize(int argc, char **argv) {
    if (argc != 4) return egrc_cli_error(EGRC_EXIT_USAGE, tokenize_usage, NULL);
    egrc_error err;
    egrc_tokenizer *tok = egrc_tokenizer_load(argv[2], &err);
    if (!tok) return egrc_cli_error(EGRC_EXIT_USAGE, err.msg, NULL);
    int rc = strcmp(argv[3], "-") == 0 ? tokenize_lines(tok, &err) : print_ids(tok, argv[3], strlen(argv[3]), &err);
    egrc_tokenizer_free(tok);
    return rc ? egrc_cli_error(EGRC_EXIT_USAGE, err.msg, NULL) : EGRC_EXIT_OK;
}
