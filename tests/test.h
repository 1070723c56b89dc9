/* A minimal test harness: each test file is one executable registered with
 * ctest. CHECK records a failure and carries on, so one run shows every
 * broken assertion; the process exit code is the number of failures (capped). */
#ifndef EGRC_TEST_H
#define EGRC_TEST_H

#include <math.h>
#include <stdio.h>

static int test_failures = 0;
static int test_checks = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        test_checks++;                                                           \
        if (!(cond)) {                                                           \
            test_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_MSG(cond, ...)                                                     \
    do {                                                                         \
        test_checks++;                                                           \
        if (!(cond)) {                                                           \
            test_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
        }                                                                        \
    } while (0)

/* |a-b| <= tol * max(1, |b|)-style checks are spelled out at the call site;
 * this one is for plain relative error against a reference. */
#define CHECK_CLOSE(a, b, rel_tol)                                               \
    CHECK_MSG(fabs((double)(a) - (double)(b)) <= (rel_tol) * fmax(1e-30, fabs((double)(b))), \
              "%.9g vs %.9g (rel tol %g)", (double)(a), (double)(b), (double)(rel_tol))

static inline int test_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, test_checks, test_failures);
    if (test_checks == 0) {
        fprintf(stderr, "%s: no checks ran\n", name);
        return 1;
    }
    return test_failures > 100 ? 100 : test_failures;
}

/* Tests find their data relative to this directory, passed by CMake. */
#ifndef EGRC_TEST_DATA
#define EGRC_TEST_DATA "tests/data"
#endif

#endif
