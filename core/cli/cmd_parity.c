/* egrc parity MODEL_DIR REFERENCE.safetensors: runs the reference batch through
 * the model and compares with what Hugging Face computed (see
 * tests/data/tiny-llama/README.md for the keys). Errors are max |a-b|
 * over max |reference|, per tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "cli.h"
#include "nn/model_hf.h"
#include "io/safetensors.h"

/* fp32 activations: a few ulp of the largest value, with room for other
 * summation orders; gradients of small tensors (a bias, a norm weight) sum
 * many terms that cancel, hence 1e-4. bf16 activations keep 8 mantissa bits,
 * so whole-model results drift by about 1e-2 and more through a deep or
 * widely initialised model: their tolerances only catch gross errors, and
 * greedy tokens (which a near tie flips) are reported but not judged; the
 * exact check of a GPU backend is its fp32 mode (EGRC_GPU_DTYPE=fp32). */
typedef struct tolerances {
    double logits, loss, grads;
    int judge_greedy;
} tolerances;

static const tolerances fp32_tolerances = {1e-5, 1e-5, 1e-4, 1};
static const tolerances bf16_tolerances = {1e-1, 2e-2, 2e-1, 0};

typedef struct report {
    int failures;
    tolerances tol;
} report;

static double relative_error(const float *got, const float *want, size_t n) {
    double max_err = 0.0, max_ref = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (isnan(e)) return NAN; /* fails every tolerance check */
        if (e > max_err) max_err = e;
        if (fabs(want[i]) > max_ref) max_ref = fabs(want[i]);
    }
    return max_ref > 0.0 ? max_err / max_ref : max_err;
}

static void print_row(report *r, const char *what, double err, double tolerance) {
    int ok = err <= tolerance;
    if (!ok) r->failures++;
    printf("%-52s %12.3e %10.0e  %s\n", what, err, tolerance, ok ? "ok" : "FAIL");
}

/* Reads a reference tensor as float32 after checking its element count. */
static float *reference_f32(const egrc_safetensors *ref, const char *name, size_t count, egrc_error *err) {
    const egrc_st_tensor *t = egrc_safetensors_find(ref, name);
    if (!t) {
        egrc_fail(err, "reference has no tensor '%s'", name);
        return NULL;
    }
    float *out = malloc(count * sizeof(float));
    if (!out) return NULL;
    if (egrc_st_tensor_to_f32(t, out, (int64_t)count, err)) {
        free(out);
        return NULL;
    }
    return out;
}

static int32_t *reference_ids(const egrc_safetensors *ref, const char *name, int *rows, int *cols, egrc_error *err) {
    const egrc_st_tensor *t = egrc_safetensors_find(ref, name);
    if (!t || t->ndim != 2) {
        egrc_fail(err, "reference has no 2-D id tensor '%s'", name);
        return NULL;
    }
    int64_t *wide = malloc((size_t)t->numel * sizeof(int64_t));
    int32_t *ids = malloc((size_t)t->numel * sizeof(int32_t));
    if (!wide || !ids || egrc_st_tensor_to_i64(t, wide, t->numel, err)) {
        free(wide);
        free(ids);
        return NULL;
    }
    for (int64_t i = 0; i < t->numel; i++) ids[i] = (int32_t)wide[i];
    *rows = (int)t->shape[0];
    *cols = (int)t->shape[1];
    free(wide);
    return ids;
}

static int compare_gradients(egrc_model *m, const egrc_safetensors *ref, report *r, egrc_error *err) {
    int count;
    egrc_hf_tensor *tensors = egrc_hf_tensors(m, &count);
    float *grads = malloc(m->n_params * sizeof(float));
    float *hf = malloc(m->n_params * sizeof(float));
    int rc = -1;
    if (!tensors || !grads || !hf) {
        egrc_fail(err, "out of host memory");
        goto done;
    }
    if (egrc_backend_download(m->be, grads, m->grads, m->n_params * sizeof(float), err)) goto done;
    for (int i = 0; i < count; i++) {
        size_t n = (size_t)tensors[i].rows * tensors[i].cols;
        char key[128];
        snprintf(key, sizeof key, "grad.%s", tensors[i].name);
        float *want = reference_f32(ref, key, n, err);
        if (!want) goto done;
        egrc_hf_export(&tensors[i], grads, hf);
        print_row(r, key, relative_error(hf, want, n), r->tol.grads);
        free(want);
    }
    rc = 0;
done:
    free(hf);
    free(grads);
    free(tensors);
    return rc;
}

static int run_parity(egrc_model *m, const egrc_safetensors *ref, report *r, egrc_error *err) {
    int B, T;
    int32_t *tokens = reference_ids(ref, "input_ids", &B, &T, err);
    if (!tokens) return -1;
    const int V = m->cfg.vocab_size;
    size_t n = (size_t)B * T;
    int32_t *targets = malloc(n * sizeof(int32_t));
    float *logits = malloc(n * (size_t)V * sizeof(float));
    float *want_logits = reference_f32(ref, "logits", n * (size_t)V, err);
    float *want_loss = reference_f32(ref, "loss", 1, err);
    int rc = -1;
    if (!targets || !logits || !want_logits || !want_loss) goto done;
    /* HF's loss with labels = input_ids: position t predicts token t+1. */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) targets[b * T + t] = t + 1 < T ? tokens[b * T + t + 1] : -1;
    float loss;
    if (egrc_model_forward(m, tokens, targets, B, T, &loss, err)) goto done;
    egrc_model_download_logits(m, logits);
    if (m->be->ops->latched_error(m->be, err)) goto done; /* the logits are garbage: no row for them */
    print_row(r, "logits", relative_error(logits, want_logits, n * (size_t)V), r->tol.logits);
    print_row(r, "loss", relative_error(&loss, want_loss, 1), r->tol.loss);
    egrc_model_zero_grad(m);
    if (egrc_model_backward(m, 1.0f, err) || compare_gradients(m, ref, r, err)) goto done;

    int rows, cols;
    int32_t *greedy = reference_ids(ref, "greedy", &rows, &cols, err);
    if (!greedy) goto done;
    const int prompt = 8;
    int32_t *mine = malloc((size_t)cols * sizeof(int32_t));
    if (mine && cols > prompt) {
        memcpy(mine, greedy, prompt * sizeof(int32_t));
        if (egrc_model_greedy(m, mine, prompt, cols - prompt, err) == 0) {
            int same = 0;
            for (int i = 0; i < cols; i++) same += mine[i] == greedy[i];
            const char *verdict = same == cols ? "ok" : r->tol.judge_greedy ? "FAIL" : "differ (not judged)";
            printf("%-52s %9d/%-2d %10s  %s\n", "greedy tokens", same, cols, "all", verdict);
            if (same != cols && r->tol.judge_greedy) r->failures++;
            rc = 0;
        }
    } else {
        egrc_fail(err, "reference 'greedy' must hold more than %d tokens", prompt);
    }
    free(mine);
    free(greedy);
done:
    free(want_loss);
    free(want_logits);
    free(logits);
    free(targets);
    free(tokens);
    return rc;
}

int egrc_cmd_parity(int argc, char **argv) {
    const char *backend_name = "cpu";
    long device = 0;
    const char *positional[2] = {NULL, NULL};
    int n_positional = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) backend_name = argv[++i];
        else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
            if (egrc_cli_int("--device", argv[++i], 0, 1023, &device)) return EGRC_EXIT_USAGE;
        } else if (argv[i][0] != '-' && n_positional < 2) positional[n_positional++] = argv[i];
        else {
            fprintf(stderr, "egrc parity: unexpected argument '%s'\n", argv[i]);
            return EGRC_EXIT_USAGE;
        }
    }
    if (n_positional != 2)
        return egrc_cli_error(EGRC_EXIT_USAGE, "usage: egrc parity MODEL_DIR REFERENCE.safetensors [--backend NAME]",
                              NULL);
    egrc_error err;
    egrc_backend *be = egrc_backend_open(backend_name, (int)device, &err);
    if (!be) return egrc_cli_error(EGRC_EXIT_FAILURE, err.msg, NULL);
    egrc_model *m = egrc_model_load_hf(be, positional[0], &err);
    egrc_safetensors *ref = m ? egrc_safetensors_open(positional[1], &err) : NULL;
    int code = EGRC_EXIT_USAGE;
    if (ref) {
        report r = {0, be->act_dtype == EGRC_DTYPE_F32 ? fp32_tolerances : bf16_tolerances};
        printf("parity of %s (%s, %zu parameters) on %s (%s activations) against %s\n", positional[0],
               egrc_arch_name(m->cfg.arch), m->n_params, backend_name, egrc_dtype_name(be->act_dtype), positional[1]);
        if (be->act_dtype != EGRC_DTYPE_F32)
            printf("(loose tolerances for %s activations; EGRC_GPU_DTYPE=fp32 runs the exact check)\n",
                   egrc_dtype_name(be->act_dtype));
        printf("%-52s %12s %10s  %s\n", "check", "max rel err", "tolerance", "result");
        if (run_parity(m, ref, &r, &err)) {
            code = EGRC_EXIT_USAGE;
        } else {
            printf("%s: %d check%s failed\n", r.failures ? "FAIL" : "PASS", r.failures, r.failures == 1 ? "" : "s");
            code = r.failures ? EGRC_EXIT_FAILURE : EGRC_EXIT_OK;
        }
    }
    if (code == EGRC_EXIT_USAGE) fprintf(stderr, "egrc parity: %s\n", err.msg);
    egrc_safetensors_close(ref);
    egrc_model_free(m);
    egrc_backend_close(be);
    return code;
}
