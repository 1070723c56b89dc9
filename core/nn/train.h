/* Optimisation: AdamW with decoupled weight decay, global gradient-norm
 * clipping, a linear-warmup + cosine learning-rate schedule, and gradient
 * accumulation over micro-batches. */
#ifndef EGRC_TRAIN_H
#define EGRC_TRAIN_H

#include "model.h"

typedef struct egrc_optim_config {
    float lr;           /* peak learning rate */
    float min_lr;       /* floor of the cosine decay */
    int warmup_steps;   /* linear warmup from lr/warmup to lr */
    int total_steps;    /* cosine reaches min_lr here */
    float beta1, beta2, eps;
    float weight_decay; /* applied to matrices and embeddings, not to norms or biases */
    float grad_clip;    /* max global L2 norm; <= 0 disables */
} egrc_optim_config;

/* lr_max 3e-4, min_lr 3e-5, no warmup, cosine over total_steps, betas (0.9, 0.95),
 * eps 1e-8, weight decay 0.1, clip 1.0. */
egrc_optim_config egrc_optim_defaults(int total_steps);

/* Learning rate at 0-based step s:
 *   s < warmup:  lr * (s+1) / warmup
 *   otherwise:   min_lr + 0.5 * (1 + cos(pi * (s - warmup) / (total - warmup))) * (lr - min_lr) */
float egrc_lr_at(const egrc_optim_config *cfg, int step);

/* Global L2 norm of all gradients (one reduction over the gradient buffer). */
float egrc_model_grad_norm(egrc_model *m);

/* Zeroes the AdamW moments, if any: a new optimizer run on a model that an
 * earlier one trained (RL after SFT in one process) must not inherit its
 * momentum, whose bias correction assumed the earlier run's step count. */
void egrc_model_reset_optimizer(egrc_model *m);

/* Clips (if configured) and applies one AdamW update at 0-based `step`,
 * allocating the moments on first use. Returns the pre-clip gradient norm. */
int egrc_model_optimizer_step(egrc_model *m, const egrc_optim_config *cfg, int step, float *grad_norm,
                              egrc_error *err);

/* One full training step: zero grads, forward+backward over `micro_batches`
 * micro-batches (each B x T tokens and targets, laid out one after another)
 * with the loss averaged over them, then the optimizer step. *loss receives
 * the mean loss. loss_weight multiplies the gradient (not *loss): batches
 * drawn by length hold very different numbers of targets, and weighting each
 * by its share of the targets gives every target token the same weight, as
 * the mean over all of them would. 1 for a plain step. */
int egrc_train_step(egrc_model *m, const egrc_optim_config *cfg, int step, const int32_t *tokens,
                    const int32_t *targets, int micro_batches, int B, int T, float loss_weight, float *loss,
                    float *grad_norm, egrc_error *err);

#endif
