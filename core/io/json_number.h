/* Numbers as JSON text that read back exactly. cJSON prints a double with 15
 * significant digits whenever that reads back within DBL_EPSILON of it, so a
 * value written and read again can come back one unit off in its last place
 * (measured: 376 of 2000 random doubles), and a resumed run then computes
 * with other numbers than the run it resumes. */
#ifndef EGRC_JSON_NUMBER_H
#define EGRC_JSON_NUMBER_H

#include <stddef.h>

/* Enough for "%.17g" of any double: sign, 17 digits, point, "e-308". */
#define EGRC_JSON_NUMBER_MAX 32

/* Writes the shortest "%.Ng" form of the finite value v (N from 15 to 17)
 * that strtod reads back as the same bits, -0 included, into buf
 * (EGRC_JSON_NUMBER_MAX bytes). Returns buf. */
char *egrc_json_format_double(double v, char buf[EGRC_JSON_NUMBER_MAX]);

#endif
