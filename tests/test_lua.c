/* The Lua layer from C: the embedded library wins over files in the working
 * directory, --set typing and its messages, the sandbox's refusals (reads,
 * read-only shared tables), its CPU and heap limits, and the timing of Lua
 * hooks (including a hook that ends in an error). The module's
 * functions themselves are tested from Lua (the tests/lua scripts). */
#include <lauxlib.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "egrc_lua.h"
#include "lua_internal.h"
#include "test.h"

/* Runs a chunk returning one value; returns its string form (static), or
 * "ERROR: <message>". */
static const char *eval(lua_State *L, const char *code) {
    static char out[1024];
    if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
        snprintf(out, sizeof out, "ERROR: %s", lua_tostring(L, -1));
    else
        snprintf(out, sizeof out, "%s", luaL_tolstring(L, -1, NULL));
    lua_settop(L, 0);
    return out;
}

#define CHECK_EVAL(L, code, want)                                                   \
    do {                                                                            \
        const char *got_ = eval(L, code);                                           \
        CHECK_MSG(strstr(got_, want) != NULL, "%s -> '%s', want '%s'", code, got_, want); \
    } while (0)

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_embedded_library(void) {
    char dir[] = "/tmp/egrc-test-lua-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], cwd[4096];
    snprintf(path, sizeof path, "%s/egrc", dir);
    CHECK(mkdir(path, 0777) == 0);
    snprintf(path, sizeof path, "%s/egrc.lua", dir);
    write_text(path, "return 'shadow'");
    snprintf(path, sizeof path, "%s/egrc/rewards.lua", dir);
    write_text(path, "return 'shadow'");
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(dir) == 0);
    egrc_error err;
    lua_State *L = egrc_lua_newstate(0, &err);
    CHECK_MSG(L != NULL, "%s", err.msg);
    CHECK_EVAL(L, "return type(require('egrc'))", "table");
    CHECK_EVAL(L, "return require('egrc').version", EGRC_VERSION);
    CHECK_EVAL(L, "return type(require('egrc.rewards').exp_length)", "function");
    CHECK_EVAL(L, "return require('egrc').rewards == require('egrc.rewards')", "true");
    CHECK_EVAL(L, "return require('egrc.nothing')", "ERROR: module 'egrc.nothing' is not part of egrc");
    CHECK_EVAL(L, "return require('egrc').nothing", "egrc.nothing does not exist");
    CHECK_EVAL(L, "return require('egrc').rng(1):uniform() < 1", "true");
    egrc_lua_close(L);
    CHECK(chdir(cwd) == 0);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    CHECK(system(path) == 0);
}

/* Applies one --set to a fresh settings table; returns the value at `key`
 * as "type:value" ("subtype:a|b" for lists), or "ERROR: message". */
static const char *set(const char *assignment, const char *key) {
    static char out[1100];
    egrc_error err;
    lua_State *L = egrc_lua_newstate(0, &err);
    CHECK(luaL_dostring(L, "return { lr = 0.001, steps = 10, flag = false, name = 'x', tags = { 'a', 'b' }, "
                           "ids = { 1, 2 }, empty = {}, train = { opt = { beta = 0.9 }, batch = 8 } }") == LUA_OK);
    if (egrc_settings_set(L, 1, assignment, &err)) {
        snprintf(out, sizeof out, "ERROR: %s", err.msg);
    } else {
        char code[256];
        snprintf(code, sizeof code, "local s = ... local v = s.%s if type(v) == 'table' then "
                                    "return tostring(math.type(v[1])) .. ':' .. table.concat(v, '|') end "
                                    "return (math.type(v) or type(v)) .. ':' .. tostring(v)", key);
        luaL_loadstring(L, code);
        lua_pushvalue(L, 1);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) fprintf(stderr, "%s\n", lua_tostring(L, -1));
        snprintf(out, sizeof out, "%s", lua_tostring(L, -1));
    }
    egrc_lua_close(L);
    return out;
}

#define CHECK_SET(assignment, key, want)                                                  \
    do {                                                                                  \
        const char *got_ = set(assignment, key);                                          \
        CHECK_MSG(strstr(got_, want) != NULL, "--set %s -> '%s', want '%s'", assignment, got_, want); \
    } while (0)

static void test_settings(void) {
    CHECK_SET("lr=3e-4", "lr", "float:0.0003");
    CHECK_SET("lr=1", "lr", "float:1.0"); /* a float setting stays a float */
    CHECK_SET("steps=25", "steps", "integer:25");
    CHECK_SET("flag=true", "flag", "boolean:true");
    CHECK_SET("name=hello world", "name", "string:hello world");
    CHECK_SET("name=", "name", "string:");
    CHECK_SET("train.opt.beta=0.5", "train.opt.beta", "float:0.5");
    CHECK_SET("train.batch=4", "train.batch", "integer:4");
    CHECK_SET("tags=x,y,z", "tags", "nil:x|y|z");
    CHECK_SET("ids=3,4", "ids", "integer:3|4");
    CHECK_SET("empty=p,q", "empty", "nil:p|q");
    CHECK_SET("lr=abc", "lr", "ERROR: --set lr=abc: expected a number, got 'abc'");
    CHECK_SET("steps=2.5", "steps", "ERROR: --set steps=2.5: expected an integer, got '2.5'");
    CHECK_SET("flag=yes", "flag", "ERROR: --set flag=yes: expected true or false, got 'yes'");
    CHECK_SET("ids=1,x", "ids", "ERROR: --set ids=1,x: expected a comma-separated list of an integer, got '1,x'");
    CHECK_SET("stpes=3", "steps", "ERROR: --set stpes=3: unknown setting 'stpes' (did you mean 'steps'?)");
    CHECK_SET("train.bach=3", "steps", "ERROR: --set train.bach=3: unknown setting 'train.bach' (did you mean 'train.batch'?)");
    CHECK_SET("train.opt.bta=3", "steps", "(did you mean 'train.opt.beta'?)");
    CHECK_SET("zzzzzzzz=1", "steps", "ERROR: --set zzzzzzzz=1: unknown setting 'zzzzzzzz' (the recipe's settings");
    CHECK_SET("train=3", "steps", "ERROR: --set train=3: 'train' is a table of settings; set one of its keys (train.NAME=VALUE)");
    CHECK_SET("lr.x=3", "steps", "ERROR: --set lr.x=3: 'lr' is a number, not a table of settings");
    CHECK_SET("noequals", "steps", "ERROR: --set noequals: expected KEY=VALUE");
    CHECK_SET("=3", "steps", "ERROR: --set =3: expected KEY=VALUE");
}

static void test_sandbox(void) {
    egrc_error err;
    lua_State *L = egrc_lua_newstate(1, &err);
    CHECK_MSG(L != NULL, "%s", err.msg);
    CHECK_EVAL(L, "return os.time()", "ERROR: [string \"return os.time()\"]:1: os is disabled by --sandbox");
    CHECK_EVAL(L, "return io.stdout", "io is disabled by --sandbox");
    CHECK_EVAL(L, "return debug.getregistry()", "debug is disabled by --sandbox");
    CHECK_EVAL(L, "return dofile('x.lua')", "dofile is disabled by --sandbox");
    CHECK_EVAL(L, "return loadfile('x.lua')", "loadfile is disabled by --sandbox");
    CHECK_EVAL(L, "return require('egrc').ffi", "egrc.ffi is disabled by --sandbox");
    CHECK_EVAL(L, "return package.loadlib('libc.so.6', 'puts')", "package.loadlib is disabled by --sandbox");
    CHECK_EVAL(L, "return require('io')", "io is disabled by --sandbox");
    CHECK_EVAL(L, "return require('socket.core')", "require 'socket.core': modules from disk (Lua or C) are disabled");
    CHECK_EVAL(L, "return load(string.dump(function() end), 'x', 'b')", "binary chunks are disabled by --sandbox");
    CHECK_EVAL(L, "return select(2, load(string.dump(function() end)))", "attempt to load a binary chunk");
    CHECK_EVAL(L, "return load('return 1 + 1')()", "2");
    CHECK_EVAL(L, "return require('egrc').sandboxed", "true");
    CHECK_EVAL(L, "return require('egrc.rewards').accuracy()({correct = true})", "1");
    CHECK_EVAL(L, "return require('egrc').fs.write('/tmp/egrc-sandbox-escape', 'x')",
               "is outside the run folder");
    CHECK_EVAL(L, "return string.rep('ab', 2)", "abab");
    /* what egrc's own code relies on is read-only: the string metatable and
     * the string library behind it, the other libraries, egrc's metatables */
    CHECK_EVAL(L, "getmetatable('').__index = {}", "the string metatable is read-only under --sandbox");
    CHECK_EVAL(L, "getmetatable('').__index.format = print", "string is read-only under --sandbox (assigning 'format')");
    CHECK_EVAL(L, "string.format = print", "string is read-only under --sandbox");
    CHECK_EVAL(L, "rawset(string, 'format', print)", "table expected");
    CHECK_EVAL(L, "table.concat = print", "table is read-only under --sandbox");
    CHECK_EVAL(L, "package.loaded['egrc.core'] = {}", "package.loaded is read-only under --sandbox");
    CHECK_EVAL(L, "getmetatable(require('egrc').rng(1)).__index.uniform = nil", "egrc.rng.__index is read-only");
    CHECK_EVAL(L, "return ('%d|%s'):format(7, string.rep('x', 2)) .. #string .. table.concat({1, 2}, ',')", "7|xx");
    CHECK_EVAL(L, "local n = 0 for _ in pairs(math) do n = n + 1 end return n > 20", "true");
    /* the recipe's globals (and those of the chunks it loads) are its own:
     * egrc's code, in the real globals, keeps print, tostring, string */
    CHECK_MSG(luaL_loadstring(L, "print, string = nil, nil load('tostring = nil')() return _G == _ENV") == LUA_OK,
              "%s", lua_tostring(L, -1));
    egrc_push_recipe_env(L);
    lua_setupvalue(L, -2, 1);
    CHECK(lua_pcall(L, 0, 1, 0) == LUA_OK && lua_toboolean(L, -1));
    lua_settop(L, 0);
    CHECK_EVAL(L, "return type(print) .. type(tostring) .. type(string)", "functionfunctionuserdata");
    CHECK_EVAL(L, "local t = setmetatable({}, {}) getmetatable(t).x = 1 return getmetatable(t).x", "1");
    /* reads: nothing outside the allowed folders (none here) */
    CHECK_EVAL(L, "return require('egrc').json.read('/etc/passwd')",
               "reading '/etc/passwd' is outside what --sandbox lets a recipe read");
    CHECK_EVAL(L, "return require('egrc').fs.exists('/etc/passwd')", "is outside what --sandbox lets a recipe read");
    egrc_lua_close(L);
    L = egrc_lua_newstate(0, &err);
    CHECK_EVAL(L, "return type(os.time()) .. type(require('egrc').ffi.load)", "numberfunction");
    CHECK_EVAL(L, "string.format = string.format return 'writable'", "writable");
    egrc_lua_close(L);
}

/* A path as the kernel reaches it, and the folders reads are allowed under. */
static void test_read_paths(void) {
    char dir[] = "/tmp/egrc-test-paths-XXXXXX", path[512], link[512], real[4096], want[4096];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/allowed", dir);
    CHECK(mkdir(path, 0777) == 0);
    snprintf(path, sizeof path, "%s/secret", dir);
    CHECK(mkdir(path, 0777) == 0);
    snprintf(path, sizeof path, "%s/secret/key.json", dir);
    write_text(path, "{\"key\": 1}");
    snprintf(link, sizeof link, "%s/allowed/link", dir);
    CHECK(symlink("../secret", link) == 0);
    CHECK(realpath(dir, want) != NULL);
    snprintf(path, sizeof path, "%s/allowed/link/key.json", dir);
    CHECK(egrc_lua_resolve_path(path, real) == 0);
    CHECK_MSG(strstr(real, "/secret/key.json") && strncmp(real, want, strlen(want)) == 0, "%s", real);
    snprintf(path, sizeof path, "%s/allowed/missing/deeper/x.json", dir);
    CHECK(egrc_lua_resolve_path(path, real) == 0);
    CHECK_MSG(strstr(real, "/allowed/missing/deeper/x.json") != NULL, "%s", real);
    snprintf(path, sizeof path, "%s/allowed/missing/../../secret/key.json", dir);
    CHECK_MSG(egrc_lua_resolve_path(path, real) != 0, "'%s' resolved to '%s'", path, real);
    snprintf(link, sizeof link, "%s/allowed/dangling", dir);
    CHECK(symlink("../secret/none.json", link) == 0); /* writing there would create a file in secret/ */
    CHECK_MSG(egrc_lua_resolve_path(link, real) != 0, "'%s' resolved to '%s'", link, real);

    egrc_error err;
    lua_State *L = egrc_lua_newstate(1, &err);
    snprintf(path, sizeof path, "%s/allowed", dir);
    CHECK(egrc_lua_allow_reads(L, path) == 0);
    char code[1024];
    snprintf(code, sizeof code, "return require('egrc').fs.exists('%s/allowed/none.json')", dir);
    CHECK_EVAL(L, code, "false");
    snprintf(code, sizeof code, "return require('egrc').json.read('%s/allowed/link/key.json').key", dir);
    CHECK_EVAL(L, code, "is outside what --sandbox lets a recipe read");
    CHECK_EVAL(L, code, "(it leads to '");
    snprintf(code, sizeof code, "return require('egrc').json.read('%s/allowed/../secret/key.json').key", dir);
    CHECK_EVAL(L, code, "is outside what --sandbox lets a recipe read");
    snprintf(code, sizeof code, "return require('egrc').tokenizer.load('%s/secret/key.json')", dir);
    CHECK_EVAL(L, code, "is outside what --sandbox lets a recipe read");
    snprintf(path, sizeof path, "%s/secret/key.json", dir);
    CHECK(egrc_lua_allow_reads(L, path) == 0); /* a file named on the command line */
    snprintf(code, sizeof code, "return require('egrc').json.read('%s/allowed/link/key.json').key", dir);
    CHECK_EVAL(L, code, "1");
    egrc_lua_close(L);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    CHECK(system(path) == 0);
}

/* The CPU and heap limits, on a state of their own. */
static void test_limits(void) {
    egrc_error err;
    lua_State *L = egrc_lua_newstate(0, &err);
    egrc_lua_set_limits(L, 1, 0);
    CHECK_EVAL(L, "local x = 0 while true do x = x + 1 end",
               "ran past its CPU time limit of 1 s (--lua-cpu-limit SECONDS; 0 = none)");
    /* the budget is spent: a recipe that catches the error gets it again */
    CHECK_EVAL(L, "for i = 1, 1e6 do end return 'went on'", "CPU time limit");
    CHECK(egrc_lua_limits_stop(L, 1) == 1);
    CHECK_MSG(strstr(lua_tostring(L, -1), "--lua-cpu-limit") != NULL, "%s", lua_tostring(L, -1));
    lua_settop(L, 0);
    CHECK_EVAL(L, "for i = 1, 1e6 do end return 'after the run'", "after the run");
    egrc_lua_close(L);

    L = egrc_lua_newstate(0, &err);
    egrc_lua_set_limits(L, 0, 16);
    CHECK_EVAL(L, "local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(100) .. i end", "not enough memory");
    CHECK_EVAL(L, "return #('x'):rep(1000)", "1000"); /* under the cap again once collected */
    CHECK(egrc_lua_limits_stop(L, 1) == 0);            /* recovered: no failure */
    egrc_lua_close(L);

    L = egrc_lua_newstate(0, &err);
    egrc_lua_set_limits(L, 0, 16);
    CHECK_EVAL(L, "local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(100) .. i end", "not enough memory");
    CHECK(egrc_lua_limits_stop(L, 0) == 1);
    CHECK_MSG(strstr(lua_tostring(L, -1), "Lua heap reached its limit of 16 MB") != NULL, "%s", lua_tostring(L, -1));
    egrc_lua_close(L);
}

static void test_hooks(void) {
    egrc_error err;
    lua_State *L = egrc_lua_newstate(0, &err);
    CHECK_EVAL(L, "local egrc = require('egrc') local s0, c0 = egrc.hook_stats() "
                  "egrc.hook(function() local x = 0 for i = 1, 200000 do x = x + i end end) "
                  "local s1, c1 = egrc.hook_stats() return (s1 > s0 and c1 == c0 + 1) and 'timed' or 'not timed'",
               "timed");
    /* a hook ending in an error must not stop later hooks from counting */
    CHECK_EVAL(L, "local egrc = require('egrc') local _, c0 = egrc.hook_stats() "
                  "pcall(egrc.hook, function() egrc.hook(function() error('x') end) end) "
                  "egrc.hook(function() end) egrc.hook(function() end) "
                  "local _, c1 = egrc.hook_stats() return c1 - c0",
               "2");
    egrc_lua_close(L);
}

/* egrc.json: every number a run writes (checkpoint state, settings, metrics)
 * decodes to the same value: doubles bit for bit (-0 keeps its sign); integers
 * are written with all their digits. */
static void test_json_numbers(void) {
    egrc_error err;
    lua_State *L = egrc_lua_newstate(0, &err);
    CHECK_MSG(L != NULL, "%s", err.msg);
    CHECK_EVAL(L, "local json = require('egrc').json local rng = require('egrc').rng(7) local bad = 0 "
                  "for i = 1, 2000 do local v = (rng:uniform() - 0.5) * 10.0 ^ (i % 40 - 20) "
                  "if json.decode(json.encode({v}))[1] ~= v then bad = bad + 1 end end return 'bad ' .. bad",
               "bad 0");
    CHECK_EVAL(L, "local json = require('egrc').json return json.encode({0.1 + 0.2, 2^-1074, math.maxinteger})",
               "[0.30000000000000004,4.94065645841247e-324,9223372036854775807]");
    CHECK_EVAL(L, "local json = require('egrc').json local x = json.decode(json.encode({-0.0}))[1] "
                  "return math.type(x) .. ' ' .. tostring(1 / x)",
               "float -inf");
    egrc_lua_close(L);
}

int main(void) {
    test_embedded_library();
    test_json_numbers();
    test_settings();
    test_sandbox();
    test_read_paths();
    test_limits();
    test_hooks();
    return test_finish("test_lua");
}
