/* The Lua layer's public face: `egrc run` (recipes) and the Lua state it
 * runs them in. The `egrc` Lua module itself is documented in docs/recipes.md;
 * lua_internal.h holds what the module's C files share. */
#ifndef EGRC_LUA_H
#define EGRC_LUA_H

#include <lua.h>
#include <stdint.h>

#include "base/error.h"

typedef struct egrc_run_options {
    const char *recipe;  /* the recipe file; NULL with resume: DIR/recipe.lua */
    const char *backend; /* NULL: settings.backend */
    int device;          /* < 0: settings.device */
    int has_seed;
    int64_t seed;        /* overrides settings.seed when has_seed */
    const char *out;     /* NULL: runs/<recipe name>-<timestamp>, or the resumed folder */
    const char *const *sets; /* "a.b.c=value" overrides, applied in order */
    int n_sets;
    const char *resume;  /* a run folder to continue */
    int quiet;           /* plain lines instead of a live progress line */
    int sandbox;         /* no os, io, ffi, package.loadlib or modules from disk */
    long lua_cpu_limit;  /* CPU seconds of Lua code; 0: none; < 0: the default */
    long lua_memory_limit; /* MB of Lua heap; 0: none; < 0: the default */
} egrc_run_options;

/* The limits' defaults under --sandbox (off without it): far above what the
 * main job (recipes/entropy_guided.lua) needs, so only a runaway recipe
 * meets them. Measured on the CPU at 100 SFT steps of batch 64 and 2 RL
 * steps of 64 prompts x 8: 0.33 s of Lua CPU time and a 5.5 MB heap peak;
 * the GPU settings' 2000 SFT and 100 RL steps scale that to tens of
 * seconds and tens of MB. */
#define EGRC_SANDBOX_CPU_LIMIT 3600
#define EGRC_SANDBOX_MEMORY_LIMIT 2048

/* Runs a recipe to the end; returns the exit code (0, 1 runtime failure, 2
 * usage or recipe error) after printing any error to stderr. */
int egrc_lua_run(const egrc_run_options *opts);

/* A fresh Lua state with the standard libraries, the embedded egrc library
 * (require "egrc", "egrc.rewards", ...) and, when sandbox is set, the
 * sandbox's restrictions. NULL (err set) when out of memory. */
lua_State *egrc_lua_newstate(int sandbox, egrc_error *err);
/* Closes a state egrc_lua_newstate made. */
void egrc_lua_close(lua_State *L);

/* Applies one "--set a.b.c=value" to the settings table at index idx: the
 * value is typed from the existing default. Fails, naming the key, for an
 * unknown key (suggesting the closest valid one), a table, or a value that
 * does not parse as the default's type. */
int egrc_settings_set(lua_State *L, int idx, const char *assignment, egrc_error *err);

#endif
