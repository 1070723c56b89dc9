/* Next-token sampling on the host: temperature, top-k, top-p (nucleus),
 * greedy. One call draws exactly one uniform from the caller's generator, so
 * a sequence's tokens depend only on its own generator and logits. */
#ifndef EGRC_SAMPLING_H
#define EGRC_SAMPLING_H

#include <stdint.h>

#include "error.h"
#include "rng.h"

#define EGRC_MAX_STOP_TOKENS 16
/* At or below this temperature sampling is greedy (argmax, lowest id on ties). */
#define EGRC_GREEDY_TEMPERATURE 1e-5f

typedef struct egrc_sampling_config {
    float temperature; /* <= EGRC_GREEDY_TEMPERATURE: greedy */
    float top_p;       /* in (0, 1]; 1 = off */
    int top_k;         /* <= 0 = off */
    int max_new_tokens;
    int n_stop;        /* a sequence ends after emitting any of stop_tokens */
    int32_t stop_tokens[EGRC_MAX_STOP_TOKENS];
    uint64_t seed;     /* sequence i draws from an egrc_rng seeded with seed + i */
} egrc_sampling_config;

/* temperature 1, top_p 1, top_k off, 256 new tokens, no stop tokens, seed 0. */
egrc_sampling_config egrc_sampling_defaults(void);
/* Checks ranges; messages name the field. */
int egrc_sampling_validate(const egrc_sampling_config *cfg, int vocab_size, egrc_error *err);
int egrc_sampling_is_stop(const egrc_sampling_config *cfg, int32_t token);

/* Scratch for one sequence: V weights and up to V candidates for sorting. */
typedef struct egrc_sample_candidate {
    float weight;
    int32_t id;
} egrc_sample_candidate;

typedef struct egrc_sampler {
    int vocab;
    float *weights;
    egrc_sample_candidate *candidates;
} egrc_sampler;

int egrc_sampler_init(egrc_sampler *s, int vocab, egrc_error *err);
void egrc_sampler_free(egrc_sampler *s);

/* The drawn token with its log-prob and the entropy of the distribution it
 * was drawn from: softmax(logits / T) restricted to the top-k tokens, then to
 * the nucleus (smallest prefix, by probability, whose renormalised mass
 * reaches top_p), and renormalised over what is kept. Greedy: logprob = entropy = 0. */
typedef struct egrc_sample {
    int32_t token;
    float logprob;
    float entropy;
} egrc_sample;

/* Samples from fp32 logits (V). Ties are broken by the lower id, so top_k = 1
 * and a tiny top_p both reduce to greedy. */
egrc_sample egrc_sample_token(egrc_sampler *s, const float *logits, const egrc_sampling_config *cfg, egrc_rng *rng);
/* The same with the uniform draw u in [0, 1) given: egrc_sample_token draws
 * u = egrc_rng_uniform(rng) when not greedy (no draw when greedy) and calls
 * this. It is the semantics of the backend op `sample` (backend.h), which the
 * CPU backend implements with it. */
egrc_sample egrc_sample_token_u(egrc_sampler *s, const float *logits, float temperature, float top_p, int top_k,
                                float u);

#endif
