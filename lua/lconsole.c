/* The run's outputs: the live progress line, the metrics log, and the few
 * file operations the Lua library needs (it never uses io or os, so it works
 * the same under --sandbox, where every write must stay in the run folder).
 *
 * metrics.jsonl is an append-only log flushed line by line: a crash loses at
 * most the line being written, and rewriting the file atomically per step
 * would cost O(steps^2). Everything else goes through egrc_write_file_atomic. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/fileio.h"
#include "lua_internal.h"

/* A \r progress line only on a terminal, and not under --quiet. */
static int live(lua_State *L) { return !egrc_lua_state_get(L)->quiet && isatty(STDOUT_FILENO); }

static int console_is_live(lua_State *L) {
    lua_pushboolean(L, live(L));
    return 1;
}

/* console.progress(line): redraws the progress line (or prints it plainly). */
static int console_progress(lua_State *L) {
    const char *line = luaL_checkstring(L, 1);
    if (live(L)) {
        printf("\r%s\033[K", line);
        egrc_lua_state_get(L)->progress_shown = 1;
    } else {
        printf("%s\n", line);
    }
    fflush(stdout);
    return 0;
}

/* console.print(...): print, but first moves off a progress line. */
static int console_print(lua_State *L) {
    egrc_lua_state *s = egrc_lua_state_get(L);
    if (s->progress_shown) fputs("\r\033[K", stdout);
    s->progress_shown = 0;
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *text = luaL_tolstring(L, i, &len);
        if (i > 1) fputc('\t', stdout);
        fwrite(text, 1, len, stdout);
        lua_pop(L, 1);
    }
    fputc('\n', stdout);
    fflush(stdout);
    return 0;
}

/* console.finish(): ends a progress line so what follows starts clean. */
static int console_finish(lua_State *L) {
    egrc_lua_state *s = egrc_lua_state_get(L);
    if (s->progress_shown) fputc('\n', stdout);
    s->progress_shown = 0;
    fflush(stdout);
    return 0;
}

/* ---- metrics.jsonl ---- */

typedef struct metrics_file {
    FILE *f;
} metrics_file;

static int metrics_close(lua_State *L) {
    metrics_file *m = luaL_checkudata(L, 1, EGRC_METRICS_MT);
    if (m->f) fclose(m->f);
    m->f = NULL;
    return 0;
}

/* egrc.metrics.open(path, [append]) -> writer */
static int metrics_open(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    egrc_lua_check_writable(L, path);
    metrics_file *m = lua_newuserdatauv(L, sizeof *m, 0);
    m->f = NULL;
    luaL_setmetatable(L, EGRC_METRICS_MT);
    m->f = fopen(path, lua_toboolean(L, 2) ? "a" : "w");
    if (!m->f) return luaL_error(L, "%s: cannot open for writing: %s", path, strerror(errno));
    return 1;
}

/* writer:write(table): one JSON object per line, flushed. */
static int metrics_write(lua_State *L) {
    metrics_file *m = luaL_checkudata(L, 1, EGRC_METRICS_MT);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!m->f) return luaL_error(L, "metrics file is closed");
    size_t len;
    const char *line = egrc_json_encode(L, 2, 0, &len);
    if (fwrite(line, 1, len, m->f) != len || fputc('\n', m->f) == EOF || fflush(m->f))
        return luaL_error(L, "metrics: write failed: %s", strerror(errno));
    return 0;
}

/* ---- files ---- */

/* egrc.fs.mkdir(path): creates the folder and its parents. */
static int fs_mkdir(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    egrc_lua_check_writable(L, path);
    char buf[4096];
    size_t n = strlen(path);
    luaL_argcheck(L, n > 0 && n < sizeof buf, 1, "path is empty or too long");
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST) return luaL_error(L, "%s: cannot create folder: %s", buf, strerror(errno));
        *p = c;
        if (!c) break;
    }
    return 0;
}

static int fs_exists(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    egrc_lua_check_readable(L, path); /* even a yes or no says something about a file */
    struct stat sb;
    lua_pushboolean(L, stat(path, &sb) == 0);
    return 1;
}

static int fs_remove(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    egrc_lua_check_writable(L, path);
    if (unlink(path) && errno != ENOENT) return luaL_error(L, "%s: cannot remove: %s", path, strerror(errno));
    return 0;
}

/* egrc.fs.write(path, text): atomic (temp file, fsync, rename). */
static int fs_write(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    egrc_lua_check_writable(L, path);
    egrc_error err;
    if (egrc_write_file_atomic(path, text, len, &err)) return egrc_lua_raise(L, &err);
    return 0;
}

void egrc_open_console(lua_State *L) {
    luaL_newlib(L, ((const luaL_Reg[]){{"progress", console_progress},
                                       {"print", console_print},
                                       {"finish", console_finish},
                                       {"is_live", console_is_live},
                                       {NULL, NULL}}));
    lua_setfield(L, -2, "console");
    luaL_newmetatable(L, EGRC_METRICS_MT);
    lua_pushcfunction(L, metrics_close);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, ((const luaL_Reg[]){{"write", metrics_write}, {"close", metrics_close}, {NULL, NULL}}));
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newlib(L, ((const luaL_Reg[]){{"open", metrics_open}, {NULL, NULL}}));
    lua_setfield(L, -2, "metrics");
    luaL_newlib(L, ((const luaL_Reg[]){{"mkdir", fs_mkdir}, {"exists", fs_exists}, {"remove", fs_remove},
                                       {"write", fs_write}, {NULL, NULL}}));
    lua_setfield(L, -2, "fs");
}
