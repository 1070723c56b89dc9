/* Reward functions against hand-computed values (docs/method.md formulas). */
#include <stddef.h>

#include "rl/rewards.h"
#include "test.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void check_all(const char *name, const float *got, const double *want, int n) {
    for (int i = 0; i < n; i++)
        CHECK_MSG(fabs(got[i] - want[i]) <= 1e-6 * fmax(1.0, fabs(want[i])), "%s[%d] = %.9g, want %.9g", name, i,
                  (double)got[i], want[i]);
}

static void test_exp_length(void) {
    /* r = 0.5, L = 100: 1 at length 0, 0.5 at the budget, 0.5^0.5 halfway, 0.5^0.37; wrong: 0 */
    const int correct[] = {1, 1, 1, 1, 0, 0}, length[] = {0, 100, 50, 37, 10, 100};
    const double want[] = {1.0, 0.5, 0.7071067811865476, 0.7737824967711949, 0.0, 0.0};
    float out[N_OF(want)];
    egrc_error err;
    CHECK(egrc_reward_exp_length(correct, length, N_OF(want), 0.5f, 100, out, &err) == 0);
    check_all("exp_length", out, want, N_OF(want));
    CHECK(egrc_reward_exp_length(correct, length, N_OF(want), 0.0f, 100, out, &err) != 0);
    CHECK(egrc_reward_exp_length(correct, length, N_OF(want), 1.5f, 100, out, &err) != 0);
    CHECK(egrc_reward_exp_length(correct, length, N_OF(want), 0.5f, 0, out, &err) != 0);
    /* r = 1: no length pressure */
    CHECK(egrc_reward_exp_length(correct, length, N_OF(want), 1.0f, 100, out, &err) == 0);
    CHECK(out[1] == 1.0f && out[4] == 0.0f);
}

static void test_decomposed(void) {
    const int correct[] = {1, 0, 1}, length[] = {25, 10, 100};
    const double want_acc[] = {1, 0, 1}, want_len[] = {0.75, 0, 0};
    float acc[3], len[3];
    egrc_error err;
    CHECK(egrc_reward_decomposed(correct, length, 3, 100, acc, len, &err) == 0);
    check_all("decomposed.acc", acc, want_acc, 3);
    check_all("decomposed.len", len, want_len, 3);
    CHECK(egrc_reward_decomposed(correct, length, 3, 0, acc, len, &err) != 0);
}

static void test_accuracy_thinkprune_l1(void) {
    const int correct[] = {1, 1, 0, 1}, length[] = {20, 21, 5, 100}, target[] = {100, 70, 130, 100};
    float out[4];
    egrc_reward_accuracy(correct, 4, out);
    check_all("accuracy", out, (const double[]){1, 1, 0, 1}, 4);
    egrc_reward_thinkprune(correct, length, 4, 20, out);
    check_all("thinkprune", out, (const double[]){1, 0, 0, 0}, 4);
    /* alpha 0.01: 1 - 0.8, 1 - 0.49, 0 - 1.25, 1 - 0 */
    egrc_reward_l1(correct, length, target, 4, 0.01f, out);
    check_all("l1", out, (const double[]){0.2, 0.51, -1.25, 1.0}, 4);
}

static void test_kimi(void) {
    /* group 1: Lmin 10, Lmax 50: lam = 0.5, 0.25, 0, -0.5; correct get c + lam, wrong min(0, lam).
     * group 2: equal lengths, lam = 0. */
    const int correct[] = {1, 1, 0, 0, 1, 0, 0, 1}, length[] = {10, 20, 30, 50, 7, 7, 7, 7};
    const double want[] = {1.5, 1.25, 0.0, -0.5, 1, 0, 0, 1};
    float out[8];
    egrc_error err;
    CHECK(egrc_reward_kimi(correct, length, 8, 4, out, &err) == 0);
    check_all("kimi", out, want, 8);
    /* a wrong short answer is never rewarded: lam > 0 is clipped to 0 */
    CHECK(out[2] == 0.0f);
    CHECK(egrc_reward_kimi(correct, length, 7, 4, out, &err) != 0);
}

static void test_arora_zanette(void) {
    /* group 1: correct lengths 10, 20, 30: mean 20, population std sqrt(200/3);
     * alpha 0.2: 1 - 0.2 sigmoid(-+1.2247..), 1 - 0.1 at the mean; wrong 0.
     * group 2: a single correct sample: z = 0. */
    const int correct[] = {1, 1, 1, 0, 0, 1, 0, 0}, length[] = {10, 20, 30, 5, 3, 9, 4, 4};
    const double want[] = {0.9545794961128632, 0.9, 0.8454205038871369, 0, 0, 0.9, 0, 0};
    float out[8];
    egrc_error err;
    CHECK(egrc_reward_arora_zanette(correct, length, 8, 4, 0.2f, out, &err) == 0);
    check_all("arora_zanette", out, want, 8);
    CHECK(egrc_reward_arora_zanette(correct, length, 8, 3, 0.2f, out, &err) != 0);
}

static void test_lc_r1(void) {
    /* group 1: longest correct 40: 1 + (1 - 10/40), 1 + 0, wrong 0, 1 + (1 - 20/40); group 2: none correct */
    const int correct[] = {1, 1, 0, 1, 0, 0, 0, 0}, length[] = {10, 40, 100, 20, 1, 2, 3, 4};
    const double want[] = {1.75, 1.0, 0, 1.5, 0, 0, 0, 0};
    float out[8];
    egrc_error err;
    CHECK(egrc_reward_lc_r1(correct, length, 8, 4, out, &err) == 0);
    check_all("lc_r1", out, want, 8);
    CHECK(egrc_reward_lc_r1(correct, length, 8, 0, out, &err) != 0);
}

int main(void) {
    test_exp_length();
    test_decomposed();
    test_accuracy_thinkprune_l1();
    test_kimi();
    test_arora_zanette();
    test_lc_r1();
    return test_finish("test_rewards");
}
