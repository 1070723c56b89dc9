/* The CPU backend's `sample` op: the host sampler of core/base/sampling.c run on
 * each row, so rollouts on the CPU are bit for bit what host-side sampling
 * gives. T = 1 statistics come from cpu_cross_entropy_forward, as the
 * decoder's host path computes them. Rows run in parallel, each on its
 * thread's sampler scratch, kept in the backend's state between calls. */
#include <omp.h>
#include <stdlib.h>

#include "cpu_backend.h"

void cpu_samplers_free(cpu_state *st) {
    for (int i = 0; i < st->n_samplers; i++) egrc_sampler_free(&st->samplers[i]);
    free(st->samplers);
    st->samplers = NULL;
    st->n_samplers = st->vocab = 0;
}

/* One sampler per OpenMP thread for vocabulary V; NULL, with the fault
 * latched, when host memory runs out. */
static egrc_sampler *samplers_for(egrc_backend *be, int V) {
    const int threads = omp_get_max_threads();
    cpu_state *st = be->impl;
    if (st->samplers && st->vocab == V && st->n_samplers >= threads) return st->samplers;
    cpu_samplers_free(st);
    egrc_error err;
    st->samplers = calloc((size_t)threads, sizeof *st->samplers);
    if (!st->samplers) {
        cpu_latch(be, "sample", "out of host memory for %d samplers of %d tokens", threads, V);
        return NULL;
    }
    st->vocab = V;
    for (; st->n_samplers < threads; st->n_samplers++)
        if (egrc_sampler_init(&st->samplers[st->n_samplers], V, &err)) {
            cpu_latch(be, "sample", "%s", err.msg);
            cpu_samplers_free(st);
            return NULL;
        }
    return st->samplers;
}

void cpu_sample(egrc_backend *be, egrc_sample_result *out, const void *logits_, const egrc_sample_request *req, int N,
                int V) {
    if (N <= 0) return;
    const float *logits = logits_;
    egrc_sampler *samplers = samplers_for(be, V);
    float *stats = malloc((size_t)N * 3 * sizeof(float));
    int32_t *no_targets = malloc((size_t)N * sizeof(int32_t));
    if (!samplers || !stats || !no_targets) {
        if (samplers) cpu_latch(be, "sample", "out of host memory sampling %d rows", N);
        free(stats);
        free(no_targets);
        return;
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
