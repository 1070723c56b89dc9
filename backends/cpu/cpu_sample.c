/* The CPU backend's `sample` op: the host sampler of core/base/sampling.c run on
 * each row, so rollouts on the CPU are bit for bit what host-side sampling
 * gives. T = 1 statistics come from cpu_cross_entropy_forward, as the
 * decoder's host path computes them. Rows run in parallel, each on its
 * thread's sampler scratch (kept in be->impl between calls: a sampler is
 * 12 bytes per vocabulary entry, too much to allocate per token). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../core/base/sampling.h"
#include "cpu_backend.h"

struct cpu_state {
    int vocab, n_samplers;
    egrc_sampler *samplers;
};

void cpu_state_free(egrc_backend *be) {
    cpu_state *st = be->impl;
    if (!st) return;
    for (int i = 0; i < st->n_samplers; i++) egrc_sampler_free(&st->samplers[i]);
    free(st->samplers);
    free(st);
    be->impl = NULL;
}

/* One sampler per OpenMP thread for vocabulary V; the contract gives ops no
 * error path, so running out of host memory here ends the process. */
static egrc_sampler *samplers_for(egrc_backend *be, int V) {
    const int threads = omp_get_max_threads();
    cpu_state *st = be->impl;
    if (st && st->vocab == V && st->n_samplers >= threads) return st->samplers;
    cpu_state_free(be);
    egrc_error err;
    st = calloc(1, sizeof *st);
    if (st) st->samplers = calloc((size_t)threads, sizeof *st->samplers);
    if (!st || !st->samplers) goto oom;
    be->impl = st;
    st->vocab = V;
    for (; st->n_samplers < threads; st->n_samplers++)
        if (egrc_sampler_init(&st->samplers[st->n_samplers], V, &err)) goto oom;
    return st->samplers;
oom:
    fprintf(stderr, "egrc: cpu backend: out of host memory for %d samplers of %d tokens\n", threads, V);
    exit(1);
}

void cpu_sample(egrc_backend *be, egrc_sample_result *out, const void *logits_, const egrc_sample_request *req, int N,
                int V) {
    if (N <= 0) return;
    const float *logits = logits_;
    egrc_sampler *samplers = samplers_for(be, V);
    float *stats = malloc((size_t)N * 3 * sizeof(float));
    int32_t *no_targets = malloc((size_t)N * sizeof(int32_t));
    if (!stats || !no_targets) {
        fprintf(stderr, "egrc: cpu backend: out of host memory sampling %d rows\n", N);
        exit(1);
    }
    float *loss = stats, *lse = stats + N, *entropy = stats + 2 * (size_t)N;
    for (int i = 0; i < N; i++) no_targets[i] = -1;
    cpu_cross_entropy_forward(be, loss, lse, entropy, logits, no_targets, N, V);
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < N; i++) {
        const float *row = logits + (size_t)i * V;
        egrc_sample s = egrc_sample_token_u(&samplers[omp_get_thread_num()], row, req[i].temperature, req[i].top_p,
                                            req[i].top_k, req[i].u);
        out[i].token = s.token;
        out[i].logprob = row[s.token] - lse[i];
        out[i].entropy = entropy[i];
        out[i].sample_logprob = s.logprob;
        out[i].sample_entropy = s.entropy;
    }
    free(stats);
    free(no_targets);
}
