/* Plugins that break the backend contract's shape, for test_backend_faults:
 * the loader (backends/backend.c) must refuse each one, naming what is
 * wrong. One source, built once per way of breaking it (CMakeLists.txt):
 * OLD_ABI makes its table claim the ABI version before this one, and
 * DROP_OP names a required op it leaves NULL. Every other op is set, to a
 * stub the loader never gets to call: it refuses the table first. */
#include "backends/backend.h"

static void never_called(void) {}

/* A function pointer converts to any other; through void (*)(void), GCC's
 * -Wcast-function-type lets it. */
#define STUB(op) .op = (__typeof__(((egrc_backend_ops *)0)->op))never_called

static egrc_backend_ops table = {
    .name = "broken",
    STUB(device_count), STUB(device_info), STUB(open), STUB(close), STUB(supports), STUB(alloc), STUB(free),
    STUB(upload), STUB(download), STUB(zero), STUB(synchronize), STUB(latched_error), STUB(to_act),
    STUB(embedding_forward), STUB(embedding_backward), STUB(layernorm_forward), STUB(layernorm_backward),
    STUB(rmsnorm_forward), STUB(rmsnorm_backward), STUB(matmul_forward), STUB(matmul_backward), STUB(rope_forward),
    STUB(rope_backward), STUB(attention_scratch_bytes), STUB(attention_forward), STUB(attention_backward),
    STUB(gelu_forward), STUB(gelu_backward), STUB(swiglu_forward), STUB(swiglu_backward), STUB(add),
    STUB(cross_entropy_forward), STUB(cross_entropy_backward), STUB(kv_cache_write), STUB(attention_decode),
    STUB(to_f32), STUB(sum_squares), STUB(adamw),
};

__attribute__((visibility("default"))) const egrc_backend_ops *egrc_backend_entry(void);

const egrc_backend_ops *egrc_backend_entry(void) {
#ifdef OLD_ABI
    table.abi_version = EGRC_BACKEND_ABI_VERSION - 1;
#else
    table.abi_version = EGRC_BACKEND_ABI_VERSION;
#endif
#ifdef DROP_OP
    table.DROP_OP = NULL;
#endif
    return &table;
}
