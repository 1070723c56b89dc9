/* Recipe settings: the nested table of defaults a recipe declares, checked
 * once, overridden by `--set a.b.c=value` (typed from the default), merged
 * with a resumed run's settings.json. Messages name the dotted key. */
#include <stdio.h>
#include <string.h>

#include "egrc_lua.h"
#include "lua_internal.h"

/* A table is a list when its keys are exactly 1..n (an empty table counts:
 * `stop = {}` is an empty list, not an empty group of settings). */
static int is_list(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
    }
    return count == n;
}

int egrc_settings_check(lua_State *L, int idx, const char *prefix, egrc_error *err) {
    idx = lua_absindex(L, idx);
    if (!lua_checkstack(L, 6)) return egrc_fail(err, "settings nested too deep at '%s'", prefix);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            return egrc_fail(err, "settings%s%s: keys must be names, got a %s key", *prefix ? "." : "", prefix,
                             luaL_typename(L, -2));
        }
        const char *key = lua_tostring(L, -2);
        char path[512];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key);
        if (strchr(key, '.') || strchr(key, '=') || !*key) {
            lua_pop(L, 2);
            return egrc_fail(err, "settings: key '%s' may not be empty or contain '.' or '='", path);
        }
        int type = lua_type(L, -1);
        if (type == LUA_TTABLE && !is_list(L, -1) && egrc_settings_check(L, -1, path, err)) {
            lua_pop(L, 2);
            return -1;
        }
        if (type != LUA_TTABLE && type != LUA_TNUMBER && type != LUA_TSTRING && type != LUA_TBOOLEAN) {
            lua_pop(L, 2);
            return egrc_fail(err, "settings.%s: a %s is not a setting (settings are numbers, booleans, strings, lists "
                                  "and tables of them)", path, lua_typename(L, type));
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* Appends the dotted names of all leaf settings under the table at idx to
 * the list at list_idx. */
static void collect_keys(lua_State *L, int idx, int list_idx, const char *prefix) {
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 6, "settings nested too deep");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *path = lua_pushfstring(L, "%s%s%s", prefix, *prefix ? "." : "", lua_tostring(L, -2));
            if (lua_istable(L, -2) && !is_list(L, -2)) {
                collect_keys(L, -2, list_idx, path);
                lua_pop(L, 1);
            } else {
                lua_rawseti(L, list_idx, (lua_Integer)lua_rawlen(L, list_idx) + 1);
            }
        }
        lua_pop(L, 1);
    }
}

static int unknown_key(lua_State *L, int root, const char *assignment, const char *key, egrc_error *err) {
    lua_newtable(L);
    int list = lua_gettop(L);
    collect_keys(L, root, list, "");
    size_t n = lua_rawlen(L, list);
    const char **names = egrc_lua_scratch(L, n * sizeof *names);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, list, (lua_Integer)i + 1);
        names[i] = lua_tostring(L, -1); /* kept alive by the list */
        lua_pop(L, 1);
    }
    const char *near = egrc_closest(key, names, n);
    if (near) egrc_fail(err, "--set %s: unknown setting '%s' (did you mean '%s'?)", assignment, key, near);
    else egrc_fail(err, "--set %s: unknown setting '%s' (the recipe's settings are in its settings table)", assignment, key);
    lua_settop(L, list - 1);
    return -1;
}

/* Pushes text parsed as the type of the value at `like`; returns 0, or -1
 * with `expected` naming the type. */
static int parse_like(lua_State *L, int like, const char *text, const char **expected) {
    switch (lua_type(L, like)) {
    case LUA_TBOOLEAN:
        *expected = "true or false";
        if (strcmp(text, "true") && strcmp(text, "false")) return -1;
        lua_pushboolean(L, strcmp(text, "true") == 0);
        return 0;
    case LUA_TNUMBER: {
        int integer = lua_isinteger(L, like);
        *expected = integer ? "an integer" : "a number";
        size_t len = strlen(text);
        if (!len || lua_stringtonumber(L, text) != len + 1) return -1;
        if (integer && !lua_isinteger(L, -1)) {
            lua_pop(L, 1);
            return -1;
        }
        if (!integer) { /* "3" for a float setting stays a float */
            lua_pushnumber(L, lua_tonumber(L, -1));
            lua_remove(L, -2);
        }
        return 0;
    }
    default:
        *expected = "a string";
        lua_pushstring(L, text);
        return 0;
    }
}

/* A list setting takes comma-separated values typed like its first element
 * (strings when the default list is empty). */
static int parse_list(lua_State *L, int like, const char *text, const char **expected) {
    lua_rawgeti(L, like, 1);
    int elem = lua_gettop(L);
    if (lua_isnil(L, elem)) {
        lua_pushliteral(L, "");
        lua_replace(L, elem);
    }
    lua_newtable(L);
    lua_Integer i = 0;
    for (const char *p = text; *text;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        lua_pushlstring(L, p, n);
        if (parse_like(L, elem, lua_tostring(L, -1), expected)) {
            lua_settop(L, elem - 1);
            return -1;
        }
        lua_rawseti(L, -3, ++i);
        lua_pop(L, 1);
        if (!comma) break;
        p = comma + 1;
    }
    lua_remove(L, elem);
    return 0;
}

int egrc_settings_set(lua_State *L, int idx, const char *assignment, egrc_error *err) {
    idx = lua_absindex(L, idx);
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment) return egrc_fail(err, "--set %s: expected KEY=VALUE, e.g. --set train.lr=1e-4", assignment);
    int top = lua_gettop(L);
    const char *key = lua_pushlstring(L, assignment, (size_t)(eq - assignment)), *value = eq + 1;
    lua_pushvalue(L, idx);
    for (const char *seg = key;;) {
        const char *dot = strchr(seg, '.');
        lua_pushlstring(L, seg, dot ? (size_t)(dot - seg) : strlen(seg));
        lua_pushvalue(L, -1);
        lua_rawget(L, -3); /* parent, name, value */
        if (lua_isnil(L, -1)) {
            unknown_key(L, idx, assignment, key, err);
            lua_settop(L, top);
            return -1;
        }
        if (dot && (!lua_istable(L, -1) || is_list(L, -1))) {
            egrc_fail(err, "--set %s: '%.*s' is a %s, not a table of settings", assignment, (int)(dot - key), key,
                      luaL_typename(L, -1));
            lua_settop(L, top);
            return -1;
        }
        if (!dot) break;
        lua_replace(L, -3);
        lua_pop(L, 1);
        seg = dot + 1;
    }
    /* stack: parent, name, old value */
    const char *expected = NULL;
    int rc;
    if (lua_istable(L, -1) && !is_list(L, -1)) {
        egrc_fail(err, "--set %s: '%s' is a table of settings; set one of its keys (%s.NAME=VALUE)", assignment, key, key);
        rc = -1;
    } else if ((lua_istable(L, -1) ? parse_list(L, lua_gettop(L), value, &expected)
                                   : parse_like(L, lua_gettop(L), value, &expected))) {
        egrc_fail(err, "--set %s: expected %s%s, got '%s'", assignment, lua_istable(L, -1) ? "a comma-separated list of " : "",
                  expected, value);
        rc = -1;
    } else {
        lua_remove(L, -2);
        lua_rawset(L, -3);
        rc = 0;
    }
    lua_settop(L, top);
    return rc;
}

void egrc_settings_merge(lua_State *L, int dst, int src) {
    dst = lua_absindex(L, dst);
    src = lua_absindex(L, src);
    luaL_checkstack(L, 6, "settings nested too deep");
    lua_pushnil(L);
    while (lua_next(L, src)) {
        lua_pushvalue(L, -2);
        lua_rawget(L, dst); /* key, new, old */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 2); /* a setting the recipe no longer has */
            continue;
        }
        if (lua_istable(L, -1) && !is_list(L, -1) && lua_istable(L, -2)) {
            egrc_settings_merge(L, -1, -2);
            lua_pop(L, 2);
            continue;
        }
        /* JSON wrote 1.0 as 1: a float default keeps its type */
        if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1) && lua_isinteger(L, -2)) {
            lua_pushnumber(L, lua_tonumber(L, -2));
            lua_replace(L, -3);
        }
        lua_pop(L, 1);
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, dst);
    }
}

int egrc_settings_overlay_check(lua_State *L, int dst, int src, const char *prefix, egrc_error *err) {
    dst = lua_absindex(L, dst);
    src = lua_absindex(L, src);
    if (!lua_checkstack(L, 6)) return egrc_fail(err, "settings nested too deep at '%s'", prefix);
    lua_pushnil(L);
    while (lua_next(L, src)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            return egrc_fail(err, "%s: keys must be names, got a %s key", prefix, luaL_typename(L, -2));
        }
        char path[512];
        snprintf(path, sizeof path, "%s.%s", prefix, lua_tostring(L, -2));
        lua_pushvalue(L, -2);
        const int want = lua_rawget(L, dst), got = lua_type(L, -2); /* key, value, default */
        int rc = 0;
        if (want == LUA_TNIL)
            rc = egrc_fail(err, "%s: the recipe's settings have no such setting", path);
        else if (want != got)
            rc = egrc_fail(err, "%s: a %s, where the setting is a %s", path, lua_typename(L, got),
                           lua_typename(L, want));
        else if (want == LUA_TTABLE && !is_list(L, -1))
            rc = egrc_settings_overlay_check(L, -1, -2, path, err);
        lua_pop(L, 2);
        if (rc) {
            lua_pop(L, 1);
            return -1;
        }
    }
    return 0;
}
