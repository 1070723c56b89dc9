/* Helpers shared by the module's C files, layered on lauxlib: argument and
 * option-table checks whose messages name the argument, the field, what was
 * expected and what came, the per-state bookkeeping, and where --sandbox lets
 * egrc's functions read and write (paths judged as the kernel resolves them,
 * so neither ".." nor a symlink leads out). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lua_internal.h"

static const char state_key[] = "egrc.state";

egrc_lua_state *egrc_lua_state_get(lua_State *L) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, state_key) != LUA_TUSERDATA) {
        lua_pop(L, 1);
        egrc_lua_state *s = lua_newuserdatauv(L, sizeof *s, 0);
        memset(s, 0, sizeof *s);
        lua_setfield(L, LUA_REGISTRYINDEX, state_key);
        return s;
    }
    egrc_lua_state *s = lua_touserdata(L, -1);
    lua_pop(L, 1); /* the registry keeps it alive */
    return s;
}

double egrc_lua_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int egrc_lua_raise(lua_State *L, const egrc_error *err) { return luaL_error(L, "%s", err->msg); }

int egrc_lua_resolve_path(const char *path, char *out) {
    char head[PATH_MAX], tail[PATH_MAX] = "";
    if (!*path || snprintf(head, sizeof head, "%s", path) >= (int)sizeof head) return -1;
    while (!realpath(head, out)) {
        struct stat sb;
        if (errno != ENOENT || lstat(head, &sb) == 0) return -1; /* a dangling symlink: who knows where to */
        /* judge a missing path by its nearest existing folder */
        char *slash = strrchr(head, '/');
        const char *last = slash ? slash + 1 : head;
        if (strcmp(last, "..") == 0) return -1; /* the kernel would fail here too */
        char rest[PATH_MAX];
        if (snprintf(rest, sizeof rest, "%s%s%s", last, *tail && *last ? "/" : "", tail) >= (int)sizeof rest) return -1;
        memcpy(tail, rest, sizeof tail);
        if (slash == head) strcpy(head, "/");
        else if (slash) *slash = '\0';
        else strcpy(head, ".");
    }
    size_t n = strlen(out);
    if (*tail && snprintf(out + n, PATH_MAX - n, "%s%s", n > 1 ? "/" : "", tail) >= (int)(PATH_MAX - n)) return -1;
    return 0;
}

/* Whether the resolved path lies in (or is) the resolved root. */
static int within(const char *path, const char *root) {
    size_t n = strlen(root);
    if (n > 0 && root[n - 1] == '/') return strncmp(path, root, n) == 0; /* "/" */
    return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

void egrc_lua_check_writable(lua_State *L, const char *path) {
    const egrc_lua_state *s = egrc_lua_state_get(L);
    if (!s->sandbox) return;
    size_t n = strlen(s->out_dir);
    /* the folder itself too: its listing, its stale temporary files (lresume.c) */
    int inside = n > 0 && strncmp(path, s->out_dir, n) == 0 && (path[n] == '/' || !path[n]) && !strstr(path, "..");
    /* and where it really leads: no symlink out of the run folder */
    char real[PATH_MAX], root[PATH_MAX];
    if (inside)
        inside = !egrc_lua_resolve_path(path, real) && !egrc_lua_resolve_path(s->out_dir, root) &&
                 within(real, root);
    if (!inside) {
        luaL_error(L, "writing '%s' is outside the run folder '%s' (--sandbox writes only there; use run:path(NAME))",
                   path, s->out_dir);
        return;
    }
    size_t r = strlen(root);
    if (strcmp(real + r, "/" EGRC_SANDBOX_RECORD) == 0)
        luaL_error(L, "writing '%s': the run folder's %s is egrc's record of the sandbox; a recipe may not change it",
                   path, EGRC_SANDBOX_RECORD);
}

int egrc_lua_allow_reads(lua_State *L, const char *path) {
    char real[PATH_MAX];
    if (egrc_lua_resolve_path(path, real)) return -1;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, EGRC_READ_ROOTS_KEY);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1), i = 1;
    for (; i <= n; i++) { /* once each: the list is recorded in sandbox.json */
        lua_rawgeti(L, -1, i);
        int same = strcmp(lua_tostring(L, -1), real) == 0;
        lua_pop(L, 1);
        if (same) break;
    }
    if (i > n) {
        lua_pushstring(L, real);
        lua_rawseti(L, -2, n + 1);
    }
    lua_pop(L, 1);
    return 0;
}

void egrc_lua_check_readable(lua_State *L, const char *path) {
    if (!egrc_lua_state_get(L)->sandbox) return;
    char real[PATH_MAX];
    if (egrc_lua_resolve_path(path, real))
        luaL_error(L, "reading '%s': the path does not resolve, and --sandbox reads only what it can place", path);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, EGRC_READ_ROOTS_KEY);
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
        int ok = within(real, lua_tostring(L, -1));
        lua_pop(L, 1);
        if (ok) {
            lua_pop(L, 1);
            return;
        }
    }
    const char *leads = strcmp(real, path) != 0 ? lua_pushfstring(L, " (it leads to '%s')", real) : "";
    luaL_error(L, "reading '%s'%s is outside what --sandbox lets a recipe read: the run folder, the recipe's folder "
                  "and the paths given on the command line (--set KEY=PATH, --resume DIR)",
               path, leads);
}

/* Levenshtein distance, or a large value for words too long to bother. */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 127 || lb > 127) return (size_t)-1;
    size_t row[128];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *egrc_closest(const char *word, const char *const *candidates, size_t n) {
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    /* A suggestion is only useful when it is plausibly what was meant. */
    size_t len = strlen(word);
    return best && best_d <= (len < 6 ? 2 : len / 3 + 1) ? best : NULL;
}

void egrc_check_options(lua_State *L, int arg, const char *const *allowed) {
    if (lua_isnoneornil(L, arg)) return;
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, arg, lua_pushfstring(L, "option names must be strings, got %s", luaL_typename(L, -1)));
        const char *key = lua_tostring(L, -1);
        size_t n = 0;
        while (allowed[n] && strcmp(allowed[n], key) != 0) n++;
        if (allowed[n]) continue;
        const char *near = egrc_closest(key, allowed, n);
        luaL_argerror(L, arg,
                      near ? lua_pushfstring(L, "unknown option '%s' (did you mean '%s'?)", key, near)
                           : lua_pushfstring(L, "unknown option '%s'", key));
    }
}

/* Pushes field key of the option table at arg; returns 0 (nothing pushed)
 * when the table or the field is absent. */
static int get_option(lua_State *L, int arg, const char *key) {
    if (lua_isnoneornil(L, arg)) return 0;
    luaL_checktype(L, arg, LUA_TTABLE);
    if (lua_getfield(L, arg, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

static int option_error(lua_State *L, int arg, const char *key, const char *expected) {
    const char *got = lua_type(L, -1) == LUA_TNUMBER ? lua_pushfstring(L, "%s", lua_tostring(L, -1))
                                                     : luaL_typename(L, -1);
    return luaL_argerror(L, arg, lua_pushfstring(L, "field '%s': %s expected, got %s", key, expected, got));
}

lua_Number egrc_opt_number(lua_State *L, int arg, const char *key, lua_Number def) {
    if (!get_option(L, arg, key)) return def;
    if (lua_type(L, -1) != LUA_TNUMBER) option_error(L, arg, key, "number");
    lua_Number v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

lua_Integer egrc_opt_integer(lua_State *L, int arg, const char *key, lua_Integer def) {
    if (!get_option(L, arg, key)) return def;
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || lua_type(L, -1) != LUA_TNUMBER) option_error(L, arg, key, "integer");
    lua_pop(L, 1);
    return v;
}

int egrc_opt_bool(lua_State *L, int arg, const char *key, int def) {
    if (!get_option(L, arg, key)) return def;
    if (!lua_isboolean(L, -1)) option_error(L, arg, key, "boolean");
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

const char *egrc_opt_string(lua_State *L, int arg, const char *key, const char *def) {
    if (!get_option(L, arg, key)) return def;
    if (lua_type(L, -1) != LUA_TSTRING) option_error(L, arg, key, "string");
    const char *v = lua_tostring(L, -1);
    lua_pop(L, 1); /* still referenced by the option table */
    return v;
}

int egrc_opt_enum(lua_State *L, int arg, const char *key, const char *def, const char *const *names) {
    const char *v = egrc_opt_string(L, arg, key, def);
    luaL_Buffer b;
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], v) == 0) return i;
    luaL_buffinit(L, &b);
    for (int i = 0; names[i]; i++) {
        luaL_addstring(&b, i ? ", '" : "'");
        luaL_addstring(&b, names[i]);
        luaL_addchar(&b, '\'');
    }
    luaL_pushresult(&b);
    return luaL_argerror(L, arg, lua_pushfstring(L, "field '%s': '%s' is not one of %s", key, v, lua_tostring(L, -1)));
}

void *egrc_lua_scratch(lua_State *L, size_t bytes) { return lua_newuserdatauv(L, bytes ? bytes : 1, 0); }

static int owner_gc(lua_State *L) {
    void **p = lua_touserdata(L, 1);
    free(*p);
    *p = NULL;
    return 0;
}

void **egrc_lua_owner(lua_State *L) {
    void **p = lua_newuserdatauv(L, sizeof *p, 0);
    *p = NULL;
    if (luaL_newmetatable(L, "egrc.owner")) {
        lua_pushcfunction(L, owner_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return p;
}

int32_t *egrc_check_int_list(lua_State *L, int idx, int arg, int row, size_t *count) {
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    size_t n = lua_rawlen(L, idx);
    int32_t *out = egrc_lua_scratch(L, n * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok || lua_type(L, -1) != LUA_TNUMBER || v < INT32_MIN || v > INT32_MAX) {
            const char *got = luaL_tolstring(L, -1, NULL);
            luaL_argerror(L, arg, row ? lua_pushfstring(L, "row %d, element %d: 32-bit integer expected, got %s", row,
                                                        (int)i + 1, got)
                                      : lua_pushfstring(L, "element %d: 32-bit integer expected, got %s", (int)i + 1, got));
        }
        out[i] = (int32_t)v;
        lua_pop(L, 1);
    }
    *count = n;
    return out;
}

float *egrc_check_float_list(lua_State *L, int arg, size_t count) {
    luaL_checktype(L, arg, LUA_TTABLE);
    size_t n = lua_rawlen(L, arg);
    if (n != count)
        luaL_argerror(L, arg, lua_pushfstring(L, "%d numbers expected, got %d", (int)count, (int)n));
    float *out = egrc_lua_scratch(L, n * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        if (lua_rawgeti(L, arg, (lua_Integer)i + 1) != LUA_TNUMBER)
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "element %d: number expected, got %s", (int)i + 1, luaL_typename(L, -1)));
        out[i] = (float)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    return out;
}

void egrc_push_int_list(lua_State *L, const int32_t *values, size_t count) {
    lua_createtable(L, (int)count, 0);
    for (size_t i = 0; i < count; i++) {
        lua_pushinteger(L, values[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

void egrc_push_float_list(lua_State *L, const float *values, size_t count) {
    lua_createtable(L, (int)count, 0);
    for (size_t i = 0; i < count; i++) {
        lua_pushnumber(L, values[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}
