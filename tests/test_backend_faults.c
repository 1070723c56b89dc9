/* The backend contract's error path (backend.h's Faults). Without an
 * argument: the CPU backend reports no fault and supports every model; the
 * loader refuses a plugin of another ABI version or with a required op
 * unset, naming the op; `egrc backends` leaves out ze, which does not exist.
 *
 * With a scenario argument (tests/gpuemu/CMakeLists.txt runs each), the
 * gpuemu plugin, whose emulated CUDA runtime injects the fault that
 * EGRC_GPUEMU_FAULT names. The scenario sets it before the runtime starts;
 * a process has one fault, so each scenario is its own run:
 *   async     a kernel faults; the fault shows at the next wait, as on a
 *             GPU, naming the calls since the last wait; it then sticks:
 *             later ops do nothing, every later wait, alloc and graph
 *             capture returns the same message;
 *   blocking  the same with CUDA_LAUNCH_BLOCKING=1: the op itself reports it;
 *   scratch   an op's scratch cannot be allocated: latched at once, as
 *             running out of memory;
 *   blas      cuBLASLt fails a matmul: latched as the library's status;
 *   rollout   a fault in the sample op inside a rollout's captured decode
 *             steps: egrc_generate returns -1 with it, and so does the next;
 *   supports  a head size the attention kernels cannot take is refused when
 *             the model is created; the widest they take is accepted. */
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "nn/generate.h"
#include "nn/model.h"
#include "test.h"
#include "test_models.h"

enum { COUNT = 1000 };

static int contains(const char *text, const char *part) { return strstr(text, part) != NULL; }

/* ---- without a device ---- */

static void test_cpu_reports_no_fault(void) {
    egrc_error err;
    egrc_backend *be = egrc_backend_open("cpu", 0, &err);
    CHECK_MSG(be != NULL, "%s", be ? "" : err.msg);
    if (!be) return;
    float *buffer = be->ops->alloc(be, COUNT * sizeof(float), &err);
    float host[COUNT], back[COUNT];
    for (int i = 0; i < COUNT; i++) host[i] = (float)i;
    be->ops->upload(be, buffer, host, sizeof host);
    CHECK(egrc_backend_synchronize(be, &err) == 0);
    CHECK(egrc_backend_download(be, back, buffer, sizeof back, &err) == 0);
    CHECK(memcmp(host, back, sizeof host) == 0);
    CHECK(be->ops->latched_error(be, &err) == 0);
    egrc_model_config cfg;
    CHECK(egrc_config_preset("llama-tiny", &cfg, &err) == 0);
    const egrc_model_shape shape = {cfg.d_model, cfg.n_head, cfg.n_kv_head, 1024, cfg.d_ff, cfg.vocab_size};
    CHECK_MSG(be->ops->supports(be, &shape, &err) == 0, "the CPU refuses head size 1024: %s", err.msg);
    be->ops->free(be, buffer);
    egrc_backend_close(be);
}

/* The plugins of tests/plugins, each refused with the reason. */
static void test_loader_refuses_broken_plugins(void) {
    struct {
        const char *name, *reason;
    } broken[] = {
        {"test_no_latched_error", "required op 'latched_error' unset"},
        {"test_no_adamw", "required op 'adamw' unset"},
    };
    egrc_error err;
    for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
        err.msg[0] = '\0';
        CHECK(egrc_backend_find(broken[i].name, &err) == NULL);
        CHECK_MSG(contains(err.msg, broken[i].reason), "%s: %s", broken[i].name, err.msg);
    }
    char old_abi[96];
    snprintf(old_abi, sizeof old_abi, "built for backend ABI %d, this egrc needs %d", EGRC_BACKEND_ABI_VERSION - 1,
             EGRC_BACKEND_ABI_VERSION);
    err.msg[0] = '\0';
    CHECK(egrc_backend_find("test_old_abi", &err) == NULL);
    CHECK_MSG(contains(err.msg, old_abi), "%s", err.msg);
}

static void test_ze_is_not_listed(void) {
    int listed_cpu = 0;
    for (const char *const *name = egrc_backend_known_names(); *name; name++) {
        CHECK_MSG(strcmp(*name, "ze") != 0, "egrc backends lists ze, which does not exist yet");
        listed_cpu += strcmp(*name, "cpu") == 0;
    }
    CHECK(listed_cpu == 1);
    egrc_error err;
    CHECK(egrc_backend_find("ze", &err) == NULL);
    CHECK_MSG(contains(err.msg, "no oneAPI Level Zero backend yet"), "--backend ze says: %s", err.msg);
}

/* ---- on gpuemu, with an injected fault ---- */

/* gpuemu in fp32 (the plain kernels), with `fault` to inject. */
static egrc_backend *open_gpuemu(const char *fault, int blocking) {
    setenv("EGRC_GPU_DTYPE", "fp32", 1);
    if (fault) setenv("EGRC_GPUEMU_FAULT", fault, 1);
    if (blocking) setenv("CUDA_LAUNCH_BLOCKING", "1", 1);
    egrc_error err;
    egrc_backend *be = egrc_backend_open("gpuemu", 0, &err);
    CHECK_MSG(be != NULL, "%s", be ? "" : err.msg);
    return be;
}

/* Every way back to the caller after a fault gives that fault's message. */
static void check_fault_sticks(egrc_backend *be, const char *message) {
    egrc_error err;
    CHECK(be->ops->latched_error(be, &err) == -1);
    CHECK_MSG(strcmp(err.msg, message) == 0, "latched_error says '%s', the fault was '%s'", err.msg, message);
    CHECK(egrc_backend_synchronize(be, &err) == -1);
    CHECK_MSG(strcmp(err.msg, message) == 0, "synchronize says '%s'", err.msg);
    CHECK(be->ops->alloc(be, 64, &err) == NULL);
    CHECK_MSG(strcmp(err.msg, message) == 0, "alloc says '%s'", err.msg);
    CHECK(be->ops->graph_begin(be, &err) == -1);
    CHECK_MSG(strcmp(err.msg, message) == 0, "graph_begin says '%s'", err.msg);
}

/* x and y of COUNT floats, uploaded; y = x + y once (call 3), checked after
 * a wait (call 4). Returns the backend or NULL. */
static egrc_backend *add_once(const char *fault, int blocking, float **x, float **y, float *host_y) {
    egrc_backend *be = open_gpuemu(fault, blocking);
    if (!be) return NULL;
    egrc_error err;
    float host_x[COUNT];
    *x = be->ops->alloc(be, COUNT * sizeof(float), &err);
    *y = be->ops->alloc(be, COUNT * sizeof(float), &err);
    for (int i = 0; i < COUNT; i++) host_x[i] = (float)i, host_y[i] = 0.5f;
    be->ops->upload(be, *x, host_x, sizeof host_x);
    be->ops->upload(be, *y, host_y, COUNT * sizeof(float));
    be->ops->add(be, *y, *x, COUNT);
    CHECK_MSG(egrc_backend_download(be, host_y, *y, COUNT * sizeof(float), &err) == 0, "%s", err.msg);
    int right = 1;
    for (int i = 0; i < COUNT; i++) right &= host_y[i] == (float)i + 0.5f;
    CHECK_MSG(right, "the add before the fault did not run");
    return be;
}

static void scenario_async(void) {
    float *x, *y, host_y[COUNT];
    egrc_backend *be = add_once("add_kernel:2", 0, &x, &y, host_y);
    if (!be) return;
    egrc_error err;
    be->ops->add(be, y, x, COUNT); /* call 5: faults on the device */
    CHECK_MSG(be->ops->latched_error(be, &err) == 0, "a device fault showed before any wait: %s", err.msg);
    be->ops->add(be, y, x, COUNT); /* call 6: the context is lost, nothing runs */
    for (int i = 0; i < COUNT; i++) host_y[i] = -1.0f;
    CHECK(egrc_backend_download(be, host_y, y, sizeof host_y, &err) == -1); /* call 7 finds it */
    const char *want[] = {"backend 'gpuemu': ",
                          "one of the 3 op calls since the last wait (calls 5 to 7, that is: add, add, download) failed",
                          "an illegal memory access was encountered (cudaErrorIllegalAddress)",
                          "CUDA_LAUNCH_BLOCKING=1"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        CHECK_MSG(contains(err.msg, want[i]), "'%s' lacks '%s'", err.msg, want[i]);
    CHECK_MSG(host_y[0] == -1.0f && host_y[COUNT - 1] == -1.0f, "a failed download wrote host memory");
    const egrc_error fault = err;
    be->ops->add(be, y, x, COUNT);
    check_fault_sticks(be, fault.msg);
    be->ops->free(be, x);
    be->ops->free(be, y);
    egrc_backend_close(be);
}

static void scenario_blocking(void) {
    float *x, *y, host_y[COUNT];
    egrc_backend *be = add_once("add_kernel:2", 1, &x, &y, host_y);
    if (!be) return;
    egrc_error err;
    be->ops->add(be, y, x, COUNT); /* call 5 */
    CHECK(be->ops->latched_error(be, &err) == -1);
    const char *want = "backend 'gpuemu': op add (call 5): an illegal memory access was encountered "
                       "(cudaErrorIllegalAddress)";
    CHECK_MSG(strcmp(err.msg, want) == 0, "'%s', not '%s'", err.msg, want);
    check_fault_sticks(be, err.msg);
    egrc_backend_close(be);
}

/* Allocations of the run: the RoPE table at open, x and out; the fourth is
 * sum_squares' scratch. */
static void scenario_scratch(void) {
    egrc_backend *be = open_gpuemu("cudaMallocAsync:4", 0);
    if (!be) return;
    egrc_error err;
    float *x = be->ops->alloc(be, COUNT * sizeof(float), &err), *out = x ? be->ops->alloc(be, sizeof(float), &err) : NULL;
    CHECK_MSG(out != NULL, "the injected allocation failure hit an alloc, not the scratch (%s): recount the "
              "allocations in this scenario", err.msg);
    if (out) {
        be->ops->zero(be, x, COUNT * sizeof(float)); /* call 1 */
        be->ops->sum_squares(be, out, x, COUNT);      /* call 2 */
        CHECK(be->ops->latched_error(be, &err) == -1);
        CHECK_MSG(contains(err.msg, "backend 'gpuemu': op sum_squares (call 2): out of GPU memory for") &&
                      contains(err.msg, "of scratch: out of memory (cudaErrorMemoryAllocation)"),
                  "%s", err.msg);
        check_fault_sticks(be, err.msg);
    }
    egrc_backend_close(be);
}

static void scenario_blas(void) {
    egrc_backend *be = open_gpuemu("cublasLtMatmul:1", 1);
    if (!be) return;
    egrc_error err;
    enum { N = 8, C = 16 };
    float host[C * C]; /* w (C,C); its first N rows are inp (N,C) too */
    for (int i = 0; i < C * C; i++) host[i] = (float)(i % 7) - 3.0f;
    float *inp = be->ops->alloc(be, N * C * sizeof(float), &err), *w = be->ops->alloc(be, sizeof host, &err);
    float *out = be->ops->alloc(be, N * C * sizeof(float), &err);
    CHECK(inp && w && out);
    if (inp && w && out) {
        be->ops->upload(be, inp, host, N * C * sizeof(float)); /* call 1 */
        be->ops->upload(be, w, host, sizeof host);               /* call 2 */
        be->ops->matmul_forward(be, out, inp, w, NULL, N, C, C); /* call 3 */
        CHECK(be->ops->latched_error(be, &err) == -1);
        const char *want = "backend 'gpuemu': op matmul_forward (call 3): cuBLASLt matmul: "
                           "CUBLAS_STATUS_EXECUTION_FAILED";
        CHECK_MSG(strcmp(err.msg, want) == 0, "'%s', not '%s'", err.msg, want);
        check_fault_sticks(be, err.msg);
    }
    egrc_backend_close(be);
}

/* The prefill samples once (the sample kernel's first run); each decode
 * step then runs it again, the second directly, the third from the graph
 * the second step's row count captured: that replay faults. */
static void scenario_rollout(void) {
    setenv("EGRC_GPU_GRAPHS", "1", 1);
    egrc_backend *be = open_gpuemu("sample_kernel:3", 0);
    if (!be) return;
    egrc_model *m = test_load_fixture(be, "tiny-llama");
    if (m) {
        enum { N = 2, P = 4 };
        int32_t prompts[N * P] = {1, 2, 3, 4, 5, 6, 7, 8};
        const int lens[N] = {P, P};
        egrc_sampling_config cfg = egrc_sampling_defaults();
        cfg.temperature = 0.0f;
        cfg.max_new_tokens = 6;
        egrc_rollout r;
        egrc_error err, fault;
        CHECK(egrc_generate(m, prompts, lens, N, P, &cfg, &r, &err) == -1);
        CHECK(be->ops->latched_error(be, &fault) == -1);
        CHECK_MSG(contains(err.msg, "decode step: ") && contains(err.msg, fault.msg), "%s", err.msg);
        CHECK_MSG(contains(fault.msg, "graph_launch, download)") && contains(fault.msg, "(cudaErrorIllegalAddress)"), "%s",
                  fault.msg);
        CHECK(r.tokens == NULL); /* a failed rollout keeps nothing */
        CHECK(egrc_generate(m, prompts, lens, N, P, &cfg, &r, &err) == -1);
        CHECK_MSG(contains(err.msg, fault.msg), "the second rollout says '%s'", err.msg);
        egrc_model_free(m);
    }
    egrc_backend_close(be);
}

static void scenario_supports(void) {
    egrc_backend *be = open_gpuemu(NULL, 0);
    if (!be) return;
    egrc_model_config cfg;
    egrc_error err;
    CHECK(egrc_config_preset("llama-tiny", &cfg, &err) == 0);
    cfg.head_dim = 256; /* EGRC_GPU_MAX_HEAD_DIM: the widest the attention kernels take */
    egrc_model *m = egrc_model_create(be, &cfg, &err);
    CHECK_MSG(m != NULL, "head size 256 refused: %s", m ? "" : err.msg);
    egrc_model_free(m);
    cfg.head_dim = 288;
    CHECK(egrc_model_create(be, &cfg, &err) == NULL);
    CHECK_MSG(contains(err.msg, "model config: backend 'gpuemu' cannot run it: head size 288 is larger than the 256"),
              "%s", err.msg);
    CHECK(be->ops->latched_error(be, &err) == 0); /* a refused model is no fault */
    egrc_backend_close(be);
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        void (*run)(void);
    } scenarios[] = {{"async", scenario_async},       {"blocking", scenario_blocking}, {"scratch", scenario_scratch},
                     {"blas", scenario_blas},         {"rollout", scenario_rollout},   {"supports", scenario_supports}};
    if (argc == 1) {
        test_cpu_reports_no_fault();
        test_loader_refuses_broken_plugins();
        test_ze_is_not_listed();
        return test_finish("test_backend_faults");
    }
    for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios; i++)
        if (argc == 2 && strcmp(argv[1], scenarios[i].name) == 0) {
            scenarios[i].run();
            char name[64];
            snprintf(name, sizeof name, "test_backend_faults %s", argv[1]);
            return test_finish(name);
        }
    fprintf(stderr, "usage: test_backend_faults [async|blocking|scratch|blas|rollout|supports]\n");
    return EGRC_EXIT_USAGE;
}
