/* Numbers written to JSON read back as the same double, bit for bit: random
 * bit patterns (every exponent), subnormals, +-0, the extremes, and values
 * whose 15-digit form is within DBL_EPSILON but not exact. Read back both by
 * strtod and by cJSON's parser, which is how run files are read. */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "io/json_number.h"
#include "test.h"

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static void check_round_trip(double v) {
    char text[EGRC_JSON_NUMBER_MAX];
    egrc_json_format_double(v, text);
    double back = strtod(text, NULL);
    CHECK_MSG(same_bits(back, v), "%.17g written as '%s' reads back as %.17g", v, text, back);
    cJSON *parsed = cJSON_Parse(text);
    CHECK_MSG(parsed && cJSON_IsNumber(parsed) && same_bits(parsed->valuedouble, v),
              "%.17g written as '%s' is read by cJSON as %.17g", v, text, parsed ? parsed->valuedouble : NAN);
    cJSON_Delete(parsed);
}

static void test_random_bit_patterns(void) {
    egrc_rng rng;
    egrc_rng_seed(&rng, 2024);
    int tested = 0;
    while (tested < 20000) {
        uint64_t bits = egrc_rng_next(&rng);
        double v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v)) continue;
        check_round_trip(v);
        tested++;
    }
}

static void test_edges(void) {
    const double edges[] = {0.0, -0.0, DBL_MIN, -DBL_MIN, DBL_MAX, -DBL_MAX, DBL_TRUE_MIN, -DBL_TRUE_MIN,
                            DBL_MIN / 3, 4.9406564584124654e-324 * 12345, 1e308, 1e-308, 1e22, 1e23, 5e-324,
                            9007199254740993.0, 0.1, 1.0 / 3, 2.0 / 3, M_PI, DBL_EPSILON, 1 + DBL_EPSILON};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) check_round_trip(edges[i]);
    char text[EGRC_JSON_NUMBER_MAX];
    CHECK_MSG(strcmp(egrc_json_format_double(-0.0, text), "-0") == 0, "-0 written as '%s'", text);
}

/* Values whose 15-digit form is off by an ulp: 0.1 + 0.2 is the classic. */
static void test_needs_more_than_15_digits(void) {
    char text[EGRC_JSON_NUMBER_MAX];
    egrc_json_format_double(0.1 + 0.2, text);
    CHECK_MSG(strcmp(text, "0.30000000000000004") == 0, "0.1 + 0.2 written as '%s'", text);
    CHECK_MSG(strcmp(egrc_json_format_double(0.1, text), "0.1") == 0, "0.1 written as '%s' (not the shortest)", text);
    CHECK_MSG(strcmp(egrc_json_format_double(1e300, text), "1e+300") == 0, "1e300 written as '%s'", text);
}

int main(void) {
    test_random_bit_patterns();
    test_edges();
    test_needs_more_than_15_digits();
    return test_finish("test_json_number");
}
