#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int egrc_fail(egrc_error *err, const char *fmt, ...) {
    if (err) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, args);
        va_end(args);
    }
    return -1;
}

int egrc_error_prefix(egrc_error *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[sizeof err->msg];
    va_list args;
    va_start(args, fmt);
    int written = vsnprintf(prefix, sizeof prefix - 2, fmt, args);
    va_end(args);
    if (written < 0) return -1;
    size_t prefix_len = strlen(prefix);
    memcpy(prefix + prefix_len, ": ", 3);
    prefix_len += 2;
    /* Shift the existing message right (truncating its tail) and put the prefix in front. */
    size_t old_len = strnlen(err->msg, sizeof err->msg - 1);
    size_t keep = old_len + prefix_len < sizeof err->msg ? old_len : sizeof err->msg - 1 - prefix_len;
    memmove(err->msg + prefix_len, err->msg, keep);
    memcpy(err->msg, prefix, prefix_len);
    err->msg[prefix_len + keep] = '\0';
    return -1;
}
