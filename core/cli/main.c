/* egrc: the command line. Each subcommand parses its own flags; usage and
 * input errors exit 2, runtime failures exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "cli.h"
#include "cmd_grade.h"
#include "cmd_run.h"
#include "cmd_tokenize.h"
#include "io/fileio.h"
#include "io/model_config.h"

#ifndef EGRC_VERSION
#define EGRC_VERSION "0.0.0"
#endif

static const char usage[] =
    "egrc " EGRC_VERSION ": entropy-guided reasoning compression\n"
    "\n"
    "usage: egrc COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  run RECIPE.lua [--backend NAME] [--device N] [--seed N] [--out DIR] [--set KEY=VALUE ...]\n"
    "                 [--resume DIR] [--quiet] [--sandbox] [--lua-cpu-limit SECONDS] [--lua-memory-limit MB]\n"
    "                                       run a Lua recipe (see docs/recipes.md)\n"
    "  version                              print the version\n"
    "  backends                             list backends and their devices\n"
    "  parity MODEL_DIR REFERENCE.safetensors [--backend NAME] [--device N]\n"
    "                                       compare logits, loss, gradients and greedy tokens\n"
    "                                       against a Hugging Face reference; exit 0 when all match\n"
    "  tokenize TOKENIZER.json TEXT|-       print the token ids of TEXT (-: JSON strings on stdin, a line each)\n"
    "  bench train --model NAME|DIR [--batch B] [--seq T] [--steps N] [--backend NAME] [--device N]\n"
    "                                       training throughput, with a GEMM measured in the same run\n"
    "  bench generate --model NAME|DIR [--batch B] [--prompt-len P] [--new-tokens N] [--backend NAME]\n"
    "                                       rollout throughput: prefill, decode ms/step, new tokens/s\n"
    "  bench grade FILE                     grading speed (pairs/s) over gold<TAB>prediction lines\n"
    "  grade --gold ANSWER --pred ANSWER_OR_RESPONSE\n"
    "                                       print 'correct' or 'incorrect' (math answer equivalence)\n"
    "  --help                               this text\n"
    "\n"
    "model presets: gpt2-124M gpt2-tiny llama-tiny qwen2-tiny qwen2-0.5B (random init), or a folder with\n"
    "config.json + model.safetensors.\n";

int egrc_cli_error(int code, const char *message, const char *hint) {
    fprintf(stderr, "egrc: %s\n", message);
    if (hint) fprintf(stderr, "%s\n", hint);
    return code;
}

int egrc_cli_int(const char *flag, const char *text, long min, long max, long *out) {
    char *end;
    long value = text ? strtol(text, &end, 10) : 0;
    if (!text || !*text || *end || value < min || value > max) {
        fprintf(stderr, "egrc: %s expects an integer in %ld..%ld, got '%s'\n", flag, min, max, text ? text : "");
        return -1;
    }
    *out = value;
    return 0;
}

static int cmd_backends(void) {
    for (const char *const *name = egrc_backend_known_names(); *name; name++) {
        egrc_error err;
        const egrc_backend_ops *ops = egrc_backend_find(*name, &err);
        if (!ops) {
            printf("%-6s  not available: %s\n", *name, err.msg);
            continue;
        }
        int count = ops->device_count(&err);
        if (count < 0) {
            printf("%-6s  no driver: %s\n", *name, err.msg);
            continue;
        }
        printf("%-6s  %d device%s\n", *name, count, count == 1 ? "" : "s");
        for (int d = 0; d < count; d++) {
            egrc_device_info info;
            if (ops->device_info(d, &info, &err)) {
                printf("        %d: (%s)\n", d, err.msg);
                continue;
            }
            printf("        %d: %s, %.1f GiB, %d compute units\n", d, info.name,
                   (double)info.memory_bytes / (1024.0 * 1024.0 * 1024.0), info.compute_units);
        }
    }
    return EGRC_EXIT_OK;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return EGRC_EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 || strcmp(command, "help") == 0) {
        fputs(usage, stdout);
        return EGRC_EXIT_OK;
    }
    if (strcmp(command, "version") == 0 || strcmp(command, "--version") == 0) {
        printf("egrc %s\n", EGRC_VERSION);
        return EGRC_EXIT_OK;
    }
    if (strcmp(command, "backends") == 0) return cmd_backends();
    if (strcmp(command, "tokenize") == 0) return egrc_cmd_tokenize(argc, argv);
    if (strcmp(command, "parity") == 0) return egrc_cmd_parity(argc, argv);
    if (strcmp(command, "bench") == 0) return egrc_cmd_bench(argc, argv);
    if (strcmp(command, "grade") == 0) return egrc_cmd_grade(argc, argv);
    if (strcmp(command, "run") == 0) return egrc_cmd_run(argc, argv);
    fprintf(stderr, "egrc: unknown command '%s'; run 'egrc --help' for the list\n", command);
    return EGRC_EXIT_USAGE;
}
