/* What the C files of the egrc Lua module share: userdata type names, the
 * per-state bookkeeping, and argument helpers in the style of lauxlib.c
 * (every check names the argument, the field and what was expected). */
#ifndef EGRC_LUA_INTERNAL_H
#define EGRC_LUA_INTERNAL_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/rng.h"
#include "io/tokenizer.h"
#include "nn/generate.h"
#include "nn/model.h"

/* Metatable names (registry keys) of the module's userdata. */
#define EGRC_BACKEND_MT "egrc.backend"
#define EGRC_MODEL_MT "egrc.model"
#define EGRC_TOKENIZER_MT "egrc.tokenizer"
#define EGRC_TRAINER_MT "egrc.trainer"
#define EGRC_ROLLOUT_MT "egrc.rollout"
#define EGRC_RNG_MT "egrc.rng"
#define EGRC_BUFFER_MT "egrc.buffer"
#define EGRC_FFI_LIB_MT "egrc.ffi.library"
#define EGRC_FFI_FUNC_MT "egrc.ffi.function"
#define EGRC_METRICS_MT "egrc.metrics"

/* Per-Lua-state bookkeeping, one userdata in the registry. */
typedef struct egrc_lua_state {
    int sandbox;
    int quiet;
    char out_dir[4096]; /* the run folder; under --sandbox the only place egrc writes */
    double hook_seconds; /* time inside recipe hooks (egrc.hook) */
    long hook_calls;
    int hook_depth;     /* nested hooks count once */
    int hook_level;     /* stack level of the outermost running hook */
    int progress_shown; /* a \r progress line is on the terminal */
    /* --lua-cpu-limit (lsandbox.c): the CPU time of Lua code, the time inside
     * egrc's own C functions left out */
    double cpu_limit;      /* seconds; 0: no limit */
    double cpu_start;      /* the thread's CPU clock when the limit was set */
    double c_seconds;      /* CPU time inside egrc's C functions since then */
    double c_call_start;   /* < 0: not inside one */
    double cpu_used;       /* >= 0 once the limits stopped */
    int cpu_exceeded;      /* sticky: a recipe that catches the error stays stopped */
    const lua_CFunction *egrc_functions; /* sorted, owned by a registry userdata */
    size_t n_egrc_functions;
} egrc_lua_state;

egrc_lua_state *egrc_lua_state_get(lua_State *L);
double egrc_lua_clock(void);

/* Raises err's message as a Lua error (with the caller's position). */
int egrc_lua_raise(lua_State *L, const egrc_error *err);
/* The run folder's record of its sandbox and limits (lrun.c), and the
 * registry list of the resolved paths reads may reach. */
#define EGRC_SANDBOX_RECORD "sandbox.json"
#define EGRC_READ_ROOTS_KEY "egrc.read_roots"

/* Under --sandbox, errors unless path lies inside the run folder (and is not
 * the folder's sandbox.json, which only egrc writes). */
void egrc_lua_check_writable(lua_State *L, const char *path);
/* Under --sandbox, errors unless path lies inside one of the folders (or is
 * one of the files) egrc_lua_allow_reads named: the run folder, the recipe's
 * folder, the paths given on the command line. The message names the path
 * and the rule. */
void egrc_lua_check_readable(lua_State *L, const char *path);
/* Adds an existing path to those reads may reach; its resolved form is kept
 * (pushed nowhere). Returns 0, or -1 when it does not resolve. */
int egrc_lua_allow_reads(lua_State *L, const char *path);
/* The path as the kernel would reach it, in out (PATH_MAX bytes): the real
 * path of its longest existing prefix, then the rest, which cannot hold a
 * symlink (it does not exist) and may not hold "..". Returns 0, or -1 (also
 * for a dangling symlink, whose target nobody can judge). */
int egrc_lua_resolve_path(const char *path, char *out);

/* The sandbox limits (lsandbox.c): CPU seconds of Lua code and megabytes of
 * Lua heap, 0 meaning none. egrc_lua_limits_stop ends them (before the
 * driver's own Lua code runs, e.g. run:finish) and, when one of them ended
 * the run, pushes its message and returns 1; main_ok says whether the
 * recipe's main returned normally (a heap limit it recovered from is no
 * failure; a spent CPU budget is). egrc_lua_push_limits pushes a table of
 * the limits and what was used, for summary.json. */
void egrc_lua_set_limits(lua_State *L, double cpu_seconds, size_t heap_mb);
/* Puts the state's allocations under the heap cap's accounting (at creation;
 * egrc_lua_close frees it). Returns -1 when out of memory. */
int egrc_lua_install_heap(lua_State *L);
int egrc_lua_limits_stop(lua_State *L, int main_ok);
int egrc_lua_push_limits(lua_State *L);
/* Under --sandbox, the environment recipes run in: their globals are their
 * own; egrc's library keeps the real ones (pushes it). */
void egrc_push_recipe_env(lua_State *L);

/* The closest of n candidates to word by edit distance, or NULL when none is
 * near enough to be a plausible typo. */
const char *egrc_closest(const char *word, const char *const *candidates, size_t n);

/* Option tables: fails for a key not in `allowed` (NULL-terminated),
 * suggesting the closest; arg may be absent or nil. */
void egrc_check_options(lua_State *L, int arg, const char *const *allowed);
lua_Number egrc_opt_number(lua_State *L, int arg, const char *key, lua_Number def);
lua_Integer egrc_opt_integer(lua_State *L, int arg, const char *key, lua_Integer def);
int egrc_opt_bool(lua_State *L, int arg, const char *key, int def);
const char *egrc_opt_string(lua_State *L, int arg, const char *key, const char *def);
/* One of `names` (NULL-terminated) by its string; returns its index. */
int egrc_opt_enum(lua_State *L, int arg, const char *key, const char *def, const char *const *names);

/* Sequences of numbers: checks every element, stores into a buffer owned by
 * a userdata pushed on the stack (so an error cannot leak it). The int list
 * is the table at idx; errors name argument arg (and row, when > 0). */
int32_t *egrc_check_int_list(lua_State *L, int idx, int arg, int row, size_t *count);
float *egrc_check_float_list(lua_State *L, int arg, size_t count);
void egrc_push_int_list(lua_State *L, const int32_t *values, size_t count);
void egrc_push_float_list(lua_State *L, const float *values, size_t count);
/* Temporary memory freed by the garbage collector (pushed on the stack). */
void *egrc_lua_scratch(lua_State *L, size_t bytes);
/* A pointer slot whose malloc'd target the garbage collector frees (pushed). */
void **egrc_lua_owner(lua_State *L);

/* The userdata of the module, for the files that use each other's types. */
egrc_model *egrc_check_model(lua_State *L, int arg);
egrc_tokenizer *egrc_check_tokenizer(lua_State *L, int arg);
egrc_rng *egrc_check_rng(lua_State *L, int arg);
const egrc_rollout *egrc_check_rollout(lua_State *L, int arg);
/* Pushes a tokenizer userdata that owns tok. */
void egrc_push_tokenizer(lua_State *L, egrc_tokenizer *tok);
/* A float buffer userdata, or NULL when arg is not one. */
float *egrc_test_buffer(lua_State *L, int arg, size_t *count);

/* JSON <-> Lua (ljson.c). egrc_json_push returns -1 for text that is not
 * JSON (pushing nothing). egrc_json_encode pushes the JSON text of the value
 * at idx (tables with string keys become objects with sorted keys, sequences
 * arrays) and returns it; it raises errors for functions, userdata, cycles. */
int egrc_json_push(lua_State *L, const char *text, size_t len);
const char *egrc_json_encode(lua_State *L, int idx, int pretty, size_t *len);
/* Writes the value at idx as pretty JSON to path, atomically. */
void egrc_json_write(lua_State *L, const char *path, int idx);

/* Settings (lsettings.c): checks the recipe's settings table (names for
 * keys; numbers, booleans, strings, lists and tables as values), and merges
 * a saved settings table (src) into the defaults (dst), keeping a float
 * default's type. */
int egrc_settings_check(lua_State *L, int idx, const char *prefix, egrc_error *err);
void egrc_settings_merge(lua_State *L, int dst, int src);
/* Checks that every setting of the table at src (named `prefix` in
 * messages) exists in the settings at dst with the same type, so that a
 * merge of src into dst changes values only. */
int egrc_settings_overlay_check(lua_State *L, int dst, int src, const char *prefix, egrc_error *err);

/* Submodule openers: each pushes its table (or adds to the one on top). */
void egrc_open_model(lua_State *L);
void egrc_open_train(lua_State *L);
void egrc_open_generate(lua_State *L);
void egrc_open_tasks(lua_State *L);
void egrc_open_json(lua_State *L);
void egrc_open_ffi(lua_State *L);
void egrc_open_buffer(lua_State *L);
void egrc_open_console(lua_State *L);
void egrc_open_resume(lua_State *L); /* egrc.interrupted, egrc.run_files (lresume.c) */

/* Stop signals (lresume.c): the first SIGINT/SIGTERM sets a flag the step
 * loops read; a second exits at once. egrc_lua_stop_signal() is that first
 * signal's number, 0 when none came. */
int egrc_lua_install_stop_handlers(egrc_error *err);
int egrc_lua_stop_signal(void);
int egrc_open_core(lua_State *L);
void egrc_sandbox(lua_State *L);

/* The embedded sources (generated from the .lua files of lua/egrc at build time). */
typedef struct egrc_embedded_file {
    const char *name;  /* module name ("egrc.rewards") or data name */
    const char *chunk; /* chunk name for messages ("@egrc/rewards.lua") */
    const unsigned char *data;
    size_t size;
} egrc_embedded_file;
extern const egrc_embedded_file egrc_embedded_files[];
const egrc_embedded_file *egrc_embedded_find(const char *name);

#endif
