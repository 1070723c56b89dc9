/* libFuzzer target for the recipe settings (lua/lsettings.c): `--set`
 * assignments, a resumed run's settings.json merged over the defaults, and
 * a settings table checked as a recipe's own. The input is text:
 *
 *   train.lr=3e-4          <- lines before the first line that starts with
 *   rl.stop=a,b               '{' are --set assignments, in order
 *   {"rl": {"steps": 5}}   <- from that line on, a settings table as JSON
 *
 * Every step must either succeed or fail with a message; never crash, leave
 * the Lua stack unbalanced, change a setting's type, or turn a table that
 * passed the check into one that does not. Lua errors (a table nested past
 * the stack's limit) count as clean failures: `egrc run` calls these inside
 * a protected call too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "egrc_lua.h"
#include "lua_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Only this many assignments are applied: more add run time, not paths. */
#define MAX_ASSIGNMENTS 16

/* A recipe's settings of every kind the parser types values from: integer
 * and float numbers, booleans, strings, lists of each (and an empty one),
 * and nested groups. */
static const char defaults_chunk[] =
    "return { backend = 'cpu', device = 0, seed = 7, out = '',"
    "  model = { preset = 'llama-tiny', layers = 2, dropout = 0.0, tied = true },"
    "  rl = { steps = 100, lr = 1e-4, group = 8, stop = { '</answer>' }, budgets = { 64, 128 },"
    "         weights = { 0.5, 1.5 }, flags = { true, false }, tags = {},"
    "         switch = { patience = 3, min_drop = 0.01, enabled = false } },"
    "  eval = { seed = 1, families = { 'add', 'mul' }, greedy = true } }";

typedef struct fuzz_input {
    const char *lines[MAX_ASSIGNMENTS];
    size_t n_lines;
    const char *json; /* NULL when the input has no JSON part */
    size_t json_len;
} fuzz_input;

/* Splits the NUL-terminated copy of the input (writing NULs over the
 * assignments' newlines) into assignment lines and the JSON part. */
static void split_input(char *text, size_t len, fuzz_input *in) {
    memset(in, 0, sizeof *in);
    for (char *line = text; line < text + len;) {
        if (*line == '{') {
            in->json = line;
            in->json_len = (size_t)(text + len - line);
            return;
        }
        char *end = memchr(line, '\n', (size_t)(text + len - line));
        if (end) *end = '\0';
        if (in->n_lines < MAX_ASSIGNMENTS) in->lines[in->n_lines++] = line;
        if (!end) return;
        line = end + 1;
    }
}

static void require_message(const egrc_error *err, const char *must_contain) {
    if (memchr(err->msg, '\0', sizeof err->msg) == NULL || err->msg[0] == '\0') abort();
    if (must_contain && !strstr(err->msg, must_contain)) abort();
}

/* Pushes the setting that `assignment`'s key names under the table at idx
 * (nil when there is none), walking the dotted key as --set does. */
static void push_setting(lua_State *L, int idx, const char *assignment) {
    const char *eq = strchr(assignment, '=');
    lua_pushvalue(L, idx);
    for (const char *seg = assignment; eq && seg <= eq;) {
        if (!lua_istable(L, -1)) {
            lua_pop(L, 1);
            lua_pushnil(L);
            return;
        }
        const char *dot = memchr(seg, '.', (size_t)(eq - seg));
        const char *end = dot ? dot : eq;
        lua_pushlstring(L, seg, (size_t)(end - seg));
        lua_rawget(L, -2);
        lua_remove(L, -2);
        seg = end + 1;
    }
}

/* Numbers count as two types here: --set keeps an integer an integer and a
 * float a float. */
static int setting_kind(lua_State *L, int idx) {
    int type = lua_type(L, idx);
    return type == LUA_TNUMBER && lua_isinteger(L, idx) ? LUA_NUMTYPES : type;
}

static void apply_assignment(lua_State *L, int settings, const char *assignment) {
    int top = lua_gettop(L);
    push_setting(L, settings, assignment);
    int kind_before = setting_kind(L, -1);
    lua_pop(L, 1);
    egrc_error err;
    err.msg[0] = '\0';
    int rc = egrc_settings_set(L, settings, assignment, &err);
    if (lua_gettop(L) != top) abort();
    if (rc != 0) {
        /* The message must say which option it is about. */
        require_message(&err, "--set");
        return;
    }
    push_setting(L, settings, assignment);
    if (kind_before == LUA_TNIL || setting_kind(L, -1) != kind_before) abort();
    lua_pop(L, 1);
}

static int checks_clean(lua_State *L, int settings) {
    egrc_error err;
    err.msg[0] = '\0';
    int rc = egrc_settings_check(L, settings, "", &err);
    if (rc != 0) require_message(&err, "settings");
    return rc == 0;
}

/* Applies the assignments to the settings at idx; a table that passed the
 * check before them must pass it after. */
static void apply_assignments(lua_State *L, int settings, const fuzz_input *in) {
    int was_clean = checks_clean(L, settings);
    for (size_t i = 0; i < in->n_lines; i++) apply_assignment(L, settings, in->lines[i]);
    if (was_clean && !checks_clean(L, settings)) abort();
}

/* The JSON part as a recipe's settings (checked, then --set), as
 * gpu_settings (overlay-checked against the defaults) and as a resumed
 * run's settings.json (merged unchecked, as `egrc run --resume` does). */
static void use_json_table(lua_State *L, int defaults, int table, const fuzz_input *in) {
    if (checks_clean(L, table)) apply_assignments(L, table, in);
    egrc_error err;
    err.msg[0] = '\0';
    int top = lua_gettop(L);
    if (egrc_settings_overlay_check(L, defaults, table, "gpu_settings", &err) != 0)
        require_message(&err, "gpu_settings");
    if (lua_gettop(L) != top) abort();
    egrc_settings_merge(L, defaults, table);
    if (lua_gettop(L) != top) abort();
}

static int run_input(lua_State *L) {
    const fuzz_input *in = lua_touserdata(L, 1);
    if (luaL_loadstring(L, defaults_chunk) != LUA_OK) abort();
    lua_call(L, 0, 1);
    int defaults = lua_gettop(L);
    if (in->json && egrc_json_push(L, in->json, in->json_len) == 0 && lua_istable(L, -1))
        use_json_table(L, defaults, lua_gettop(L), in);
    apply_assignments(L, defaults, in);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    lua_State *L = luaL_newstate();
    if (!text || !L) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    fuzz_input in;
    split_input(text, size, &in);
    lua_pushcfunction(L, run_input);
    lua_pushlightuserdata(L, &in);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK && !lua_isstring(L, -1)) abort();
    lua_close(L);
    free(text);
    return 0;
}
