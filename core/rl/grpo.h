/* Policy optimisation on rollouts: group-relative advantages (GRPO and
 * variants, the method's absolute positive-only advantage and decomposed
 * reward), and the PPO-clipped objective with optional k3 KL to a frozen
 * reference and an entropy bonus, reduced to per-token weights for
 * egrc_model_backward_weighted. */
#ifndef EGRC_GRPO_H
#define EGRC_GRPO_H

#include "nn/generate.h"
#include "nn/train.h"

typedef enum egrc_adv_mode {
    EGRC_ADV_GRPO,       /* (R - mean) / (std + 1e-6) per group, std with n-1 (torch.std) */
    EGRC_ADV_DR_GRPO,    /* R - mean per group */
    EGRC_ADV_ABSOLUTE,   /* beta * R, no normalisation (stage 1) */
    EGRC_ADV_DECOMPOSED, /* A_acc + w * A_len, each term group-normalised on its own (stage 2) */
} egrc_adv_mode;

typedef struct egrc_adv_config {
    egrc_adv_mode mode;
    int group_size;        /* samples per prompt, consecutive */
    float beta;            /* ABSOLUTE: A = beta * R */
    float length_weight;   /* DECOMPOSED: w */
    int positive_only;     /* zero negative advantages */
    int filter_zero_variance; /* DAPO: drop groups whose rewards are all equal from the loss */
} egrc_adv_config;

/* Advantages of n samples in groups of cfg->group_size. `reward` is R (for
 * DECOMPOSED: the accuracy term; a sample is correct when it is > 0) and
 * `length_reward` the DECOMPOSED length term (NULL otherwise). DECOMPOSED:
 *   A_acc = grpo(acc) over the group; A_len = grpo(len_term) over the
 *   group's correct samples (0 for wrong ones and when fewer than 2 are
 *   correct); A = A_acc + w * A_len, floored at 0 where A_acc > 0, so the
 *   length term never turns a correct sample of a mixed group negative.
 * A group is zero-variance when all its rewards (both terms) are equal;
 * *zero_variance_groups counts them. keep[i] (may be NULL) is 0 for samples
 * of filtered groups (their advantage is 0 too), else 1. */
int egrc_advantages(const egrc_adv_config *cfg, const float *reward, const float *length_reward, int n, float *adv,
                    unsigned char *keep, int *zero_variance_groups, egrc_error *err);

typedef enum egrc_loss_agg {
    EGRC_AGG_SEQ_MEAN_TOKEN_MEAN, /* mean over each sequence's tokens, then over sequences (GRPO) */
    EGRC_AGG_SEQ_MEAN_TOKEN_SUM,  /* sum over each sequence's tokens / the budget, mean over sequences (Dr. GRPO) */
    EGRC_AGG_TOKEN_MEAN,          /* mean over all tokens of the mini-batch (DAPO) */
} egrc_loss_agg;

typedef struct egrc_grpo_config {
    egrc_adv_config adv;
    float clip_low, clip_high; /* ratio = exp(logp_new - logp_old) clipped to [1 - clip_low, 1 + clip_high] */
    egrc_loss_agg agg;
    float kl_coef;      /* k3 KL to the reference model; 0 = off */
    float entropy_coef; /* entropy bonus (subtracted from the loss); 0 = off */
    int epochs;         /* optimiser passes over each rollout batch */
    int mini_batch;     /* sequences per optimiser step; 0 = the whole batch */
    int micro_batch;    /* sequences per forward/backward (gradient accumulation); 0 = mini_batch */
    egrc_optim_config optim;
} egrc_grpo_config;

/* GRPO, groups of 8, clip 0.2/0.2, token-mean per sequence, no KL, no
 * entropy bonus, one epoch, one mini-batch, AdamW lr 1e-6 without decay. */
egrc_grpo_config egrc_grpo_defaults(void);

typedef struct egrc_grpo_stats {
    float loss;          /* aggregated objective, mean over optimiser steps */
    float ratio_mean;    /* over all completion tokens of all passes */
    float clip_fraction; /* tokens whose surrogate gradient clipping removed */
    float kl;            /* mean k3 estimate (0 without a reference) */
    float entropy;       /* mean next-token entropy at T=1 of the training forwards */
    float reward_mean, advantage_mean;
    int zero_variance_groups;
    int filtered_sequences;
    int skipped_sequences; /* kept, but with advantage 0 and no KL/entropy term: no forward/backward
                              (per pass; ratio, clip fraction, KL and entropy are over the others) */
    float grad_norm;     /* mean pre-clip gradient norm over optimiser steps */
    int optimizer_steps;
} egrc_grpo_stats;

/* Log-probs of each completion token under `ref` (n, max_new), 0 past the
 * completion: the reference side of the KL term, computed once per batch. */
int egrc_grpo_reference_logprobs(egrc_model *ref, const egrc_rollout *r, int micro_batch, float *out,
                                 egrc_error *err);

/* The objective on sequences [first, first+count) of r, one mini-batch, with
 * the current parameters: per token
 *   l = -min(ratio A, clip(ratio) A) + kl_coef k3 - entropy_coef H,
 *   k3 = exp(ref - new) - (ref - new) - 1,  ratio = exp(new - r->logprob),
 * aggregated per cfg->agg over the kept sequences. With backward != 0 the
 * gradient is ACCUMULATED into the model's (zero it first). ref_logprob may
 * be NULL when kl_coef is 0. Forward only, it is the scalar that finite
 * differences check. */
int egrc_grpo_loss(egrc_model *m, const egrc_grpo_config *cfg, const egrc_rollout *r, const float *adv,
                   const unsigned char *keep, const float *ref_logprob, int first, int count, int backward,
                   double *loss, egrc_error *err);

/* One GRPO update on a rollout batch: advantages from the rewards, reference
 * log-probs (when kl_coef > 0; ref required then), then cfg->epochs passes of
 * mini-batch optimiser steps. *step is the optimiser step counter (schedule
 * and AdamW bias correction), advanced by each step. */
int egrc_grpo_step(egrc_model *policy, egrc_model *ref, const egrc_grpo_config *cfg, const egrc_rollout *r,
                   const float *reward, const float *length_reward, int *step, egrc_grpo_stats *stats,
                   egrc_error *err);

#endif
