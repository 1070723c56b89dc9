/* File helpers: whole-file reads and atomic writes.
 *
 * An atomic write goes to "<path>.tmp.<pid>" in the same folder, is fsync'd,
 * renamed over <path>, and the folder is fsync'd, so readers (and a resumed
 * run after a crash) see either the complete old file or the complete new one. */
#ifndef EGRC_FILEIO_H
#define EGRC_FILEIO_H

#include <stddef.h>

#include "base/error.h"

/* Reads a whole file into a NUL-terminated malloc'd buffer; *len excludes the NUL.
 * Refuses files larger than max_bytes with a message naming the limit. */
char *egrc_read_file(const char *path, size_t max_bytes, size_t *len, egrc_error *err);

typedef struct egrc_atomic_file egrc_atomic_file;

egrc_atomic_file *egrc_atomic_open(const char *path, egrc_error *err);
int egrc_atomic_write(egrc_atomic_file *f, const void *data, size_t len, egrc_error *err);
/* fsync + rename + fsync(dir); frees f whatever the outcome. */
int egrc_atomic_commit(egrc_atomic_file *f, egrc_error *err);
/* Removes the temp file and frees f (for error paths). */
void egrc_atomic_abort(egrc_atomic_file *f);

int egrc_write_file_atomic(const char *path, const void *data, size_t len, egrc_error *err);

#endif
