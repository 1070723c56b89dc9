/* Reward functions; formulas in rewards.h and docs/method.md. */
#include "rewards.h"

#include <math.h>
#include <stdlib.h>

static int check_groups(int n, int group, egrc_error *err) {
    if (n < 0 || group < 1 || n % group != 0)
        return egrc_fail(err, "rewards: %d samples do not form groups of %d", n, group);
    return 0;
}

int egrc_reward_exp_length(const int *correct, const int *length, int n, float r, int budget, float *out,
                           egrc_error *err) {
    if (!(r > 0.0f && r <= 1.0f)) return egrc_fail(err, "exponential length reward: r must lie in (0, 1], got %g", r);
    if (budget < 1) return egrc_fail(err, "exponential length reward: the budget must be positive, got %d", budget);
    const double lambda = -log((double)r) / budget;
    for (int i = 0; i < n; i++) out[i] = correct[i] ? (float)exp(-lambda * length[i]) : 0.0f;
    return 0;
}

int egrc_reward_decomposed(const int *correct, const int *length, int n, int budget, float *acc, float *len_term,
                           egrc_error *err) {
    if (budget < 1) return egrc_fail(err, "decomposed reward: the budget must be positive, got %d", budget);
    for (int i = 0; i < n; i++) {
        acc[i] = correct[i] ? 1.0f : 0.0f;
        len_term[i] = correct[i] ? 1.0f - (float)length[i] / (float)budget : 0.0f;
    }
    return 0;
}

void egrc_reward_accuracy(const int *correct, int n, float *out) {
    for (int i = 0; i < n; i++) out[i] = correct[i] ? 1.0f : 0.0f;
}

int egrc_reward_kimi(const int *correct, const int *length, int n, int group, float *out, egrc_error *err) {
    if (check_groups(n, group, err)) return -1;
    for (int g = 0; g < n; g += group) {
        int lo = length[g], hi = length[g];
        for (int i = g; i < g + group; i++) {
            if (length[i] < lo) lo = length[i];
            if (length[i] > hi) hi = length[i];
        }
        for (int i = g; i < g + group; i++) {
            float lam = hi == lo ? 0.0f : 0.5f - (float)(length[i] - lo) / (float)(hi - lo);
            out[i] = correct[i] ? 1.0f + lam : fminf(0.0f, lam);
        }
    }
    return 0;
}

void egrc_reward_thinkprune(const int *correct, const int *length, int n, int limit, float *out) {
    for (int i = 0; i < n; i++) out[i] = correct[i] && length[i] <= limit ? 1.0f : 0.0f;
}

void egrc_reward_l1(const int *correct, const int *length, const int *target, int n, float alpha, float *out) {
    for (int i = 0; i < n; i++) out[i] = (correct[i] ? 1.0f : 0.0f) - alpha * (float)abs(target[i] - length[i]);
}

int egrc_reward_arora_zanette(const int *correct, const int *length, int n, int group, float alpha, float *out,
                              egrc_error *err) {
    if (check_groups(n, group, err)) return -1;
    for (int g = 0; g < n; g += group) {
        double sum = 0.0, sq = 0.0;
        int count = 0;
        for (int i = g; i < g + group; i++) {
            if (!correct[i]) continue;
            sum += length[i];
            count++;
        }
        const double mean = count ? sum / count : 0.0;
        for (int i = g; i < g + group; i++)
            if (correct[i]) sq += (length[i] - mean) * (length[i] - mean);
        const double std = count ? sqrt(sq / count) : 0.0;
        for (int i = g; i < g + group; i++) {
            double z = std > 0.0 ? (length[i] - mean) / std : 0.0;
            out[i] = correct[i] ? (float)(1.0 - alpha / (1.0 + exp(-z))) : 0.0f;
        }
    }
    return 0;
}

int egrc_reward_lc_r1(const int *correct, const int *length, int n, int group, float *out, egrc_error *err) {
    if (check_groups(n, group, err)) return -1;
    for (int g = 0; g < n; g += group) {
        int longest = 0;
        for (int i = g; i < g + group; i++)
            if (correct[i] && length[i] > longest) longest = length[i];
        for (int i = g; i < g + group; i++)
            out[i] = correct[i] ? 1.0f + (1.0f - (longest > 0 ? (float)length[i] / (float)longest : 0.0f)) : 0.0f;
    }
    return 0;
}
