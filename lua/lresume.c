/* Stopping a run cleanly and resuming it exactly.
 *
 * Signals: the first SIGINT or SIGTERM only raises a flag; the training loops
 * (egrc.run's step boundary) read it with egrc.core.interrupted(), write a
 * checkpoint and end the run with status "interrupted", so no step is left
 * half-done and `egrc run --resume DIR` continues the same trajectory. A
 * second signal means "now": the process exits at once with 128 + signal,
 * which loses at most the steps since the last checkpoint.
 *
 * Run files: what resuming needs beside the checkpoint itself. The metrics
 * log is cut back to the lines the checkpoint covers (the step after it is
 * computed again and logs the same line), and temporary files left by a
 * write that a kill interrupted are removed. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "io/fileio.h"
#include "lua_internal.h"

/* Beyond this a metrics log is not ours (at about 1 KB a line: a million steps). */
#define MAX_METRICS_BYTES ((size_t)1 << 30)

static volatile sig_atomic_t pending_signal = 0;

static void write_stderr(const char *text) {
    ssize_t ignored = write(STDERR_FILENO, text, strlen(text));
    (void)ignored; /* nothing to do in a signal handler if stderr is gone */
}

static void on_stop_signal(int sig) {
    if (pending_signal) {
        write_stderr("\negrc: second signal: stopping now, without a checkpoint "
                     "(--resume continues from the last one)\n");
        _exit(128 + sig);
    }
    pending_signal = sig;
    write_stderr("\negrc: stopping at the end of this step (a checkpoint follows; signal again to stop at once)\n");
}

int egrc_lua_install_stop_handlers(egrc_error *err) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* file writes and waits carry on; the loop checks the flag */
    if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
        return egrc_fail(err, "cannot install the SIGINT/SIGTERM handlers: %s", strerror(errno));
    return 0;
}

int egrc_lua_stop_signal(void) { return pending_signal; }

/* egrc.interrupted() -> "SIGINT" | "SIGTERM" | nil */
static int interrupted(lua_State *L) {
    int sig = pending_signal;
    if (sig == SIGINT) lua_pushliteral(L, "SIGINT");
    else if (sig == SIGTERM) lua_pushliteral(L, "SIGTERM");
    else lua_pushnil(L);
    return 1;
}

/* egrc.run_files.keep_lines(path[, n]) -> lines kept: cuts the file to its
 * first n lines (all of them without n). A file with fewer lines is an
 * error: the lines the checkpoint covers are gone, and resuming would leave
 * a gap. A missing file is left missing (0 lines): a run that logged nothing
 * yet, or a log an older egrc did not write. */
static int keep_lines(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lua_Integer want = luaL_optinteger(L, 2, LUA_MAXINTEGER);
    luaL_argcheck(L, want >= 0, 2, "a line count >= 0 expected");
    egrc_lua_check_writable(L, path);
    egrc_error err;
    size_t len = 0;
    char *text = egrc_read_file(path, MAX_METRICS_BYTES, &len, &err);
    if (!text) {
        if (access(path, F_OK) == 0) return egrc_lua_raise(L, &err);
        lua_pushinteger(L, 0);
        return 1;
    }
    size_t end = 0;
    lua_Integer lines = 0;
    while (lines < want && end < len) {
        const char *eol = memchr(text + end, '\n', len - end);
        if (!eol) break; /* a last line without its newline was being written when the run died */
        end = (size_t)(eol - text) + 1;
        lines++;
    }
    if (lines < want && !lua_isnoneornil(L, 2)) {
        free(text);
        return luaL_error(L, "%s: %d lines, but the checkpoint covers %d; the run folder was changed since",
                          path, (int)lines, (int)want);
    }
    int rc = end == len ? 0 : egrc_write_file_atomic(path, text, end, &err);
    free(text);
    if (rc) return egrc_lua_raise(L, &err);
    lua_pushinteger(L, lines);
    return 1;
}

/* Whether name is "<file>.tmp.<pid>" (egrc_write_file_atomic's temporary)
 * of a process that no longer runs. */
static int is_stale_temp(const char *name) {
    const char *mark = strstr(name, ".tmp.");
    if (!mark || mark == name) return 0;
    char *end;
    long pid = strtol(mark + 5, &end, 10);
    if (*end != '\0' || end == mark + 5 || pid <= 0) return 0;
    return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* egrc.run_files.remove_stale_temps(dir) -> count removed (a missing folder: 0) */
static int remove_stale_temps(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    egrc_lua_check_writable(L, dir);
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return lua_pushinteger(L, 0), 1;
        return luaL_error(L, "%s: cannot list: %s", dir, strerror(errno));
    }
    lua_Integer removed = 0;
    luaL_Buffer path;
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_stale_temp(e->d_name)) continue;
        luaL_buffinit(L, &path);
        luaL_addstring(&path, dir);
        luaL_addchar(&path, '/');
        luaL_addstring(&path, e->d_name);
        luaL_pushresult(&path);
        if (unlink(lua_tostring(L, -1)) == 0) removed++;
        lua_pop(L, 1);
    }
    closedir(d);
    lua_pushinteger(L, removed);
    return 1;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* egrc.run_files.list(dir) -> the names of its entries, sorted, so that what a
 * loop does with them is the same on every file system (a missing folder: {}) */
static int list_files(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    egrc_lua_check_writable(L, dir);
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return lua_newtable(L), 1;
        return luaL_error(L, "%s: cannot list: %s", dir, strerror(errno));
    }
    size_t count = 0, cap = 0;
    char **names = NULL;
    int failed = 0;
    for (struct dirent *e; !failed && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (count == cap) {
            char **grown = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
            if (!grown) failed = 1;
            else names = grown;
        }
        if (!failed && !(names[count++] = strdup(e->d_name))) failed = 1, count--;
    }
    closedir(d);
    if (!failed) qsort(names, count, sizeof *names, compare_names);
    if (!failed) lua_createtable(L, (int)count, 0);
    for (size_t i = 0; i < count; i++) {
        if (!failed) {
            lua_pushstring(L, names[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        free(names[i]);
    }
    free(names);
    if (failed) return luaL_error(L, "%s: out of memory listing the folder", dir);
    return 1;
}

void egrc_open_resume(lua_State *L) {
    lua_pushcfunction(L, interrupted);
    lua_setfield(L, -2, "interrupted");
    luaL_newlib(L, ((const luaL_Reg[]){{"keep_lines", keep_lines},
                                       {"remove_stale_temps", remove_stale_temps},
                                       {"list", list_files},
                                       {NULL, NULL}}));
    lua_setfield(L, -2, "run_files");
}
