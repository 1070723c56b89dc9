/* Shared pieces of the egrc command line: flag parsing, and the
 * subcommands implemented in their own files. */
#ifndef EGRC_CLI_H
#define EGRC_CLI_H

#include "base/error.h"

/* Parses a decimal integer flag value in [min, max]; on failure prints
 * "egrc: FLAG: ..." to stderr and returns -1. */
int egrc_cli_int(const char *flag, const char *text, long min, long max, long *out);
/* Prints "egrc: <message>" (and the hint, if any) to stderr, returns `code`. */
int egrc_cli_error(int code, const char *message, const char *hint);

int egrc_cmd_parity(int argc, char **argv);
int egrc_cmd_bench(int argc, char **argv);

#endif
