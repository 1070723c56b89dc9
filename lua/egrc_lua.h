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
} egrc_run_options;

/* Runs a recipe to the end; returns the exit code (0, 1 runtime failure, 2
 * usage or recipe error) after printing any error to stderr. */
int egrc_lua_run(const egrc_run_options *opts);

/* A fresh Lua state with the standard libraries, the embedded egrc library
 * (require "egrc", "egrc.rewards", ...) and, when sandbox is set, the
 * sandbox's restrictions. NULL (err set) when out of memory. */
lua_State *egrc_lua_newstate(int sandbox, egrc_error *err);

/* Applies one "--set a.b.c=value" to the settings table at index idx: the
 * value is typed from the existing default. Fails, naming the key, for an
 * unknown key (suggesting the closest valid one), a table, or a value that
 * does not parse as the default's type. */
int egrc_settings_set(lua_State *L, int idx, const char *assignment, egrc_error *err);

#endif
