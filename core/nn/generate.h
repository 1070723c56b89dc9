/* Rollouts: batched autoregressive sampling with a KV cache.
 *
 * The prompts are prefilled with ONE batched training-style forward (right
 * padded to the longest prompt); each layer's keys and values for the prompt
 * positions are copied out of the forward's activations into the cache. Then
 * every decode step runs only the newest token of each active sequence, each
 * at its own position, through backend ops (no per-token allocation, O(len)
 * attention per row). Sampling runs as the backend's `sample` op where it
 * has one (the CPU backend does, with the host sampler; GPU backends sample
 * on the device, so only the sampled tokens and their statistics come back
 * each step), on the host (sampling.h) otherwise; the uniforms are always
 * drawn on the host from each sequence's generator. Finished sequences leave
 * the batch. */
#ifndef EGRC_GENERATE_H
#define EGRC_GENERATE_H

#include <stdint.h>

#include "model.h"
#include "base/sampling.h"

/* ---- the decoder: prefill + single-token steps over cache slots ---- */

typedef struct egrc_decoder egrc_decoder;

/* A cache of `max_seqs` slots of `max_len` positions each (all layers). For
 * learned-position models max_len must not exceed the model's positions. */
egrc_decoder *egrc_decoder_create(egrc_model *m, int max_seqs, int max_len, egrc_error *err);
void egrc_decoder_free(egrc_decoder *d);
/* Prefills slots 0..n-1 with prompts (n, stride) of lengths lens[i] >= 1.
 * Afterwards the outputs (below) hold, for each i, the next-token
 * distribution after prompt i. Uses (and resizes) the model's activations. */
int egrc_decoder_prefill(egrc_decoder *d, const int32_t *prompts, const int *lens, int n, int stride,
                         egrc_error *err);
/* Appends tokens[i] to slot slots[i] (distinct slots) at position
 * egrc_decoder_length(slot) and computes the next-token distribution of each
 * of the n rows. */
int egrc_decoder_step(egrc_decoder *d, const int32_t *tokens, const int *slots, int n, egrc_error *err);
/* Outputs of the last prefill/step, one row per input row, host memory, valid
 * until the next call: logits (n,V) fp32; log-sum-exp and entropy (n) at T=1,
 * computed by the backend's cross_entropy_forward exactly as in training. */
const float *egrc_decoder_logits(const egrc_decoder *d);
const float *egrc_decoder_lse(const egrc_decoder *d);
const float *egrc_decoder_entropy(const egrc_decoder *d);
/* Tokens in a slot's cache. */
int egrc_decoder_length(const egrc_decoder *d, int slot);

/* ---- rollouts ---- */

typedef enum egrc_finish {
    EGRC_FINISH_STOP,   /* emitted a stop token (kept as the last completion token) */
    EGRC_FINISH_LENGTH, /* reached max_new_tokens */
} egrc_finish;

typedef struct egrc_rollout {
    int n;          /* sequences */
    int max_prompt; /* longest prompt */
    int max_new;    /* the token budget: row stride of the per-token arrays */
    int stride;     /* max_prompt + max_new: row stride of tokens */
    int32_t *tokens;     /* (n, stride): prompt i, then its completion */
    int *prompt_len;     /* (n) */
    int *length;         /* (n) completion tokens, a final stop token included */
    egrc_finish *finish; /* (n) */
    /* Per completion token, (n, max_new); zero past length[i]. */
    float *logprob;        /* log p(token), full next-token distribution at T = 1 */
    float *entropy;        /* entropy of that distribution (nats) */
    float *sample_logprob; /* log-prob under the distribution actually sampled from
                              (logits/T, top-k then top-p, renormalised); 0 if greedy */
    float *sample_entropy; /* entropy of that sampling distribution; 0 if greedy */
    double prefill_seconds; /* the batched prompt forward and cache fill */
    double decode_seconds;  /* everything after: decode steps and sampling */
    int decode_steps;
    int graph_steps; /* decode steps replayed from a captured graph (generate.c; 0 without graph ops) */
} egrc_rollout;

/* Allocates a zeroed rollout (tests build their own batches with it). */
int egrc_rollout_alloc(egrc_rollout *r, int n, int max_prompt, int max_new, egrc_error *err);
void egrc_rollout_free(egrc_rollout *r);

static inline int32_t *egrc_rollout_completion(const egrc_rollout *r, int i) {
    return r->tokens + (size_t)i * r->stride + r->prompt_len[i];
}

/* Lays the sequences [first, first+count) of r (only those with keep[i] != 0
 * when keep is given) out as a right-padded training batch: tokens (rows, T)
 * and targets (rows, T) holding the next token at each position that predicts
 * a completion token, -1 elsewhere; T is the longest prompt + completion.
 * Completion token j of row b is then scored at b*T + prompt_len + j - 1.
 * index[b] receives the rollout index of row b. The arrays need count*stride
 * room. Returns the number of rows (0: nothing kept). */
int egrc_rollout_batch(const egrc_rollout *r, int first, int count, const unsigned char *keep, int32_t *tokens,
                       int32_t *targets, int *index, int *T);

/* Samples a completion for each of n_prompts prompts (row i at
 * prompts + i*prompt_stride, prompt_lens[i] tokens). For GRPO groups repeat a
 * prompt G times. Sequence i uses an egrc_rng seeded with cfg->seed + i, so
 * its tokens do not depend on the other sequences of the batch. The longest
 * prompt plus max_new_tokens must fit the model's learned positions. */
int egrc_generate(egrc_model *m, const int32_t *prompts, const int *prompt_lens, int n_prompts, int prompt_stride,
                  const egrc_sampling_config *cfg, egrc_rollout *out, egrc_error *err);
/* On a backend that captures graphs, egrc_generate keeps its decoder (KV
 * cache, decode buffers, graphs) on the model for the next call, which
 * reuses it when the rows and positions fit: an RL loop then captures its
 * decode steps once, not once per rollout. This frees it (egrc_model_free
 * does too); the next call builds a new one. */
void egrc_generate_release(egrc_model *m);

#endif
