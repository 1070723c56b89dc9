/* `egrc run RECIPE.lua`: load the recipe, resolve its settings (defaults,
 * the recipe's gpu_settings on a GPU backend, a resumed run's settings.json,
 * --set, --backend/--device/--seed), prepare
 * the run folder (with sandbox.json for a sandboxed or limited run), then
 * call recipe.main(run) under a traceback handler.
 *
 * Exit codes: 2 for anything wrong with the command or the recipe before it
 * starts running (flags, syntax, settings, --set), 1 for failures once
 * main runs. Every message names the file and line, or the setting. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "egrc_lua.h"
#include "io/fileio.h"
#include "lua_internal.h"

#define MAX_TEXT_FILE ((size_t)1 << 26)

/* The message handler at the boundary: message plus Lua traceback. */
static int traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) msg = lua_tostring(L, -1);
        else msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Calls the function below nargs arguments with the traceback handler;
 * leaves one result (or the error text) on top. */
static int call(lua_State *L, int nargs) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, 1, base);
    lua_remove(L, base);
    return rc;
}

static int fail(int code, const char *fmt, ...) EGRC_PRINTF(2, 3);

static int fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("egrc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

/* "runs/<name>-<YYYYmmdd-HHMMSS>", with -2, -3... when taken. */
static void default_out(char *out, size_t size, const char *name) {
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    struct stat sb;
    snprintf(out, size, "runs/%s-%s", name, stamp);
    for (int i = 2; stat(out, &sb) == 0 && i < 1000; i++) snprintf(out, size, "runs/%s-%s-%d", name, stamp, i);
}

static int mkdirs(const char *path, egrc_error *err) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return egrc_fail(err, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST) return egrc_fail(err, "%s: cannot create folder: %s", buf, strerror(errno));
        *p = c;
        if (!c) return 0;
    }
}

/* Pushes the JSON file at path as a Lua value; nil when it does not exist. */
static int push_json_file(lua_State *L, const char *path, egrc_error *err) {
    struct stat sb;
    if (stat(path, &sb)) {
        lua_pushnil(L);
        return 0;
    }
    size_t len;
    char *text = egrc_read_file(path, MAX_TEXT_FILE, &len, err);
    if (!text) return -1;
    int rc = egrc_json_push(L, text, len);
    free(text);
    return rc ? egrc_fail(err, "%s: not valid JSON", path) : 0;
}

/* Settings every run has, whatever the recipe declares. */
static int add_standard_settings(lua_State *L, int settings, egrc_error *err) {
    static const struct {
        const char *key;
        int type;
    } standard[] = {{"backend", LUA_TSTRING}, {"device", LUA_TNUMBER}, {"seed", LUA_TNUMBER}};
    for (size_t i = 0; i < 3; i++) {
        int type = lua_getfield(L, settings, standard[i].key);
        lua_pop(L, 1);
        if (type == LUA_TNIL) {
            if (standard[i].type == LUA_TSTRING) lua_pushliteral(L, "cpu");
            else lua_pushinteger(L, 0);
            lua_setfield(L, settings, standard[i].key);
        } else if (type != standard[i].type) {
            return egrc_fail(err, "settings.%s must be a %s", standard[i].key, lua_typename(L, standard[i].type));
        }
    }
    return 0;
}

typedef struct run_paths {
    const char *recipe;
    char name[256];
    char out[4096];
    char recipe_resume[4096];
} run_paths;

/* Loads the recipe and resolves its settings. Leaves recipe table and
 * settings on the stack; returns an exit code (0 = go on). */
static int prepare(lua_State *L, const egrc_run_options *o, run_paths *p) {
    egrc_error err;
    int rc = luaL_loadfilex(L, p->recipe, "t");
    if (rc != LUA_OK) return fail(EGRC_EXIT_USAGE, "%s", lua_tostring(L, -1)); /* cannot open, or FILE:LINE: syntax */
    if (o->sandbox) { /* the recipe's globals are its own, not those egrc's library runs on */
        egrc_push_recipe_env(L);
        lua_setupvalue(L, -2, 1);
    }
    if (call(L, 0) != LUA_OK) {
        if (egrc_lua_limits_stop(L, 0)) { /* the error itself, where it names the limit (and where it hit) */
            const char *error = lua_tostring(L, -2), *limit = lua_tostring(L, -1);
            return fail(EGRC_EXIT_FAILURE, "%s", error && strstr(error, limit) ? error : limit);
        }
        return fail(EGRC_EXIT_USAGE, "recipe error: %s", lua_tostring(L, -1));
    }
    if (!lua_istable(L, -1))
        return fail(EGRC_EXIT_USAGE, "%s must return a table { settings = {...}, main = function(run) ... end }",
                    p->recipe);
    int recipe = lua_gettop(L);
    if (lua_getfield(L, recipe, "main") != LUA_TFUNCTION)
        return fail(EGRC_EXIT_USAGE, "%s: the returned table has no main function (main = function(run) ... end)",
                    p->recipe);
    lua_pop(L, 1);
    if (lua_getfield(L, recipe, "name") == LUA_TSTRING) snprintf(p->name, sizeof p->name, "%.200s", lua_tostring(L, -1));
    lua_pop(L, 1);
    int type = lua_getfield(L, recipe, "settings");
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, recipe, "settings");
    } else if (type != LUA_TTABLE) {
        return fail(EGRC_EXIT_USAGE, "%s: settings must be a table", p->recipe);
    }
    int settings = lua_gettop(L);
    if (egrc_settings_check(L, settings, "", &err) || add_standard_settings(L, settings, &err))
        return fail(EGRC_EXIT_USAGE, "%s", err.msg);
    /* gpu_settings: the values a GPU's speed affords (a larger model, larger
     * batches), over the defaults, which fit the CPU; --resume and --set
     * still win. Any backend but the CPU is a GPU here. */
    type = lua_getfield(L, recipe, "gpu_settings");
    if (type != LUA_TNIL && type != LUA_TTABLE) return fail(EGRC_EXIT_USAGE, "%s: gpu_settings must be a table", p->recipe);
    lua_getfield(L, settings, "backend");
    const char *backend = o->backend ? o->backend : lua_tostring(L, -1);
    const int on_gpu = backend && strcmp(backend, "cpu") != 0;
    lua_pop(L, 1);
    if (type == LUA_TTABLE) {
        if (egrc_settings_overlay_check(L, settings, -1, "gpu_settings", &err))
            return fail(EGRC_EXIT_USAGE, "%s: %s", p->recipe, err.msg);
        if (on_gpu) egrc_settings_merge(L, settings, -1);
    }
    lua_pop(L, 1);
    if (o->resume) {
        char path[4200];
        snprintf(path, sizeof path, "%s/settings.json", o->resume);
        if (push_json_file(L, path, &err)) return fail(EGRC_EXIT_USAGE, "--resume: %s", err.msg);
        if (!lua_istable(L, -1)) return fail(EGRC_EXIT_USAGE, "--resume %s: no settings.json there; is it a run folder?", o->resume);
        egrc_settings_merge(L, settings, -1);
        lua_pop(L, 1);
    }
    for (int i = 0; i < o->n_sets; i++)
        if (egrc_settings_set(L, settings, o->sets[i], &err)) return fail(EGRC_EXIT_USAGE, "%s", err.msg);
    if (o->backend) {
        lua_pushstring(L, o->backend);
        lua_setfield(L, settings, "backend");
    }
    if (o->device >= 0) {
        lua_pushinteger(L, o->device);
        lua_setfield(L, settings, "device");
    }
    if (o->has_seed) {
        lua_pushinteger(L, (lua_Integer)o->seed);
        lua_setfield(L, settings, "seed");
    }
    return 0;
}

/* The run folder's sandbox.json: {"sandbox": BOOL, "lua_cpu_limit": SECONDS,
 * "lua_memory_limit_mb": MB, "read_roots": [PATH, ...]}, written for a run
 * that is sandboxed or limited and read back by --resume: a sandboxed run
 * resumes sandboxed (whatever the command line says), under its limits
 * unless the command line sets others, reading what it could read before.
 * A recipe cannot write it (egrc_lua_check_writable). */
static int read_sandbox_record(const char *dir, cJSON **record, egrc_error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/" EGRC_SANDBOX_RECORD, dir);
    size_t len;
    struct stat sb;
    *record = NULL;
    if (stat(path, &sb)) return 0;
    char *text = egrc_read_file(path, MAX_TEXT_FILE, &len, err);
    if (!text) return -1;
    *record = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *sandbox = cJSON_GetObjectItemCaseSensitive(*record, "sandbox");
    if (!cJSON_IsBool(sandbox))
        return egrc_fail(err, "%s: not egrc's record of a run's sandbox ({\"sandbox\": true, ...}); restore it, or "
                              "delete it if the run was not sandboxed", path);
    return 0;
}

/* The options a resumed run takes from its record. */
static void apply_sandbox_record(const cJSON *record, egrc_run_options *o) {
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(record, "sandbox"))) o->sandbox = 1;
    const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(record, "lua_cpu_limit");
    const cJSON *memory = cJSON_GetObjectItemCaseSensitive(record, "lua_memory_limit_mb");
    if (o->lua_cpu_limit < 0 && cJSON_IsNumber(cpu) && cpu->valuedouble >= 0) o->lua_cpu_limit = (long)cpu->valuedouble;
    if (o->lua_memory_limit < 0 && cJSON_IsNumber(memory) && memory->valuedouble >= 0)
        o->lua_memory_limit = (long)memory->valuedouble;
}

static int write_sandbox_record(lua_State *L, const egrc_run_options *o, const char *out, egrc_error *err) {
    if (!o->sandbox && !o->lua_cpu_limit && !o->lua_memory_limit) return 0;
    cJSON *record = cJSON_CreateObject(), *roots = cJSON_CreateArray();
    cJSON_AddBoolToObject(record, "sandbox", o->sandbox);
    cJSON_AddNumberToObject(record, "lua_cpu_limit", (double)o->lua_cpu_limit);
    cJSON_AddNumberToObject(record, "lua_memory_limit_mb", (double)o->lua_memory_limit);
    cJSON_AddItemToObject(record, "read_roots", roots);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, EGRC_READ_ROOTS_KEY);
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
        cJSON_AddItemToArray(roots, cJSON_CreateString(lua_tostring(L, -1)));
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    char *text = cJSON_Print(record);
    cJSON_Delete(record);
    if (!text) return egrc_fail(err, "%s/" EGRC_SANDBOX_RECORD ": out of memory", out);
    char path[4200];
    snprintf(path, sizeof path, "%s/" EGRC_SANDBOX_RECORD, out);
    int rc = egrc_write_file_atomic(path, text, strlen(text), err);
    cJSON_free(text);
    return rc;
}

/* What a sandboxed recipe may read besides its run folder: the recipe's
 * folder, the paths the command line names (--set values that are existing
 * paths), and what the resumed run's record allowed. */
static void allow_command_line_reads(lua_State *L, const egrc_run_options *o, const run_paths *p,
                                     const cJSON *record) {
    char folder[4096];
    snprintf(folder, sizeof folder, "%s", p->recipe);
    char *slash = strrchr(folder, '/');
    if (slash) *(slash == folder ? slash + 1 : slash) = '\0';
    egrc_lua_allow_reads(L, slash ? folder : ".");
    struct stat sb;
    for (int i = 0; i < o->n_sets; i++) {
        const char *value = strchr(o->sets[i], '=');
        if (value && value[1] && stat(value + 1, &sb) == 0) egrc_lua_allow_reads(L, value + 1);
    }
    const cJSON *root;
    cJSON_ArrayForEach(root, cJSON_GetObjectItemCaseSensitive(record, "read_roots"))
        if (cJSON_IsString(root)) egrc_lua_allow_reads(L, root->valuestring); /* one gone since is skipped */
}

static int write_json(lua_State *L) {
    egrc_json_write(L, luaL_checkstring(L, 1), 2);
    return 0;
}

/* Creates the run folder and writes recipe.lua and settings.json into it. */
static int prepare_out(lua_State *L, const egrc_run_options *o, run_paths *p, int settings) {
    egrc_error err;
    if (o->out) snprintf(p->out, sizeof p->out, "%s", o->out);
    else if (o->resume) snprintf(p->out, sizeof p->out, "%s", o->resume);
    else default_out(p->out, sizeof p->out, p->name);
    size_t n = strlen(p->out);
    while (n > 1 && p->out[n - 1] == '/') p->out[--n] = '\0';
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/metrics.jsonl", p->out);
    if (!o->resume && stat(path, &sb) == 0)
        return fail(EGRC_EXIT_USAGE, "%s already holds a run (metrics.jsonl); choose another --out, or --resume it",
                    p->out);
    if (mkdirs(p->out, &err)) return fail(EGRC_EXIT_FAILURE, "%s", err.msg);
    snprintf(egrc_lua_state_get(L)->out_dir, sizeof egrc_lua_state_get(L)->out_dir, "%s", p->out);
    if (write_sandbox_record(L, o, p->out, &err)) return fail(EGRC_EXIT_FAILURE, "%s", err.msg);
    egrc_lua_allow_reads(L, p->out);
    snprintf(path, sizeof path, "%s/recipe.lua", p->out);
    if (strcmp(path, p->recipe) != 0) {
        size_t len;
        char *text = egrc_read_file(p->recipe, MAX_TEXT_FILE, &len, &err);
        int rc = text ? egrc_write_file_atomic(path, text, len, &err) : -1;
        free(text);
        if (rc) return fail(EGRC_EXIT_FAILURE, "%s", err.msg);
    }
    snprintf(path, sizeof path, "%s/settings.json", p->out);
    lua_pushcfunction(L, write_json);
    lua_pushstring(L, path);
    lua_pushvalue(L, settings);
    if (call(L, 2) != LUA_OK) return fail(EGRC_EXIT_FAILURE, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
}

/* latest.json names files beside it; a path there (an absolute one, or
 * "../x") would have --resume read, and its pruning remove, files outside
 * the run folder. */
static int is_file_name(lua_State *L, int idx) {
    size_t len;
    const char *name = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
    return name && len > 0 && strlen(name) == len && !strchr(name, '/') && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

/* Whether the checkpoint, state and kept entries of the latest.json table
 * at idx are all file names. */
static int names_files_beside(lua_State *L, int idx) {
    lua_getfield(L, idx, "checkpoint");
    lua_getfield(L, idx, "state");
    int ok = is_file_name(L, -2) && is_file_name(L, -1);
    int kept = lua_getfield(L, idx, "kept");
    if (kept != LUA_TNIL && kept != LUA_TTABLE) ok = 0;
    for (lua_Integer i = 1; ok && kept == LUA_TTABLE && lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
        ok = is_file_name(L, -1);
        lua_pop(L, 1);
    }
    if (kept == LUA_TTABLE && ok) lua_pop(L, 1); /* the nil that ended the list */
    lua_pop(L, 3);
    return ok;
}

/* Pushes run.resume: {step=, checkpoint=PATH, state=TABLE} from
 * DIR/checkpoints/latest.json, or {step=0} when no checkpoint was written. */
static int push_resume(lua_State *L, const char *dir, egrc_error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/checkpoints/latest.json", dir);
    if (push_json_file(L, path, err)) return -1;
    lua_Integer step = 0;
    if (lua_istable(L, -1)) {
        int latest = lua_gettop(L);
        lua_getfield(L, latest, "step");
        lua_getfield(L, latest, "checkpoint");
        lua_getfield(L, latest, "state");
        if (!lua_isinteger(L, -3) || !lua_isstring(L, -2) || !lua_isstring(L, -1))
            return egrc_fail(err, "%s: expected {\"step\": N, \"checkpoint\": FILE, \"state\": FILE}", path);
        if (!names_files_beside(L, latest))
            return egrc_fail(err, "%s: \"checkpoint\", \"state\" and \"kept\" must name files in %s/checkpoints "
                                  "(plain names: no '/', no '..')", path, dir);
        step = lua_tointeger(L, -3);
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, step);
        lua_setfield(L, -2, "step");
        lua_pushfstring(L, "%s/checkpoints/%s", dir, lua_tostring(L, -3));
        lua_setfield(L, -2, "checkpoint");
        snprintf(path, sizeof path, "%s/checkpoints/%s", dir, lua_tostring(L, -2));
        egrc_lua_check_readable(L, path);
        if (push_json_file(L, path, err)) return -1;
        lua_setfield(L, -2, "state");
        lua_replace(L, latest);
        lua_settop(L, latest);
    } else {
        lua_pop(L, 1);
        lua_createtable(L, 0, 1);
        lua_pushinteger(L, 0);
        lua_setfield(L, -2, "step");
    }
    /* metrics.jsonl is cut back to the checkpoint's lines by egrc.run (run.lua) */
    return 0;
}

static void set_field_string(lua_State *L, const char *key, const char *value) {
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
}

/* Pushes field name of the loaded module `module`. */
static void push_module_field(lua_State *L, const char *module, const char *name) {
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, module);
    lua_getfield(L, -1, name);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* Opens the backend every model uses unless the recipe names another,
 * before anything is written: a missing plugin or device is one line. */
static int open_backend(lua_State *L, int settings) {
    push_module_field(L, "egrc.core", "backend");
    lua_getfield(L, settings, "backend");
    lua_getfield(L, settings, "device");
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) return fail(EGRC_EXIT_FAILURE, "%s", lua_tostring(L, -1));
    push_module_field(L, "egrc.core", "set_default_backend");
    lua_insert(L, -2);
    lua_call(L, 1, 0);
    return 0;
}

/* Runs recipe.main(run) and run:finish(); the recipe table and settings are
 * at recipe and settings. */
static int execute(lua_State *L, const egrc_run_options *o, run_paths *p, int recipe, int settings) {
    egrc_error err;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "egrc.run");
    if (call(L, 1) != LUA_OK) return fail(EGRC_EXIT_FAILURE, "%s", lua_tostring(L, -1));
    lua_getfield(L, -1, "new");
    lua_remove(L, -2);
    lua_createtable(L, 0, 10);
    lua_pushvalue(L, recipe);
    lua_setfield(L, -2, "recipe");
    lua_pushvalue(L, settings);
    lua_setfield(L, -2, "settings");
    set_field_string(L, "name", p->name);
    set_field_string(L, "out", p->out);
    set_field_string(L, "recipe_path", p->recipe);
    lua_pushboolean(L, o->quiet);
    lua_setfield(L, -2, "quiet");
    lua_pushboolean(L, o->sandbox);
    lua_setfield(L, -2, "sandbox");
    char stamp[40];
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S%z", localtime_r(&now, &tm));
    set_field_string(L, "started", stamp);
    if (o->resume) {
        if (push_resume(L, p->out, &err)) return fail(EGRC_EXIT_FAILURE, "--resume: %s", err.msg);
        lua_setfield(L, -2, "resume");
    }
    if (call(L, 1) != LUA_OK) return fail(EGRC_EXIT_FAILURE, "%s", lua_tostring(L, -1));
    int run = lua_gettop(L);
    lua_getfield(L, run, "finish"); /* taken before main runs: the recipe cannot swap it */
    int finish = lua_gettop(L);

    /* from here on a stop signal ends the run at a step boundary, with a
     * checkpoint and summary.json (lresume.c) */
    if (egrc_lua_install_stop_handlers(&err)) return fail(EGRC_EXIT_FAILURE, "%s", err.msg);
    lua_getfield(L, recipe, "main");
    lua_pushvalue(L, run);
    int ok = call(L, 1) == LUA_OK;
    /* a limit ends the run even where the recipe caught its error; its
     * message, unless the error already is that message */
    if (egrc_lua_limits_stop(L, ok)) {
        const char *msg = lua_tostring(L, -2);
        if (ok || !msg || !strstr(msg, lua_tostring(L, -1))) lua_replace(L, -2);
        else lua_pop(L, 1);
        ok = 0;
    }
    int stopped = !ok && egrc_lua_stop_signal();
    if (!ok) {
        push_module_field(L, "egrc.core", "console");
        lua_getfield(L, -1, "finish");
        lua_call(L, 0, 0);
        lua_pop(L, 1);
        /* a stop the user asked for is no bug: its message, not the traceback */
        const char *msg = lua_tostring(L, -1);
        const char *trace = msg && stopped ? strstr(msg, "\nstack traceback:") : NULL;
        fprintf(stderr, "egrc: %.*s\n", trace ? (int)(trace - msg) : (int)strlen(msg ? msg : ""), msg ? msg : "");
    }
    /* run:finish(ok, error) writes summary.json, whatever happened */
    lua_pushvalue(L, finish);
    lua_pushvalue(L, run);
    lua_pushboolean(L, ok);
    if (ok) lua_pushnil(L);
    else lua_pushvalue(L, -4);
    if (call(L, 3) != LUA_OK) return fail(EGRC_EXIT_FAILURE, "%s", lua_tostring(L, -1));
    if (stopped) return 128 + egrc_lua_stop_signal(); /* as a shell reports a death by that signal */
    return ok ? EGRC_EXIT_OK : EGRC_EXIT_FAILURE;
}

typedef struct run_job {
    const egrc_run_options *o;
    run_paths *p;
    const cJSON *record; /* the resumed run's sandbox.json, or NULL */
    int rc;
} run_job;

/* The whole run inside one protected call, as lua.c's pmain: even an
 * allocation failure in the driver's own Lua calls becomes a message. */
static int run_protected(lua_State *L) {
    run_job *job = lua_touserdata(L, 1);
    lua_settop(L, 0);
    allow_command_line_reads(L, job->o, job->p, job->record); /* recorded in sandbox.json even unsandboxed */
    int rc = prepare(L, job->o, job->p);
    if (rc == 0) {
        int recipe = lua_gettop(L) - 1, settings = lua_gettop(L);
        rc = open_backend(L, settings);
        if (rc == 0) rc = prepare_out(L, job->o, job->p, settings);
        if (rc == 0) rc = execute(L, job->o, job->p, recipe, settings);
    }
    job->rc = rc;
    return 0;
}

/* A resumed run keeps its name (summary.json records it). */
static void resumed_name(const char *dir, char *name, size_t size) {
    char path[4200];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    size_t len;
    char *text = egrc_read_file(path, MAX_TEXT_FILE, &len, NULL);
    cJSON *summary = text ? cJSON_ParseWithLength(text, len) : NULL;
    const cJSON *recipe = cJSON_GetObjectItemCaseSensitive(summary, "recipe");
    if (cJSON_IsString(recipe)) snprintf(name, size, "%.200s", recipe->valuestring);
    cJSON_Delete(summary);
    free(text);
}

/* The options the run goes by: a resumed run's record, then the limits'
 * defaults (which depend on the sandbox). */
static int effective_options(const egrc_run_options *o, egrc_run_options *eff, cJSON **record) {
    *eff = *o;
    egrc_error err;
    if (o->resume && read_sandbox_record(o->resume, record, &err))
        return fail(EGRC_EXIT_USAGE, "--resume %s: %s", o->resume, err.msg);
    apply_sandbox_record(*record, eff);
    if (eff->lua_cpu_limit < 0) eff->lua_cpu_limit = eff->sandbox ? EGRC_SANDBOX_CPU_LIMIT : 0;
    if (eff->lua_memory_limit < 0) eff->lua_memory_limit = eff->sandbox ? EGRC_SANDBOX_MEMORY_LIMIT : 0;
    return 0;
}

static int run_with(const egrc_run_options *o, const cJSON *record) {
    run_paths p;
    memset(&p, 0, sizeof p);
    if (o->recipe) {
        p.recipe = o->recipe;
    } else if (o->resume) {
        snprintf(p.recipe_resume, sizeof p.recipe_resume, "%s/recipe.lua", o->resume);
        p.recipe = p.recipe_resume;
    } else {
        return fail(EGRC_EXIT_USAGE, "%s", "egrc run: a recipe file (or --resume DIR) is required");
    }
    /* the default name: the file name without folder and .lua */
    const char *base = strrchr(p.recipe, '/');
    snprintf(p.name, sizeof p.name, "%.200s", base ? base + 1 : p.recipe);
    char *dot = strrchr(p.name, '.');
    if (dot && strcmp(dot, ".lua") == 0) *dot = '\0';
    if (!o->recipe) resumed_name(o->resume, p.name, sizeof p.name);
    egrc_error err;
    lua_State *L = egrc_lua_newstate(o->sandbox, &err);
    if (!L) return fail(EGRC_EXIT_FAILURE, "%s", err.msg);
    egrc_lua_state_get(L)->quiet = o->quiet;
    egrc_lua_set_limits(L, (double)o->lua_cpu_limit, (size_t)o->lua_memory_limit);
    run_job job = {o, &p, record, EGRC_EXIT_FAILURE};
    lua_pushcfunction(L, run_protected);
    lua_pushlightuserdata(L, &job);
    int rc = lua_pcall(L, 1, 0, 0) == LUA_OK ? job.rc : fail(EGRC_EXIT_FAILURE, "%s", lua_tostring(L, -1));
    egrc_lua_close(L);
    return rc;
}

int egrc_lua_run(const egrc_run_options *options) {
    egrc_run_options eff;
    cJSON *record = NULL;
    int rc = effective_options(options, &eff, &record);
    if (rc == 0) rc = run_with(&eff, record);
    cJSON_Delete(record);
    return rc;
}
