/* Reward functions: the method's stage-1 exponential length reward and
 * stage-2 decomposed terms, and the length-aware baselines of
 * docs/method.md. Pure functions over arrays of n samples; group-wise ones
 * take consecutive groups of `group` samples (n a multiple of group), the
 * layout egrc_generate produces when each prompt is repeated G times.
 *
 * correct[i] != 0 marks a correct final answer (the caller's verifier; a
 * rollout clipped at the budget without an answer is not correct);
 * length[i] is the completion length in tokens. */
#ifndef EGRC_REWARDS_H
#define EGRC_REWARDS_H

#include "base/error.h"

/* Stage 1: R = r^(len/L) = exp(-lambda len), lambda = -ln(r)/L, for correct
 * samples (1 at length 0, r at the budget L); 0 otherwise. r in (0, 1], L > 0. */
int egrc_reward_exp_length(const int *correct, const int *length, int n, float r, int budget, float *out,
                           egrc_error *err);

/* Stage 2, decomposed: acc = c; len_term = 1 - len/L for correct samples, 0
 * otherwise. The advantage (grpo.h, EGRC_ADV_DECOMPOSED) normalises each term
 * on its own and counts the length term among correct samples only. */
int egrc_reward_decomposed(const int *correct, const int *length, int n, int budget, float *acc, float *len_term,
                           egrc_error *err);

/* Accuracy only: r = c. */
void egrc_reward_accuracy(const int *correct, int n, float *out);

/* Kimi 1.5 length penalty, per group: lam = 0.5 - (L - Lmin)/(Lmax - Lmin)
 * (0 when Lmax == Lmin), r = c + (c ? lam : min(0, lam)). */
int egrc_reward_kimi(const int *correct, const int *length, int n, int group, float *out, egrc_error *err);

/* ThinkPrune: r = c if L <= limit, else 0 (the caller tightens `limit` over rounds). */
void egrc_reward_thinkprune(const int *correct, const int *length, int n, int limit, float *out);

/* L1 (LCPO, exact): r = c - alpha * |target[i] - L|. */
void egrc_reward_l1(const int *correct, const int *length, const int *target, int n, float alpha, float *out);

/* Arora & Zanette: r = c * (1 - alpha * sigmoid(z)), z the z-score of L among
 * the group's correct samples (population std; z = 0 when that std is 0). */
int egrc_reward_arora_zanette(const int *correct, const int *length, int n, int group, float alpha, float *out,
                              egrc_error *err);

/* LC-R1 style: r = c + (1 - L / Lmax_correct) on correct samples, Lmax_correct
 * the longest correct sample of the group; 0 on wrong ones. */
int egrc_reward_lc_r1(const int *correct, const int *length, int n, int group, float *out, egrc_error *err);

#endif
