/* egrc.buffer: a fixed-size array of fp32 values in C memory. Recipes hand
 * it to C functions through egrc.ffi without copies (a Lua table passed as
 * float* is copied in and out on every call). Indices are 1-based, like
 * every Lua sequence; out-of-range reads and writes are errors, not nil. */
#include <string.h>

#include "lua_internal.h"

typedef struct lua_buffer {
    size_t n;
    float data[];
} lua_buffer;

static lua_buffer *check_buffer(lua_State *L, int arg) { return luaL_checkudata(L, arg, EGRC_BUFFER_MT); }

float *egrc_test_buffer(lua_State *L, int arg, size_t *count) {
    lua_buffer *b = luaL_testudata(L, arg, EGRC_BUFFER_MT);
    if (!b) return NULL;
    *count = b->n;
    return b->data;
}

/* egrc.buffer(n) (zeros) or egrc.buffer({numbers}) (a copy). */
static int buffer_new(lua_State *L) {
    int from_table = lua_istable(L, 1);
    lua_Integer n = from_table ? (lua_Integer)lua_rawlen(L, 1) : luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= ((lua_Integer)1 << 32), 1, "size must be in 0..2^32");
    lua_buffer *b = lua_newuserdatauv(L, sizeof *b + (size_t)n * sizeof(float), 0);
    b->n = (size_t)n;
    memset(b->data, 0, (size_t)n * sizeof(float));
    luaL_setmetatable(L, EGRC_BUFFER_MT);
    for (lua_Integer i = 0; from_table && i < n; i++) {
        if (lua_rawgeti(L, 1, i + 1) != LUA_TNUMBER)
            luaL_argerror(L, 1, lua_pushfstring(L, "element %d: number expected, got %s", (int)i + 1, luaL_typename(L, -1)));
        b->data[i] = (float)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    return 1;
}

static size_t check_slot(lua_State *L, const lua_buffer *b) {
    lua_Integer i = luaL_checkinteger(L, 2);
    if (i < 1 || (size_t)i > b->n)
        luaL_error(L, "buffer index %d is outside 1..%d", (int)i, (int)b->n);
    return (size_t)i - 1;
}

static int buffer_index(lua_State *L) {
    lua_buffer *b = check_buffer(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING) { /* a method */
        lua_getmetatable(L, 1);
        lua_getfield(L, -1, "methods");
        lua_getfield(L, -1, lua_tostring(L, 2));
        if (lua_isnil(L, -1)) return luaL_error(L, "egrc.buffer has no method '%s'", lua_tostring(L, 2));
        return 1;
    }
    lua_pushnumber(L, b->data[check_slot(L, b)]);
    return 1;
}

static int buffer_newindex(lua_State *L) {
    lua_buffer *b = check_buffer(L, 1);
    size_t i = check_slot(L, b);
    b->data[i] = (float)luaL_checknumber(L, 3);
    return 0;
}

static int buffer_len(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)check_buffer(L, 1)->n);
    return 1;
}

static int buffer_totable(lua_State *L) {
    lua_buffer *b = check_buffer(L, 1);
    egrc_push_float_list(L, b->data, b->n);
    return 1;
}

static int buffer_fill(lua_State *L) {
    lua_buffer *b = check_buffer(L, 1);
    float v = (float)luaL_checknumber(L, 2);
    for (size_t i = 0; i < b->n; i++) b->data[i] = v;
    lua_settop(L, 1);
    return 1;
}

static int buffer_tostring(lua_State *L) {
    lua_pushfstring(L, "egrc.buffer (%d floats)", (int)check_buffer(L, 1)->n);
    return 1;
}

void egrc_open_buffer(lua_State *L) {
    luaL_newmetatable(L, EGRC_BUFFER_MT);
    luaL_setfuncs(L, ((const luaL_Reg[]){{"__index", buffer_index},
                                         {"__newindex", buffer_newindex},
                                         {"__len", buffer_len},
                                         {"__tostring", buffer_tostring},
                                         {NULL, NULL}}),
                  0);
    luaL_newlib(L, ((const luaL_Reg[]){{"totable", buffer_totable}, {"fill", buffer_fill}, {NULL, NULL}}));
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
    lua_pushcfunction(L, buffer_new);
    lua_setfield(L, -2, "buffer");
}
