/* Whole-file reads and crash-safe (atomic) writes. See fileio.h. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *egrc_read_file(const char *path, size_t max_bytes, size_t *len, egrc_error *err) {
    if (max_bytes > SIZE_MAX - 2) max_bytes = SIZE_MAX - 2; /* keeps max_bytes + 1 + NUL representable */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        egrc_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    /* Read until EOF rather than trusting st_size, so pipes and /proc files work
     * and a file growing under us cannot overrun the buffer. */
    size_t cap = 4096, used = 0;
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= 0 && (size_t)sb.st_size < max_bytes)
        cap = (size_t)sb.st_size + 1;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        egrc_fail(err, "%s: out of memory reading the file", path);
        return NULL;
    }
    for (;;) {
        if (used == cap) {
            if (cap > max_bytes) break; /* already holds more than the limit */
            size_t grown = cap > max_bytes / 2 ? max_bytes + 1 : cap * 2;
            char *bigger = realloc(buf, grown + 1);
            if (!bigger) {
                free(buf);
                close(fd);
                egrc_fail(err, "%s: out of memory reading the file", path);
                return NULL;
            }
            buf = bigger;
            cap = grown;
        }
        ssize_t got = read(fd, buf + used, cap - used);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int saved = errno;
            free(buf);
            close(fd);
            egrc_fail(err, "%s: read failed: %s", path, strerror(saved));
            return NULL;
        }
        if (got == 0) break;
        used += (size_t)got;
    }
    close(fd);
    if (used > max_bytes) {
        free(buf);
        egrc_fail(err, "%s: file is larger than the %zu-byte limit for this kind of file", path, max_bytes);
        return NULL;
    }
    buf[used] = '\0';
    if (len) *len = used;
    return buf;
}

struct egrc_atomic_file {
    char *path;
    char *tmp_path;
    int fd;
    /* Set when a write failed, so a caller that ignores the error cannot
     * commit a torn file over the good one. */
    int failed;
};

egrc_atomic_file *egrc_atomic_open(const char *path, egrc_error *err) {
    egrc_atomic_file *f = calloc(1, sizeof *f);
    size_t tmp_size = strlen(path) + 32;
    if (f) {
        f->path = strdup(path);
        f->tmp_path = malloc(tmp_size);
    }
    if (!f || !f->path || !f->tmp_path) {
        if (f) {
            free(f->path);
            free(f->tmp_path);
            free(f);
        }
        egrc_fail(err, "%s: out of memory starting an atomic write", path);
        return NULL;
    }
    snprintf(f->tmp_path, tmp_size, "%s.tmp.%ld", path, (long)getpid());
    /* O_TRUNC: a leftover temp file can only come from an earlier crashed
     * process that had our pid, and its contents are worthless. */
    f->fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        egrc_fail(err, "%s: cannot create temporary file %s: %s", path, f->tmp_path, strerror(errno));
        free(f->path);
        free(f->tmp_path);
        free(f);
        return NULL;
    }
    return f;
}

int egrc_atomic_write(egrc_atomic_file *f, const void *data, size_t len, egrc_error *err) {
    if (f->failed) return egrc_fail(err, "%s: an earlier write to this file already failed", f->path);
    const char *p = data;
    while (len > 0) {
        ssize_t put = write(f->fd, p, len);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) {
            f->failed = 1;
            return egrc_fail(err, "%s: write to %s failed: %s", f->path, f->tmp_path,
                             put < 0 ? strerror(errno) : "no progress");
        }
        p += put;
        len -= (size_t)put;
    }
    return 0;
}

static void atomic_free(egrc_atomic_file *f) {
    free(f->path);
    free(f->tmp_path);
    free(f);
}

void egrc_atomic_abort(egrc_atomic_file *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    unlink(f->tmp_path);
    atomic_free(f);
}

/* The rename is only durable once the directory entry itself reaches disk. */
static int fsync_parent_dir(const char *path, egrc_error *err) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return egrc_fail(err, "%s: out of memory syncing the folder", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        egrc_fail(err, "%s: cannot open folder %s to sync it: %s", path, dir, strerror(errno));
        free(dir);
        return -1;
    }
    int rc = 0;
    /* Some file systems cannot sync a directory (EINVAL); there is nothing
     * more we can do for durability there, so that is not an error. */
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = egrc_fail(err, "%s: fsync of folder %s failed: %s", path, dir, strerror(errno));
    close(fd);
    free(dir);
    return rc;
}

int egrc_atomic_commit(egrc_atomic_file *f, egrc_error *err) {
    if (f->failed) {
        egrc_fail(err, "%s: not replacing the file because an earlier write failed", f->path);
        egrc_atomic_abort(f);
        return -1;
    }
    if (fsync(f->fd) != 0) {
        egrc_fail(err, "%s: fsync of %s failed: %s", f->path, f->tmp_path, strerror(errno));
        egrc_atomic_abort(f);
        return -1;
    }
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0) {
        egrc_fail(err, "%s: closing %s failed: %s", f->path, f->tmp_path, strerror(errno));
        egrc_atomic_abort(f);
        return -1;
    }
    if (rename(f->tmp_path, f->path) != 0) {
        egrc_fail(err, "%s: cannot rename %s over it: %s", f->path, f->tmp_path, strerror(errno));
        egrc_atomic_abort(f);
        return -1;
    }
    int rc = fsync_parent_dir(f->path, err);
    atomic_free(f);
    return rc;
}

int egrc_write_file_atomic(const char *path, const void *data, size_t len, egrc_error *err) {
    egrc_atomic_file *f = egrc_atomic_open(path, err);
    if (!f) return -1;
    if (egrc_atomic_write(f, data, len, err) != 0) {
        egrc_atomic_abort(f);
        return -1;
    }
    return egrc_atomic_commit(f, err);
}
