/* --sandbox: a recipe from someone else runs without os, io, debug, egrc.ffi,
 * package.loadlib, dofile/loadfile, binary chunks, or any module from disk
 * (Lua or C); egrc's own functions keep working, and those that write files
 * write only inside the run folder (egrc_lua_check_writable). Touching a
 * removed name raises "<name> is disabled by --sandbox" instead of the
 * puzzling "attempt to index a nil value". */
#include <string.h>

#include "lua_internal.h"

/* Globals (and modules) the sandbox removes. egrc.ffi is refused by the
 * egrc module itself (lua/egrc/init.lua), since it lives in a table. */
static const char *const removed[] = {"os", "io", "debug", "dofile", "loadfile", NULL};

static int is_removed(const char *name) {
    for (int i = 0; removed[i]; i++)
        if (strcmp(removed[i], name) == 0) return 1;
    return 0;
}

static int disabled(lua_State *L) {
    return luaL_error(L, "%s is disabled by --sandbox", lua_tostring(L, lua_upvalueindex(1)));
}

static void push_disabled(lua_State *L, const char *name) {
    lua_pushstring(L, name);
    lua_pushcclosure(L, disabled, 1);
}

/* _G's __index: a clear message for what the sandbox took away. */
static int global_index(lua_State *L) {
    const char *name = lua_tostring(L, 2);
    if (name && is_removed(name)) return luaL_error(L, "%s is disabled by --sandbox", name);
    return 0;
}

/* The last searcher: nothing from disk. */
static int sandbox_searcher(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    if (is_removed(name)) return luaL_error(L, "%s is disabled by --sandbox", name);
    return luaL_error(L, "require '%s': modules from disk (Lua or C) are disabled by --sandbox", name);
}

/* load(chunk, name, mode, env) with mode forced to text: a crafted binary
 * chunk can corrupt the Lua VM. */
static int text_load(lua_State *L) {
    int n = lua_gettop(L);
    if (n < 3) lua_settop(L, 3);
    if (!lua_isnoneornil(L, 3) && strcmp(luaL_checkstring(L, 3), "t") != 0)
        return luaL_error(L, "load: binary chunks are disabled by --sandbox");
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

void egrc_sandbox(lua_State *L) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    for (int i = 0; removed[i]; i++) {
        lua_pushnil(L);
        lua_setfield(L, -2, removed[i]);
        lua_pushnil(L);
        lua_setglobal(L, removed[i]);
    }
    lua_pop(L, 1);
    push_disabled(L, "package.loadlib");
    lua_setfield(L, -2, "loadlib");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    /* searchers: preload, the embedded egrc library, then the refusal */
    lua_getfield(L, -1, "searchers");
    for (lua_Integer i = (lua_Integer)lua_rawlen(L, -1); i > 2; i--) {
        lua_pushnil(L);
        lua_rawseti(L, -2, i);
    }
    lua_pushcfunction(L, sandbox_searcher);
    lua_rawseti(L, -2, 3);
    lua_pop(L, 2);
    lua_getglobal(L, "load");
    lua_pushcclosure(L, text_load, 1);
    lua_setglobal(L, "load");
    lua_pushglobaltable(L);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, global_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
}
