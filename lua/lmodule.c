/* The `egrc.core` C module and the Lua state recipes run in.
 *
 * egrc.core gathers the C functions (lmodel.c, ltrain.c, ...); the embedded
 * Lua library (the .lua files of lua/egrc, compiled into the binary) builds `egrc` on
 * top of it. A package.searchers entry placed right after the preload
 * searcher serves every "egrc" and "egrc.*" name from the embedded sources
 * and refuses unknown ones, so an egrc.lua lying in the working directory
 * can never shadow the library. */
#include <lualib.h>
#include <string.h>

#include "lua_internal.h"
#include "egrc_lua.h"

#ifndef EGRC_VERSION
#define EGRC_VERSION "0.0.0"
#endif

const egrc_embedded_file *egrc_embedded_find(const char *name) {
    for (const egrc_embedded_file *f = egrc_embedded_files; f->name; f++)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

static int clock_seconds(lua_State *L) {
    lua_pushnumber(L, egrc_lua_clock());
    return 1;
}

static int stack_level(lua_State *L) {
    lua_Debug ar;
    int level = 0;
    while (lua_getstack(L, level, &ar)) level++;
    return level;
}

/* egrc.hook(fn, ...) -> fn(...): a call into recipe code (a schedule, a
 * reward), timed so the summary can report what share of the step time Lua
 * hooks took. Nested hooks count once. No pcall here: an error keeps its
 * traceback; a hook that ended by an error is noticed by the stack level of
 * the next one and the count repaired. */
static int hook(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    egrc_lua_state *s = egrc_lua_state_get(L);
    int level = stack_level(L);
    if (s->hook_depth && level <= s->hook_level) s->hook_depth = 0;
    int outer = s->hook_depth == 0;
    if (outer) s->hook_level = level;
    s->hook_depth++;
    double start = egrc_lua_clock();
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    s->hook_depth--;
    if (outer) {
        s->hook_seconds += egrc_lua_clock() - start;
        s->hook_calls++;
    }
    return lua_gettop(L);
}

static int hook_stats(lua_State *L) {
    const egrc_lua_state *s = egrc_lua_state_get(L);
    lua_pushnumber(L, s->hook_seconds);
    lua_pushinteger(L, s->hook_calls);
    return 2;
}

/* egrc.closest(word, {candidates}) -> the likely intended one, or nil */
static int closest(lua_State *L) {
    const char *word = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t n = lua_rawlen(L, 2);
    const char **list = egrc_lua_scratch(L, n * sizeof *list);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (lua_Integer)i + 1);
        if (lua_type(L, -1) == LUA_TSTRING) list[used++] = lua_tostring(L, -1); /* kept alive by the table */
        lua_pop(L, 1);
    }
    const char *best = egrc_closest(word, list, used);
    if (best) lua_pushstring(L, best);
    else lua_pushnil(L);
    return 1;
}

int egrc_open_core(lua_State *L) {
    const egrc_lua_state *s = egrc_lua_state_get(L);
    lua_newtable(L);
    egrc_open_model(L);
    egrc_open_train(L);
    egrc_open_generate(L);
    egrc_open_tasks(L);
    egrc_open_json(L);
    egrc_open_buffer(L);
    egrc_open_console(L);
    egrc_open_resume(L);
    if (!s->sandbox) egrc_open_ffi(L);
    luaL_setfuncs(L, ((const luaL_Reg[]){{"clock", clock_seconds}, {"hook", hook}, {"hook_stats", hook_stats},
                                         {"closest", closest}, {"lua_limits", egrc_lua_push_limits},
                                         {NULL, NULL}}),
                  0);
    lua_pushliteral(L, EGRC_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushboolean(L, s->sandbox);
    lua_setfield(L, -2, "sandboxed");
    return 1;
}

/* The searcher for "egrc" and "egrc.*": embedded sources only. */
static int embedded_searcher(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    if (strcmp(name, "egrc") != 0 && strncmp(name, "egrc.", 5) != 0) {
        lua_pushfstring(L, "\n\tno embedded module '%s'", name);
        return 1;
    }
    const egrc_embedded_file *f = egrc_embedded_find(name);
    if (!f || !f->chunk) return luaL_error(L, "module '%s' is not part of egrc", name);
    if (luaL_loadbufferx(L, (const char *)f->data, f->size, f->chunk, "t") != LUA_OK) return lua_error(L);
    lua_pushstring(L, f->chunk + 1);
    return 2;
}

static int setup(lua_State *L) {
    int sandbox = (int)lua_tointeger(L, 1);
    luaL_openlibs(L);
    egrc_lua_state_get(L)->sandbox = sandbox;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, egrc_open_core);
    lua_setfield(L, -2, "egrc.core");
    lua_pop(L, 1);
    /* package.searchers: preload, then ours, then the usual file searchers */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers");
    for (lua_Integer i = (lua_Integer)lua_rawlen(L, -1); i >= 2; i--) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushcfunction(L, embedded_searcher);
    lua_rawseti(L, -2, 2);
    lua_pop(L, 2);
    /* print goes through the console, which first moves off a progress line */
    luaL_requiref(L, "egrc.core", egrc_open_core, 0);
    lua_getfield(L, -1, "console");
    lua_getfield(L, -1, "print");
    lua_setglobal(L, "print");
    lua_pop(L, 2);
    if (sandbox) egrc_sandbox(L);
    return 0;
}

lua_State *egrc_lua_newstate(int sandbox, egrc_error *err) {
    lua_State *L = luaL_newstate();
    if (L && egrc_lua_install_heap(L)) {
        lua_close(L);
        L = NULL;
    }
    if (!L) {
        egrc_fail(err, "cannot create a Lua state: out of memory");
        return NULL;
    }
    lua_pushcfunction(L, setup);
    lua_pushinteger(L, sandbox);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        egrc_fail(err, "cannot set up Lua: %s", lua_tostring(L, -1));
        egrc_lua_close(L);
        return NULL;
    }
    return L;
}
