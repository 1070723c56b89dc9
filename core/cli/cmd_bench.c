/* egrc bench train: training throughput of a model on one backend, next to
 * the throughput of a large GEMM (in the backend's activation dtype) run
 * through the same backend in the same process, so the figure reads as "fraction of what this machine's GEMM can
 * do" whatever the machine.
 * Its MFU column divides the model's FLOP/s by the device's datasheet peak
 * (core/cli/device_peaks.c, or --peak-tflops).
 * egrc bench generate: rollout speed with the KV cache (prefill, decode step,
 * new tokens per second, and the weight bytes read per second). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "backends/backend.h"
#include "cli.h"
#include "cmd_bench_grade.h"
#include "device_peaks.h"
#include "memory_bandwidth.h"
#include "nn/generate.h"
#include "nn/model_hf.h"
#include "base/rng.h"
#include "nn/train.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Multiply-adds of a training step, counted as 2 FLOPs each: 6 per parameter
 * per token for the matmuls (forward 2, backward 4), the position table
 * excluded since it is only added; plus causal attention, whose score and
 * value products cost 2*T*D per head per token forward on average (half the
 * T x T square), times 3 for forward + backward. */
static double training_flops(const egrc_model *m, int B, int T) {
    const egrc_model_config *c = &m->cfg;
    double matmul_params = (double)m->n_params;
    if (m->wpe != EGRC_ABSENT) matmul_params -= (double)c->max_seq * c->d_model;
    double tokens = (double)B * T;
    double attention = 3.0 * 2.0 * 2.0 * (T / 2.0) * c->head_dim * c->n_head * c->n_layer;
    return tokens * (6.0 * matmul_params + attention);
}

/* GFLOP/s of an n^3 GEMM through the backend's matmul op, in its act_dtype
 * (the model's GEMMs): an sgemm on the CPU, bf16 with fp32 accumulation on a
 * GPU in its default mode. The operands are uploaded as fp32 and converted. */
static double gemm_gflops(egrc_backend *be, int n, egrc_error *err) {
    size_t count = (size_t)n * n, f32_bytes = count * sizeof(float);
    size_t act_bytes = count * egrc_dtype_size(be->act_dtype);
    float *host = malloc(f32_bytes);
    void *staging = be->ops->alloc(be, f32_bytes, err);
    void *a = staging ? be->ops->alloc(be, act_bytes, err) : NULL, *b = a ? be->ops->alloc(be, act_bytes, err) : NULL;
    void *c = b ? be->ops->alloc(be, act_bytes, err) : NULL;
    double best = -1.0;
    if (host && c) {
        egrc_rng rng;
        egrc_rng_seed(&rng, 7);
        for (size_t i = 0; i < count; i++) host[i] = egrc_rng_uniform(&rng) - 0.5f;
        be->ops->upload(be, staging, host, f32_bytes);
        be->ops->to_act(be, a, staging, count);
        be->ops->to_act(be, b, staging, count);
        for (int rep = 0; rep < 4; rep++) {
            double start = now_seconds();
            be->ops->matmul_forward(be, c, a, b, NULL, n, n, n);
            if (egrc_backend_synchronize(be, err)) {
                best = -1.0;
                break;
            }
            double gflops = 2.0 * n * (double)n * n / (now_seconds() - start) / 1e9;
            if (rep > 0 && gflops > best) best = gflops; /* rep 0 warms up */
        }
    } else {
        egrc_fail(err, "cannot allocate the GEMM benchmark's %zu-byte matrices", f32_bytes + 3 * act_bytes);
    }
    if (c) be->ops->free(be, c);
    if (b) be->ops->free(be, b);
    if (a) be->ops->free(be, a);
    if (staging) be->ops->free(be, staging);
    free(host);
    return best;
}

/* Flags common to both benchmarks, plus each one's integer flags. */
typedef struct int_flag {
    const char *name;
    long min, max;
    long *value;
} int_flag;

typedef struct bench_setup {
    const char *model_name, *backend_name;
    long device;
    double peak_tflops; /* --peak-tflops; 0: from the table of known devices */
    egrc_backend *be;
    egrc_model *m;
} bench_setup;

/* Parses "--model/--backend/--device" and the given integer flags, then
 * opens the backend and the model. Returns EGRC_EXIT_OK or the exit code to
 * leave with (the message already printed). */
static int bench_open(const char *what, int argc, char **argv, const int_flag *ints, int n_ints, bench_setup *setup) {
    setup->model_name = NULL;
    setup->backend_name = "cpu";
    setup->device = 0;
    setup->peak_tflops = 0.0;
    for (int i = 3; i < argc; i += 2) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!value) {
            fprintf(stderr, "egrc bench %s: %s needs a value\n", what, flag);
            return EGRC_EXIT_USAGE;
        }
        int known = 1;
        if (strcmp(flag, "--model") == 0) setup->model_name = value;
        else if (strcmp(flag, "--backend") == 0) setup->backend_name = value;
        else if (strcmp(flag, "--device") == 0) {
            if (egrc_cli_int(flag, value, 0, 1023, &setup->device)) return EGRC_EXIT_USAGE;
        } else if (strcmp(flag, "--peak-tflops") == 0) {
            char *end;
            setup->peak_tflops = strtod(value, &end);
            if (!*value || *end || !(setup->peak_tflops > 0.0 && setup->peak_tflops < 1e6)) {
                fprintf(stderr, "egrc: --peak-tflops expects a positive number of TFLOP/s, got '%s'\n", value);
                return EGRC_EXIT_USAGE;
            }
        } else {
            known = 0;
            for (int k = 0; k < n_ints && !known; k++) {
                if (strcmp(flag, ints[k].name) != 0) continue;
                if (egrc_cli_int(flag, value, ints[k].min, ints[k].max, ints[k].value)) return EGRC_EXIT_USAGE;
                known = 1;
            }
        }
        if (!known) {
            fprintf(stderr, "egrc bench %s: unknown flag '%s' (flags: --model --backend --device --peak-tflops", what,
                    flag);
            for (int k = 0; k < n_ints; k++) fprintf(stderr, " %s", ints[k].name);
            fprintf(stderr, ")\n");
            return EGRC_EXIT_USAGE;
        }
    }
    if (!setup->model_name) {
        fprintf(stderr, "egrc: bench %s: --model NAME|DIR is required\n", what);
        return EGRC_EXIT_USAGE;
    }
    egrc_error err;
    setup->be = egrc_backend_open(setup->backend_name, (int)setup->device, &err);
    if (!setup->be) return egrc_cli_error(EGRC_EXIT_FAILURE, err.msg, NULL);
    setup->m = egrc_model_open(setup->be, setup->model_name, 1234, &err);
    if (!setup->m) {
        egrc_backend_close(setup->be);
        return egrc_cli_error(EGRC_EXIT_USAGE, err.msg, NULL);
    }
    return EGRC_EXIT_OK;
}

static void bench_close(bench_setup *setup) {
    egrc_model_free(setup->m);
    egrc_backend_close(setup->be);
}

/* Says which peak the MFU column divides by (--peak-tflops, egrc's table of
 * devices, or none) and writes the MFU of `model_gflops` into mfu ("-"
 * without a peak). */
static void print_peak(const bench_setup *setup, const char *device_name, double model_gflops, char *mfu,
                       size_t mfu_size) {
    const egrc_dtype dtype = setup->be->act_dtype;
    const char *entry = NULL;
    const double peak =
        setup->peak_tflops > 0.0 ? setup->peak_tflops : egrc_device_peak_tflops(device_name, dtype, &entry);
    if (setup->peak_tflops > 0.0)
        printf("MFU against %.1f TFLOP/s (--peak-tflops)\n", peak);
    else if (entry)
        printf("MFU against %.1f TFLOP/s, the %s peak of the %s (dense, datasheet)\n", peak, egrc_dtype_name(dtype),
               entry);
    else
        printf("MFU: '%s' is not in egrc's table of device peaks: pass --peak-tflops (dense %s TFLOP/s)\n",
               device_name, egrc_dtype_name(dtype));
    if (peak > 0.0) snprintf(mfu, mfu_size, "%.1f%%", 100.0 * model_gflops / (peak * 1e3));
    else snprintf(mfu, mfu_size, "-");
}

static int bench_train(int argc, char **argv) {
    long B = 4, T = 64, steps = 5;
    const int_flag ints[] = {{"--batch", 1, 65536, &B}, {"--seq", 2, 1 << 20, &T}, {"--steps", 1, 100000, &steps}};
    bench_setup setup;
    int opened = bench_open("train", argc, argv, ints, 3, &setup);
    if (opened != EGRC_EXIT_OK) return opened;
    egrc_backend *be = setup.be;
    egrc_model *m = setup.m;
    const char *model_name = setup.model_name, *backend_name = setup.backend_name;
    egrc_error err;
    size_t n = (size_t)B * T;
    int32_t *tokens = malloc((n + 1) * sizeof(int32_t));
    if (!tokens) {
        bench_close(&setup);
        return egrc_cli_error(EGRC_EXIT_FAILURE, "out of host memory", NULL);
    }
    egrc_rng rng;
    egrc_rng_seed(&rng, 42);
    for (size_t i = 0; i <= n; i++) tokens[i] = (int32_t)egrc_rng_below(&rng, (uint32_t)m->cfg.vocab_size);
    egrc_optim_config opt = egrc_optim_defaults((int)steps + 1);
    int code = EGRC_EXIT_OK;
    double total = 0.0;
    float loss = 0.0f;
    /* Step 0 allocates activations and optimizer state: not timed. */
    for (int s = 0; s <= steps; s++) {
        double start = now_seconds();
        if (egrc_train_step(m, &opt, s, tokens, tokens + 1, 1, (int)B, (int)T, 1.0f, &loss, NULL, &err)) {
            code = egrc_cli_error(EGRC_EXIT_FAILURE, err.msg, NULL);
            break;
        }
        if (egrc_backend_synchronize(be, &err)) {
            code = egrc_cli_error(EGRC_EXIT_FAILURE, err.msg, NULL);
            break;
        }
        if (s > 0) total += now_seconds() - start;
    }
    double gemm = code == EGRC_EXIT_OK ? gemm_gflops(be, 2048, &err) : -1.0;
    /* Without the GEMM's number the row still prints; after a fault it does not. */
    if (code == EGRC_EXIT_OK && gemm < 0.0 && be->ops->latched_error(be, &err))
        code = egrc_cli_error(EGRC_EXIT_FAILURE, err.msg, NULL);
    if (code == EGRC_EXIT_OK) {
        double step_s = total / (double)steps;
        double model_gflops = training_flops(m, (int)B, (int)T) / step_s / 1e9;
        struct rusage usage;
        getrusage(RUSAGE_SELF, &usage);
        egrc_device_info info;
        if (be->ops->device_info(be->device, &info, &err)) snprintf(info.name, sizeof info.name, "?");
        printf("bench train: %s (%zu parameters), backend %s (%s, %s activations), batch %ld x %ld, %ld timed steps\n",
               model_name, m->n_params, backend_name, info.name, egrc_dtype_name(be->act_dtype), B, T, steps);
        char mfu[32];
        print_peak(&setup, info.name, model_gflops, mfu, sizeof mfu);
        printf("%-10s %-12s %-14s %-16s %-16s %-12s %-12s %s\n", "ms/step", "tokens/s", "model GFLOP/s",
               "GEMM GFLOP/s", "model/GEMM", "last loss", "peak RSS MiB", "MFU");
        printf("%-10.1f %-12.1f %-14.1f %-16.1f %-16.2f %-12.4f %-12.0f %s\n", 1e3 * step_s, (double)n / step_s,
               model_gflops, gemm, gemm > 0 ? model_gflops / gemm : 0.0, loss, usage.ru_maxrss / 1024.0, mfu);
    }
    free(tokens);
    bench_close(&setup);
    return code;
}

/* Random prompts of equal length, sampled at T=1 without stop tokens so every
 * sequence runs the whole budget. A short untimed run first pays for the
 * first-touch allocations. */
static int bench_generate(int argc, char **argv) {
    long B = 4, P = 32, new_tokens = 64;
    const int_flag ints[] = {
        {"--batch", 1, 65536, &B}, {"--prompt-len", 1, 1 << 20, &P}, {"--new-tokens", 1, 1 << 20, &new_tokens}};
    bench_setup setup;
    int opened = bench_open("generate", argc, argv, ints, 3, &setup);
    if (opened != EGRC_EXIT_OK) return opened;
    egrc_backend *be = setup.be;
    egrc_model *m = setup.m;
    const char *model_name = setup.model_name, *backend_name = setup.backend_name;
    egrc_error err;
    int32_t *prompts = malloc((size_t)B * P * sizeof(int32_t));
    int *lens = malloc((size_t)B * sizeof(int));
    int code = EGRC_EXIT_OK;
    egrc_rollout r = {0};
    if (!prompts || !lens) {
        code = egrc_cli_error(EGRC_EXIT_FAILURE, "out of host memory", NULL);
        goto done;
    }
    egrc_rng rng;
    egrc_rng_seed(&rng, 42);
    for (long i = 0; i < B * P; i++) prompts[i] = (int32_t)egrc_rng_below(&rng, (uint32_t)m->cfg.vocab_size);
    for (long i = 0; i < B; i++) lens[i] = (int)P;
    /* checked here too so that the short warm-up cannot pass where the real run would not */
    if (!egrc_config_uses_rope(&m->cfg) && P + new_tokens > m->cfg.max_seq) {
        fprintf(stderr, "egrc: bench generate: --prompt-len %ld plus --new-tokens %ld exceeds the model's %d positions\n",
                P, new_tokens, m->cfg.max_seq);
        code = EGRC_EXIT_USAGE;
        goto done;
    }
    egrc_sampling_config cfg = egrc_sampling_defaults();
    cfg.max_new_tokens = new_tokens < 2 ? (int)new_tokens : 2;
    if (egrc_generate(m, prompts, lens, (int)B, (int)P, &cfg, &r, &err)) {
        /* a bad flag is a usage error; a fault of the backend is not */
        code = egrc_cli_error(be->ops->latched_error(be, NULL) ? EGRC_EXIT_FAILURE : EGRC_EXIT_USAGE, err.msg, NULL);
        goto done;
    }
    egrc_rollout_free(&r);
    /* The timed call builds its own decoder, captures included, as the first rollout of a run does. */
    egrc_generate_release(m);
    cfg.max_new_tokens = (int)new_tokens;
    if (egrc_generate(m, prompts, lens, (int)B, (int)P, &cfg, &r, &err)) {
        code = egrc_cli_error(EGRC_EXIT_FAILURE, err.msg, NULL);
        goto done;
    }
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    egrc_device_info info;
    if (be->ops->device_info(be->device, &info, &err)) snprintf(info.name, sizeof info.name, "?");
    const double total = r.prefill_seconds + r.decode_seconds;
    printf("bench generate: %s (%zu parameters), backend %s (%s), batch %ld, prompt %ld, %ld new tokens\n", model_name,
           m->n_params, backend_name, info.name, B, P, new_tokens);
    /* Before/after for graphs: run with EGRC_GPU_GRAPHS=0 and =1. A step is
     * replayed from a graph from the second step at its row count on. */
    printf("graphs: %d of %d decode steps replayed from a captured graph%s\n", r.graph_steps, r.decode_steps,
           be->ops->graph_begin ? "" : " (the backend has no graphs)");
    /* A decode step reads every weight once: at small batches its speed is
     * bounded by memory bandwidth, and this is the rate it reached. */
    const double step_s = r.decode_steps ? r.decode_seconds / r.decode_steps : 0.0;
    const double weight_bytes = (double)m->n_params * (double)egrc_dtype_size(be->act_dtype);
    /* Model FLOPs of the whole rollout, prefill included: 2 per parameter per
     * token (the forward's matmuls), the usual count for inference. */
    const double tokens_per_s = (double)(B * new_tokens) / total;
    char mfu[32];
    print_peak(&setup, info.name, 2.0 * (double)m->n_params * (double)(B * (P + new_tokens)) / total / 1e9, mfu,
               sizeof mfu);
    /* The bound of a decode step on the CPU backend: host memory read, measured now. A GPU's
     * device memory would need a kernel of its own, which the backend contract does not have. */
    const int on_host = strcmp(be->ops->name, "cpu") == 0;
    const double memory = on_host ? egrc_host_read_gbps() : -1.0;
    const double weight_gbps = step_s > 0.0 ? weight_bytes / step_s / 1e9 : 0.0;
    char memory_text[32] = "n/a", ratio_text[32] = "n/a";
    if (memory > 0.0) {
        snprintf(memory_text, sizeof memory_text, "%.1f", memory);
        snprintf(ratio_text, sizeof ratio_text, "%.2f", weight_gbps / memory);
    }
    printf("%-12s %-16s %-14s %-14s %-12s %-12s %-14s %-14s %s\n", "prefill ms", "decode ms/step", "new tokens/s",
           "decode steps", "peak RSS MiB", "weight GB/s", "memory GB/s", "weight/memory", "MFU");
    printf("%-12.1f %-16.2f %-14.1f %-14d %-12.0f %-12.1f %-14s %-14s %s\n", 1e3 * r.prefill_seconds, 1e3 * step_s,
           tokens_per_s, r.decode_steps, usage.ru_maxrss / 1024.0, weight_gbps, memory_text, ratio_text, mfu);
    if (!on_host) printf("memory GB/s: measured for the CPU backend only (host memory read, same run)\n");
done:
    egrc_rollout_free(&r);
    free(prompts);
    free(lens);
    bench_close(&setup);
    return code;
}

int egrc_cmd_bench(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[2], "train") == 0) return bench_train(argc, argv);
    if (argc >= 3 && strcmp(argv[2], "generate") == 0) return bench_generate(argc, argv);
    if (argc >= 3 && strcmp(argv[2], "grade") == 0) return egrc_cmd_bench_grade(argc, argv);
    return egrc_cli_error(EGRC_EXIT_USAGE,
                          "usage: egrc bench train --model NAME|DIR [--batch B] [--seq T] [--steps N] [--peak-tflops P]\n"
                          "       egrc bench generate --model NAME|DIR [--batch B] [--prompt-len P] [--new-tokens N]\n"
                          "                           [--peak-tflops P]\n"
                          "       egrc bench grade FILE",
                          NULL);
}
