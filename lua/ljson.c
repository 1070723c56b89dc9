/* JSON for recipes and for the run's files (settings.json, metrics.jsonl,
 * summary.json), through cJSON.
 *
 * Lua to JSON: a table whose keys are exactly 1..n is an array, any other
 * table an object (string keys, written sorted so files diff cleanly; an
 * empty table is {}); NaN and infinities become null. JSON to Lua: null
 * becomes nil, integral numbers integers. While a tree is built it hangs off
 * a userdata with __gc, so a Lua error half-way frees it. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "io/json_number.h"
#include "lua_internal.h"

#define MAX_DEPTH 100
#define JSON_BOX_MT "egrc.json.box"

static void push_value(lua_State *L, const cJSON *item, int depth) {
    luaL_checkstack(L, 4, "JSON nesting too deep");
    if (cJSON_IsString(item)) {
        lua_pushstring(L, item->valuestring);
    } else if (cJSON_IsNumber(item)) {
        double v = item->valuedouble;
        /* -0 stays a float: as the integer 0 it would lose its sign */
        if (v == floor(v) && fabs(v) <= 9007199254740992.0 && !signbit(v)) lua_pushinteger(L, (lua_Integer)v);
        else lua_pushnumber(L, v);
    } else if (cJSON_IsBool(item)) {
        lua_pushboolean(L, cJSON_IsTrue(item));
    } else if (cJSON_IsArray(item) || cJSON_IsObject(item)) {
        if (depth > MAX_DEPTH) luaL_error(L, "JSON nested deeper than %d levels", MAX_DEPTH);
        int array = cJSON_IsArray(item);
        lua_createtable(L, array ? cJSON_GetArraySize(item) : 0, array ? 0 : cJSON_GetArraySize(item));
        lua_Integer i = 0;
        for (const cJSON *child = item->child; child; child = child->next) {
            push_value(L, child, depth + 1);
            if (array) lua_rawseti(L, -2, ++i);
            else lua_setfield(L, -2, child->string);
        }
    } else {
        lua_pushnil(L);
    }
}

typedef struct json_box {
    cJSON *root;
} json_box;

static int box_gc(lua_State *L) {
    json_box *b = luaL_checkudata(L, 1, JSON_BOX_MT);
    cJSON_Delete(b->root);
    b->root = NULL;
    return 0;
}

static json_box *new_box(lua_State *L) {
    json_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->root = NULL;
    if (luaL_newmetatable(L, JSON_BOX_MT)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

int egrc_json_push(lua_State *L, const char *text, size_t len) {
    json_box *b = new_box(L);
    b->root = cJSON_ParseWithLength(text, len);
    if (!b->root) {
        lua_pop(L, 1);
        return -1;
    }
    push_value(L, b->root, 0);
    lua_remove(L, -2); /* the box; its __gc frees the tree */
    return 0;
}

/* Whether the table at idx is a sequence 1..n (n > 0) and nothing else. */
static int is_array(lua_State *L, int idx) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    if (n == 0) return 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
    }
    return count == n;
}

static const char *where(const char *key) { return key ? key : "(top)"; }

static int compare_keys(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Integers as integers (all 64 bits), other numbers in the fewest digits that
 * read back as the same double; NaN and infinities as null. */
static cJSON *number_node(lua_State *L, int idx) {
    char text[EGRC_JSON_NUMBER_MAX];
    if (lua_isinteger(L, idx)) {
        snprintf(text, sizeof text, LUA_INTEGER_FMT, lua_tointeger(L, idx));
        return cJSON_CreateRaw(text);
    }
    double v = lua_tonumber(L, idx);
    return isfinite(v) ? cJSON_CreateRaw(egrc_json_format_double(v, text)) : cJSON_CreateNull();
}

/* Converts the value at idx and attaches it to parent (under key for an
 * object) before descending, so the box always owns everything built. */
static void convert(lua_State *L, int idx, json_box *box, cJSON *parent, const char *key, int depth) {
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 6, "JSON nesting too deep");
    cJSON *node = NULL;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: node = cJSON_CreateNull(); break;
    case LUA_TBOOLEAN: node = cJSON_CreateBool(lua_toboolean(L, idx)); break;
    case LUA_TNUMBER: node = number_node(L, idx); break;
    case LUA_TSTRING: node = cJSON_CreateString(lua_tostring(L, idx)); break;
    case LUA_TTABLE:
        if (depth > MAX_DEPTH) luaL_error(L, "json: tables nested deeper than %d levels (a cycle?) at '%s'", MAX_DEPTH, where(key));
        node = is_array(L, idx) ? cJSON_CreateArray() : cJSON_CreateObject();
        break;
    default: luaL_error(L, "json: cannot encode a %s (at '%s')", luaL_typename(L, idx), where(key));
    }
    if (!node) luaL_error(L, "json: out of memory");
    if (!parent) box->root = node;
    else if (cJSON_IsArray(parent)) cJSON_AddItemToArray(parent, node);
    else cJSON_AddItemToObject(parent, key, node);
    if (cJSON_IsArray(node)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            convert(L, -1, box, node, key, depth + 1);
            lua_pop(L, 1);
        }
    } else if (cJSON_IsObject(node)) {
        size_t count = 0, cap = 16;
        const char **keys = egrc_lua_scratch(L, cap * sizeof *keys);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "json: table '%s' mixes non-string keys (%s) with others", where(key), luaL_typename(L, -1));
            if (count == cap) { /* grow: a new scratch replaces the old one under the key */
                const char **bigger = egrc_lua_scratch(L, 2 * cap * sizeof *keys);
                memcpy(bigger, keys, count * sizeof *keys);
                lua_replace(L, -3);
                keys = bigger;
                cap *= 2;
            }
            keys[count++] = lua_tostring(L, -1); /* kept alive by the table */
        }
        qsort(keys, count, sizeof *keys, compare_keys);
        for (size_t i = 0; i < count; i++) {
            lua_getfield(L, idx, keys[i]);
            convert(L, -1, box, node, keys[i], depth + 1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1); /* the keys */
    }
}

const char *egrc_json_encode(lua_State *L, int idx, int pretty, size_t *len) {
    idx = lua_absindex(L, idx);
    json_box *b = new_box(L);
    convert(L, idx, b, NULL, NULL, 0);
    char *text = pretty ? cJSON_Print(b->root) : cJSON_PrintUnformatted(b->root);
    if (!text) luaL_error(L, "json: out of memory");
    lua_pushstring(L, text);
    cJSON_free(text);
    lua_remove(L, -2);
    return lua_tolstring(L, -1, len);
}

void egrc_json_write(lua_State *L, const char *path, int idx) {
    egrc_lua_check_writable(L, path);
    size_t len;
    egrc_json_encode(L, idx, 1, &len);
    lua_pushliteral(L, "\n");
    lua_concat(L, 2);
    const char *text = lua_tolstring(L, -1, &len);
    egrc_error err;
    if (egrc_write_file_atomic(path, text, len, &err)) egrc_lua_raise(L, &err);
    lua_pop(L, 1);
}

static int json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    egrc_json_encode(L, 1, lua_toboolean(L, 2), NULL);
    return 1;
}

static int json_decode(lua_State *L) {
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    if (egrc_json_push(L, text, len)) return luaL_error(L, "json.decode: not valid JSON");
    return 1;
}

/* Reads a whole file into memory owned by a userdata pushed on the stack. */
static const char *read_file(lua_State *L, const char *path, size_t *len) {
    egrc_lua_check_readable(L, path);
    void **owner = egrc_lua_owner(L);
    egrc_error err;
    *owner = egrc_read_file(path, (size_t)1 << 30, len, &err);
    if (!*owner) egrc_lua_raise(L, &err);
    return *owner;
}

static int json_read(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *text = read_file(L, path, &len);
    if (egrc_json_push(L, text, len)) return luaL_error(L, "%s: not valid JSON", path);
    return 1;
}

static int json_write(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checkany(L, 2);
    egrc_json_write(L, path, 2);
    return 0;
}

/* egrc.jsonl(path) -> one value per non-blank line; a bad line names file:line. */
static int data_jsonl(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *text = read_file(L, path, &len), *end = text + len;
    lua_newtable(L);
    lua_Integer count = 0;
    int line = 0;
    for (const char *p = text; p < end; line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        const char *q = p;
        while (q < eol && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q < eol) {
            if (egrc_json_push(L, p, (size_t)(eol - p))) return luaL_error(L, "%s:%d: not valid JSON", path, line + 1);
            lua_rawseti(L, -2, ++count);
        }
        p = eol + 1;
    }
    return 1;
}

void egrc_open_json(lua_State *L) {
    luaL_newlib(L, ((const luaL_Reg[]){{"encode", json_encode}, {"decode", json_decode}, {"read", json_read},
                                       {"write", json_write}, {NULL, NULL}}));
    lua_setfield(L, -2, "json");
    lua_pushcfunction(L, data_jsonl);
    lua_setfield(L, -2, "jsonl");
}
