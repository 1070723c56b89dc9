#include "json_number.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *egrc_json_format_double(double v, char buf[EGRC_JSON_NUMBER_MAX]) {
    /* 17 significant digits always identify a double; fewer are tried first
     * so that 0.1 stays "0.1". */
    for (int digits = 15; digits < 17; digits++) {
        snprintf(buf, EGRC_JSON_NUMBER_MAX, "%.*g", digits, v);
        double back = strtod(buf, NULL);
        if (memcmp(&back, &v, sizeof v) == 0) return buf;
    }
    snprintf(buf, EGRC_JSON_NUMBER_MAX, "%.17g", v);
    return buf;
}
