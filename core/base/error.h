/* egrc error reporting.
 *
 * Every fallible function takes an `egrc_error *err` as its last argument and
 * returns 0 on success or -1 on failure, having written one human-readable
 * sentence into err->msg that names the file/key/value at fault and, where it
 * helps, what to do. Callers add context by prefixing (egrc_error_prefix), so
 * the message a user finally sees reads outermost-first:
 *   "model.safetensors: tensor 'lm_head.weight': data offsets [0, 99999) lie past the end of the file (4096 bytes)"
 * `err` may be NULL when the caller only wants the return code.
 */
#ifndef EGRC_ERROR_H
#define EGRC_ERROR_H

#include <stddef.h>

/* The process exit codes of egrc and of a run, shared by the CLI and the recipe runner. */
enum { EGRC_EXIT_OK = 0, EGRC_EXIT_FAILURE = 1, EGRC_EXIT_USAGE = 2 };

typedef struct egrc_error {
    char msg[1024];
} egrc_error;

#if defined(__GNUC__)
#define EGRC_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define EGRC_PRINTF(fmt_index, first_arg)
#endif

/* Formats the message into err (if non-NULL) and returns -1, so callers can
 * write `return egrc_fail(err, "...", ...);`. */
int egrc_fail(egrc_error *err, const char *fmt, ...) EGRC_PRINTF(2, 3);

/* Prepends "<prefix>: " to the message already in err; returns -1. */
int egrc_error_prefix(egrc_error *err, const char *fmt, ...) EGRC_PRINTF(2, 3);

#endif
