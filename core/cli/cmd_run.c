/* egrc run RECIPE.lua [flags]: the command line of the Lua layer. Flags are
 * parsed here; everything else is lua/lrun.c. */
#include "cmd_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "egrc_lua.h"

#define EGRC_STR_(x) #x
#define EGRC_STR(x) EGRC_STR_(x) /* a macro's value as a string literal */

static const char run_usage[] =
    "usage: egrc run RECIPE.lua [--backend NAME] [--device N] [--seed N] [--out DIR]\n"
    "                [--set KEY=VALUE ...] [--resume DIR] [--quiet] [--sandbox]\n"
    "                [--lua-cpu-limit SECONDS] [--lua-memory-limit MB]\n"
    "  --backend NAME   cpu (built in) or a plugin (cuda, hip, gpuemu); overrides settings.backend\n"
    "  --device N       device index; overrides settings.device\n"
    "  --seed N         overrides settings.seed\n"
    "  --out DIR        the run folder (default runs/<recipe>-<timestamp>)\n"
    "  --set KEY=VALUE  overrides a setting by its dotted name, e.g. --set train.lr=1e-4\n"
    "  --resume DIR     continues the run in DIR from its latest checkpoint (RECIPE optional)\n"
    "  --quiet          plain progress lines instead of a live one\n"
    "  --sandbox        no os, io, egrc.ffi, package.loadlib or modules from disk; writes only in the\n"
    "                   run folder, reads only there, in the recipe's folder and in paths named by\n"
    "                   --set; a resumed sandboxed run stays sandboxed\n"
    "  --lua-cpu-limit SECONDS   CPU time the recipe's Lua code may take, egrc's own functions not\n"
    "                   counted (default " EGRC_STR(EGRC_SANDBOX_CPU_LIMIT) " under --sandbox, else none; 0 = none)\n"
    "  --lua-memory-limit MB     the Lua heap's cap (default " EGRC_STR(EGRC_SANDBOX_MEMORY_LIMIT)
    " under --sandbox, else none; 0 = none)\n";

static int usage_error(const char *what, const char *arg) {
    fprintf(stderr, "egrc run: %s '%s'\n%s", what, arg, run_usage);
    return EGRC_EXIT_USAGE;
}

int egrc_cmd_run(int argc, char **argv) {
    egrc_run_options o;
    memset(&o, 0, sizeof o);
    o.device = -1;
    o.lua_cpu_limit = o.lua_memory_limit = -1; /* the defaults */
    const char **sets = calloc((size_t)argc, sizeof *sets);
    if (!sets) return egrc_cli_error(EGRC_EXIT_FAILURE, "out of memory", NULL);
    o.sets = sets;
    int rc = -1;
    for (int i = 2; i < argc && rc < 0; i++) {
        const char *a = argv[i];
        int takes_value = strcmp(a, "--backend") == 0 || strcmp(a, "--device") == 0 || strcmp(a, "--seed") == 0 ||
                          strcmp(a, "--out") == 0 || strcmp(a, "--set") == 0 || strcmp(a, "--resume") == 0 ||
                          strcmp(a, "--lua-cpu-limit") == 0 || strcmp(a, "--lua-memory-limit") == 0;
        if (takes_value && i + 1 >= argc) {
            rc = usage_error("missing value after", a);
            break;
        }
        long value = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(run_usage, stdout);
            rc = EGRC_EXIT_OK;
        } else if (strcmp(a, "--backend") == 0) {
            o.backend = argv[++i];
        } else if (strcmp(a, "--device") == 0) {
            if (egrc_cli_int("--device", argv[++i], 0, 1023, &value)) rc = EGRC_EXIT_USAGE;
            o.device = (int)value;
        } else if (strcmp(a, "--seed") == 0) {
            if (egrc_cli_int("--seed", argv[++i], 0, 0x7fffffffL, &value)) rc = EGRC_EXIT_USAGE;
            o.has_seed = 1;
            o.seed = value;
        } else if (strcmp(a, "--out") == 0) {
            o.out = argv[++i];
        } else if (strcmp(a, "--set") == 0) {
            sets[o.n_sets++] = argv[++i];
        } else if (strcmp(a, "--resume") == 0) {
            o.resume = argv[++i];
        } else if (strcmp(a, "--quiet") == 0) {
            o.quiet = 1;
        } else if (strcmp(a, "--sandbox") == 0) {
            o.sandbox = 1;
        } else if (strcmp(a, "--lua-cpu-limit") == 0) {
            if (egrc_cli_int("--lua-cpu-limit", argv[++i], 0, 100000000L, &o.lua_cpu_limit)) rc = EGRC_EXIT_USAGE;
        } else if (strcmp(a, "--lua-memory-limit") == 0) {
            if (egrc_cli_int("--lua-memory-limit", argv[++i], 0, 100000000L, &o.lua_memory_limit)) rc = EGRC_EXIT_USAGE;
        } else if (a[0] == '-' && a[1]) {
            rc = usage_error("unknown flag", a);
        } else if (o.recipe) {
            rc = usage_error("a second recipe", a);
        } else {
            o.recipe = a;
        }
    }
    if (rc < 0 && o.resume && o.out) rc = usage_error("--out cannot be combined with --resume (the run continues in", o.resume);
    if (rc < 0 && !o.recipe && !o.resume) {
        fputs("egrc run: a recipe file (or --resume DIR) is required\n", stderr);
        fputs(run_usage, stderr);
        rc = EGRC_EXIT_USAGE;
    }
    if (rc < 0) rc = egrc_lua_run(&o);
    free(sets);
    return rc;
}
