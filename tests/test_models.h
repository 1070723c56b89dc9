/* Loading the Hugging Face fixture models in tests/data for a test. */
#ifndef EGRC_TEST_MODELS_H
#define EGRC_TEST_MODELS_H

#include <stdio.h>

#include "nn/model_hf.h"
#include "test.h"

/* Loads tests/data/<name>; a failure is recorded as a failed check. */
static inline egrc_model *test_load_fixture(egrc_backend *be, const char *name) {
    char dir[512];
    egrc_error err;
    snprintf(dir, sizeof dir, "%s/%s", EGRC_TEST_DATA, name);
    egrc_model *m = egrc_model_load_hf(be, dir, &err);
    CHECK_MSG(m != NULL, "%s: %s", name, err.msg);
    return m;
}

#endif
