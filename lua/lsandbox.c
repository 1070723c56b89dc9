/* --sandbox: a recipe from someone else runs without os, io, debug, egrc.ffi,
 * package.loadlib, dofile/loadfile, binary chunks, or any module from disk
 * (Lua or C); egrc's own functions keep working, and those that write files
 * write only inside the run folder (egrc_lua_check_writable), those that read
 * files read only the run folder, the recipe's folder and the paths given on
 * the command line (egrc_lua_check_readable). Touching a removed name raises
 * "<name> is disabled by --sandbox" instead of the puzzling "attempt to index
 * a nil value".
 *
 * What egrc's own Lua code relies on is out of the recipe's reach: the
 * recipe's globals are its own table (egrc's library keeps the real ones, so
 * replacing print or tostring cannot change egrc's summary), and the shared
 * tables it could reach are read-only views: the standard libraries, package,
 * the string metatable (whose __index is the string library: every string
 * method egrc calls), egrc's userdata metatables and the metatables egrc's
 * Lua library sets.
 *
 * The limits (egrc_lua_set_limits) live here too: a CPU budget for Lua code
 * and a cap on the Lua heap, the defaults of --sandbox (lrun.c). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "egrc_lua.h"
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
 * chunk can corrupt the Lua VM. Upvalue 2, when not nil, is the environment
 * a chunk gets when the caller names none (the recipe's own, for recipes). */
static int text_load(lua_State *L) {
    int n = lua_gettop(L);
    if (n < 3) lua_settop(L, 3);
    if (!lua_isnoneornil(L, 3) && strcmp(luaL_checkstring(L, 3), "t") != 0)
        return luaL_error(L, "load: binary chunks are disabled by --sandbox");
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    if (n < 4 && !lua_isnil(L, lua_upvalueindex(2))) {
        lua_settop(L, 3);
        lua_pushvalue(L, lua_upvalueindex(2));
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* ---- read-only views ----
 *
 * A view is a userdata standing for a table: reading goes through to the
 * table (tables found there come back as views of them), writing raises an
 * error naming the table. A userdata rather than a table, so that rawset
 * cannot write into it either; one view per table (a weak cache), so that
 * identities hold (getmetatable("").__index == string). */

#define VIEW_MT "egrc.sandbox.view"
static const char view_cache_key[] = "egrc.sandbox.views";

static void push_view(lua_State *L, int idx, const char *name);

/* Pushes t[key] (t at idx, key on top, popped) as a view when it is a table. */
static void push_viewed_field(lua_State *L, int idx, const char *name) {
    const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
    char field[256];
    snprintf(field, sizeof field, "%s.%s", name, key);
    lua_gettable(L, idx);
    if (lua_istable(L, -1)) {
        push_view(L, -1, field);
        lua_remove(L, -2);
    }
}

static int view_index(lua_State *L) {
    lua_getiuservalue(L, 1, 1);
    lua_getiuservalue(L, 1, 2);
    lua_pushvalue(L, 2);
    push_viewed_field(L, 3, lua_tostring(L, 4));
    return 1;
}

static int view_newindex(lua_State *L) {
    lua_getiuservalue(L, 1, 2);
    const char *name = lua_tostring(L, -1);
    return luaL_error(L, "%s is read-only under --sandbox (assigning '%s')", name, luaL_tolstring(L, 2, NULL));
}

static int view_len(lua_State *L) {
    lua_getiuservalue(L, 1, 1);
    lua_pushinteger(L, luaL_len(L, -1));
    return 1;
}

/* pairs(view): the table's pairs, tables again as views. */
static int view_next(lua_State *L) {
    lua_settop(L, 2);
    lua_getiuservalue(L, 1, 1);
    lua_getiuservalue(L, 1, 2);
    lua_pushvalue(L, 2);
    if (!lua_next(L, 3)) return 0;
    if (lua_istable(L, -1)) {
        lua_pushvalue(L, -2);
        push_viewed_field(L, 3, lua_tostring(L, 4));
        lua_remove(L, -2);
    }
    return 2;
}

static int view_pairs(lua_State *L) {
    lua_pushcfunction(L, view_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int view_tostring(lua_State *L) {
    lua_getiuservalue(L, 1, 2);
    lua_pushfstring(L, "read-only %s", lua_tostring(L, -1));
    return 1;
}

static void push_view(lua_State *L, int idx, const char *name) {
    idx = lua_absindex(L, idx);
    if (!luaL_getsubtable(L, LUA_REGISTRYINDEX, view_cache_key)) {
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "k"); /* a view lives as long as its table */
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
    }
    lua_pushvalue(L, idx);
    if (lua_rawget(L, -2) != LUA_TNIL) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);
    lua_newuserdatauv(L, 0, 2);
    lua_pushvalue(L, idx);
    lua_setiuservalue(L, -2, 1);
    lua_pushstring(L, name);
    lua_setiuservalue(L, -2, 2);
    if (luaL_newmetatable(L, VIEW_MT)) {
        luaL_setfuncs(L, ((const luaL_Reg[]){{"__index", view_index}, {"__newindex", view_newindex},
                                             {"__len", view_len}, {"__pairs", view_pairs},
                                             {"__tostring", view_tostring}, {NULL, NULL}}),
                      0);
        lua_pushliteral(L, "read-only");
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    lua_pushvalue(L, idx);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    lua_remove(L, -2);
}

/* Whether the registry entry below the top (key) and on top (value) is the
 * metatable of one of egrc's userdata: "egrc.*", made by luaL_newmetatable. */
static int is_egrc_metatable(lua_State *L) {
    if (lua_type(L, -2) != LUA_TSTRING || strncmp(lua_tostring(L, -2), "egrc.", 5) != 0 || !lua_istable(L, -1))
        return 0;
    int named = lua_getfield(L, -1, "__name") == LUA_TSTRING;
    lua_pop(L, 1);
    return named;
}

/* Pushes a list of the registry's egrc metatables (walked first, changed after:
 * a traversal must not meet new keys). */
static void push_egrc_metatables(lua_State *L) {
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, LUA_REGISTRYINDEX)) {
        if (is_egrc_metatable(L) && strcmp(lua_tostring(L, -2), VIEW_MT) != 0)
            lua_rawseti(L, -3, (lua_Integer)lua_rawlen(L, -3) + 1);
        else
            lua_pop(L, 1);
    }
}

/* Makes the metatable at idx read-only to getmetatable: it hands out a view. */
static void protect_metatable(lua_State *L, int idx, const char *name) {
    idx = lua_absindex(L, idx);
    if (lua_getfield(L, idx, "__metatable") == LUA_TNIL) {
        push_view(L, idx, name);
        lua_setfield(L, idx, "__metatable");
    }
    lua_pop(L, 1);
}

/* setmetatable for egrc's own Lua library: the metatables it sets (the run
 * object's, the egrc module's) are protected as they are set. Recipes have
 * the plain one (their classes are theirs to change). */
static int protecting_setmetatable(lua_State *L) {
    if (lua_istable(L, 2)) protect_metatable(L, 2, "a metatable of egrc's library");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* The standard libraries and package become views, for egrc's code and the
 * recipe alike (neither has a reason to write into them). */
static void freeze_libraries(lua_State *L) {
    static const char *const libraries[] = {"string", "table", "math", "utf8", "coroutine", "package", "_G", NULL};
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    for (int i = 0; libraries[i]; i++) {
        if (lua_getfield(L, -1, libraries[i]) != LUA_TTABLE) {
            lua_pop(L, 1);
            continue;
        }
        push_view(L, -1, libraries[i]);
        lua_setfield(L, -3, libraries[i]);
        if (strcmp(libraries[i], "_G") != 0) {
            push_view(L, -1, libraries[i]);
            lua_setglobal(L, libraries[i]);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    /* every string's metatable: its __index is the string library */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    protect_metatable(L, -1, "the string metatable");
    lua_pop(L, 2);
    /* the metatables of egrc's userdata (models, tokenizers, trainers, ...) */
    push_egrc_metatables(L);
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
        lua_getfield(L, -1, "__name");
        protect_metatable(L, -2, lua_tostring(L, -1));
        lua_pop(L, 2);
    }
    lua_pop(L, 2);
}

static const char recipe_env_key[] = "egrc.recipe_env";

/* The recipe's environment: its own table, reading through to the globals. */
static void make_recipe_env(lua_State *L) {
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
    lua_getglobal(L, "setmetatable");
    lua_setfield(L, -2, "setmetatable");
    lua_getglobal(L, "load"); /* the load of the C library, before text_load wraps it */
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, text_load, 2);
    lua_setfield(L, -2, "load");
    lua_createtable(L, 0, 1);
    lua_pushglobaltable(L);
    lua_setfield(L, -2, "__index");
    protect_metatable(L, -1, "the recipe's environment's metatable");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, recipe_env_key);
}

void egrc_push_recipe_env(lua_State *L) { lua_getfield(L, LUA_REGISTRYINDEX, recipe_env_key); }

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
    make_recipe_env(L);
    lua_getglobal(L, "load");
    lua_pushnil(L);
    lua_pushcclosure(L, text_load, 2);
    lua_setglobal(L, "load");
    lua_getglobal(L, "setmetatable");
    lua_pushcclosure(L, protecting_setmetatable, 1);
    lua_setglobal(L, "setmetatable");
    lua_pushglobaltable(L);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, global_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
    freeze_libraries(L);
}

/* ---- the limits ----
 *
 * They are sandbox limits: on by default under --sandbox (a recipe from
 * someone else must not hang the machine or eat its memory), off by default
 * otherwise (your own recipe may legitimately compute for days), and set by
 * --lua-cpu-limit / --lua-memory-limit for any run. */

/* The Lua heap: every allocation of the state goes through here, so the cap
 * covers strings, tables and closures, and not egrc's models (malloc'd in C). */
typedef struct lua_heap {
    lua_Alloc base;
    void *base_ud;
    size_t used, peak;
    size_t cap;   /* bytes, as set; 0: none */
    size_t limit; /* the cap while it applies (not in egrc's own code after the recipe) */
    int refused;  /* the last allocation that asked for more was refused */
} lua_heap;

static void *heap_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    lua_heap *h = ud;
    size_t old = ptr ? osize : 0; /* without ptr, osize is the kind of object */
    if (nsize > old && h->limit && h->used - old + nsize > h->limit) {
        h->refused = 1;
        return NULL; /* Lua collects garbage and tries once more before it raises */
    }
    void *p = h->base(h->base_ud, ptr, osize, nsize);
    if (p && nsize > old) h->refused = 0; /* recovered: the cap held */
    if (p || nsize == 0) {
        h->used = h->used - old + nsize;
        if (h->used > h->peak) h->peak = h->used;
    }
    return p;
}

int egrc_lua_install_heap(lua_State *L) {
    lua_heap *h = calloc(1, sizeof *h);
    if (!h) return -1;
    h->base = lua_getallocf(L, &h->base_ud);
    h->used = h->peak = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
    lua_setallocf(L, heap_alloc, h);
    return 0;
}

static lua_heap *heap_of(lua_State *L) {
    void *ud;
    return lua_getallocf(L, &ud) == heap_alloc ? ud : NULL;
}

void egrc_lua_close(lua_State *L) {
    lua_heap *h = heap_of(L);
    lua_close(L);
    free(h);
}

/* The CPU budget. A count hook looks at the thread's CPU clock every
 * count_step instructions. The time inside egrc's C functions (a forward
 * pass, a generation: the work the recipe asked egrc for) is left out: the
 * call hook notes when one starts and asks for a count hook at the very next
 * instruction, which is where it has returned (or called back into Lua). The
 * time inside Lua's own C functions (string.rep, table.sort) counts: a
 * recipe could spend its budget there. */
enum { count_step = 10000, hook_mask = LUA_MASKCALL | LUA_MASKCOUNT };

static double thread_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int is_egrc_function(const egrc_lua_state *s, lua_CFunction f) {
    size_t lo = 0, hi = s->n_egrc_functions;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->egrc_functions[mid] == f) return 1;
        if ((uintptr_t)s->egrc_functions[mid] < (uintptr_t)f) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

static void push_cpu_limit_message(lua_State *L, const egrc_lua_state *s) {
    lua_pushfstring(L, "the recipe's Lua code ran past its CPU time limit of %d s (--lua-cpu-limit SECONDS; 0 = none)",
                    (int)s->cpu_limit);
}

static int raise_cpu_limit(lua_State *L, const egrc_lua_state *s) {
    luaL_where(L, 0); /* in a hook, level 0 is the Lua function that was running */
    push_cpu_limit_message(L, s);
    lua_concat(L, 2);
    return lua_error(L);
}

static double cpu_seconds_used(const egrc_lua_state *s) {
    return thread_cpu_seconds() - s->cpu_start - s->c_seconds;
}

static void limit_hook(lua_State *L, lua_Debug *ar) {
    egrc_lua_state *s = *(egrc_lua_state **)lua_getextraspace(L);
    if (ar->event != LUA_HOOKCOUNT) { /* a call, or a tail call */
        if (s->c_call_start >= 0 || !lua_getinfo(L, "f", ar)) return;
        lua_CFunction f = lua_tocfunction(L, -1);
        lua_pop(L, 1);
        if (f && is_egrc_function(s, f)) {
            s->c_call_start = thread_cpu_seconds();
            lua_sethook(L, limit_hook, hook_mask, 1);
        }
        return;
    }
    double now = thread_cpu_seconds();
    if (s->c_call_start >= 0) {
        s->c_seconds += now - s->c_call_start;
        s->c_call_start = -1;
        lua_sethook(L, limit_hook, hook_mask, count_step);
    }
    if (s->cpu_exceeded || now - s->cpu_start - s->c_seconds > s->cpu_limit) {
        s->cpu_exceeded = 1;
        raise_cpu_limit(L, s);
    }
}

/* Appends every C function in the table at idx (and the tables in it) to the
 * list at list_idx; seen (a table) keeps cycles out. */
static void collect_functions(lua_State *L, int idx, int list_idx, int seen) {
    idx = lua_absindex(L, idx);
    lua_pushvalue(L, idx);
    if (lua_rawget(L, seen) != LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, seen);
    luaL_checkstack(L, 8, "egrc.core nested too deep");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_iscfunction(L, -1)) {
            lua_pushvalue(L, -1);
            lua_rawseti(L, list_idx, (lua_Integer)lua_rawlen(L, list_idx) + 1);
        } else if (lua_istable(L, -1)) {
            collect_functions(L, -1, list_idx, seen);
        }
        lua_pop(L, 1);
    }
}

static int compare_functions(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (const lua_CFunction *)a, y = (uintptr_t) * (const lua_CFunction *)b;
    return x < y ? -1 : x > y;
}

/* egrc's C functions: those of egrc.core and of its userdata metatables. */
static void find_egrc_functions(lua_State *L, egrc_lua_state *s) {
    lua_newtable(L);
    int list = lua_gettop(L);
    lua_newtable(L);
    int seen = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "egrc.core");
    if (lua_istable(L, -1)) collect_functions(L, -1, list, seen);
    lua_pop(L, 2);
    push_egrc_metatables(L);
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
        collect_functions(L, -1, list, seen);
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    size_t n = lua_rawlen(L, list);
    lua_CFunction *fns = lua_newuserdatauv(L, (n ? n : 1) * sizeof *fns, 0);
    lua_setfield(L, LUA_REGISTRYINDEX, "egrc.sandbox.functions"); /* kept as long as the state */
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, list, (lua_Integer)i + 1);
        fns[i] = lua_tocfunction(L, -1);
        lua_pop(L, 1);
    }
    qsort(fns, n, sizeof *fns, compare_functions);
    s->egrc_functions = fns;
    s->n_egrc_functions = n;
    lua_pop(L, 2);
}

void egrc_lua_set_limits(lua_State *L, double cpu_seconds, size_t heap_mb) {
    egrc_lua_state *s = egrc_lua_state_get(L);
    lua_heap *h = heap_of(L);
    if (h) h->cap = h->limit = heap_mb << 20;
    s->cpu_limit = cpu_seconds;
    if (cpu_seconds <= 0) return;
    find_egrc_functions(L, s);
    *(egrc_lua_state **)lua_getextraspace(L) = s; /* coroutines made later copy it */
    s->cpu_start = thread_cpu_seconds();
    s->c_seconds = 0;
    s->c_call_start = -1;
    s->cpu_used = -1;
    lua_sethook(L, limit_hook, hook_mask, count_step);
}

int egrc_lua_limits_stop(lua_State *L, int main_ok) {
    egrc_lua_state *s = egrc_lua_state_get(L);
    lua_heap *h = heap_of(L);
    if (s->cpu_limit > 0 && s->cpu_used < 0) {
        lua_sethook(L, NULL, 0, 0);
        s->cpu_used = cpu_seconds_used(s);
    }
    int heap_full = h && h->limit && h->refused;
    if (h) h->limit = 0;
    if (s->cpu_exceeded) {
        push_cpu_limit_message(L, s);
        return 1;
    }
    if (!main_ok && heap_full) {
        lua_pushfstring(L, "the recipe's Lua heap reached its limit of %d MB (--lua-memory-limit MB; 0 = none)",
                        (int)(h->cap >> 20));
        return 1;
    }
    return 0;
}

/* egrc.lua_limits() -> {cpu_seconds=, cpu_limit=, heap_peak_mb=, heap_limit_mb=} */
int egrc_lua_push_limits(lua_State *L) {
    const egrc_lua_state *s = egrc_lua_state_get(L);
    const lua_heap *h = heap_of(L);
    double cpu = s->cpu_limit <= 0 ? 0 : s->cpu_used >= 0 ? s->cpu_used : cpu_seconds_used(s);
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, cpu);
    lua_setfield(L, -2, "cpu_seconds");
    lua_pushnumber(L, s->cpu_limit);
    lua_setfield(L, -2, "cpu_limit");
    lua_pushnumber(L, h ? (double)h->peak / (1 << 20) : 0);
    lua_setfield(L, -2, "heap_peak_mb");
    lua_pushinteger(L, h ? (lua_Integer)(h->cap >> 20) : 0);
    lua_setfield(L, -2, "heap_limit_mb");
    return 1;
}
