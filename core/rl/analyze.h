/* Token-level entropy analysis of completions, as in the method's study of
 * the entropy conflict (docs/method.md): the entropy histogram of generated
 * tokens at T=1, which tokens fill the high-entropy tail, how large the
 * policy gradient on the logits is per entropy bucket under the accuracy and
 * the compression objectives, and whether the two objectives' parameter
 * gradients agree (cosine) on high- versus low-entropy tokens. */
#ifndef EGRC_ANALYZE_H
#define EGRC_ANALYZE_H

#include <stdio.h>

#include "nn/generate.h"

typedef struct egrc_analyze_config {
    int bins;            /* histogram buckets over [0, ln V] */
    float high_fraction; /* the "high-entropy" share of positions (top 20%) */
    int top_tokens;      /* high-entropy tokens to report, by count */
    int micro_batch;     /* sequences per forward; 0 = all */
    int gradients;       /* also compute the parameter-gradient cosines (4 backward sweeps) */
} egrc_analyze_config;

/* 10 buckets, top 20%, 20 tokens, one batch, gradients on. */
egrc_analyze_config egrc_analyze_defaults(void);

typedef struct egrc_entropy_bucket {
    float lo, hi; /* entropy range [lo, hi) in nats */
    long count;
    double mean_entropy;
    /* Means over the bucket's tokens of the policy-gradient norm on the
     * logits, |e_a - p| = sqrt(1 - 2 p_a + sum_v p_v^2), alone and scaled by
     * the sequence's |advantage| under each objective. */
    double logit_grad;
    double acc_grad, comp_grad;
} egrc_entropy_bucket;

typedef struct egrc_token_count {
    int32_t token;
    long high; /* occurrences at high-entropy positions */
    long all;  /* occurrences at all completion positions */
} egrc_token_count;

typedef struct egrc_analysis {
    long tokens;
    double mean_entropy;
    float high_threshold; /* positions with entropy >= this are "high" */
    int n_bins;
    egrc_entropy_bucket *bins;
    egrc_entropy_bucket high, low;
    int n_top;
    egrc_token_count *top; /* by high count, then lower id */
    /* Parameter gradients of the per-token objectives sum A_i * (-log p)
     * over the high (or low) tokens, divided by their count: cosine between
     * the accuracy and compression gradients, and their norms. */
    int has_gradients;
    double cos_high, cos_low;
    double norm_acc_high, norm_comp_high, norm_acc_low, norm_comp_low;
} egrc_analysis;

/* Analyses the completions of r under m. adv_acc and adv_comp (n) are each
 * sequence's advantage under the accuracy and the compression objective (e.g.
 * from egrc_advantages over egrc_reward_accuracy and a length reward).
 * Overwrites the model's gradients when cfg->gradients is set. */
int egrc_analyze(egrc_model *m, const egrc_rollout *r, const float *adv_acc, const float *adv_comp,
                 const egrc_analyze_config *cfg, egrc_analysis *out, egrc_error *err);
void egrc_analysis_free(egrc_analysis *a);

/* A plain-text table. */
void egrc_analysis_print(const egrc_analysis *a, FILE *f);
/* The analysis as JSON text (malloc'd; NULL when out of memory). */
char *egrc_analysis_to_json(const egrc_analysis *a);
/* Writes that JSON to path atomically. */
int egrc_analysis_write_json(const egrc_analysis *a, const char *path, egrc_error *err);

#endif
