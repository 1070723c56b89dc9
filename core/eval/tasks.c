/* The task suite's problems: generation per family, the train/eval split,
 * the evaluation list, prompts and answer checking. Traces are rendered in
 * tasks_trace.c. */
#include "tasks.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const family_names[EGRC_TASK_FAMILIES] = {"chain",   "mul", "paren",
                                                             "compare", "mod", "word"};

/* Rejection sampling of one split draws about EGRC_TASK_EVAL_SHARE problems
 * per hit; this many misses means the split has (almost) no problems here. */
#define MAX_SAMPLE_DRAWS 100000
/* egrc_task_eval_set gives up on a cell after this many draws in a row that
 * bring no new evaluation problem: the cell's evaluation split is exhausted. */
#define MAX_EVAL_MISSES (1 << 15)

int egrc_task_family_count(void) { return EGRC_TASK_FAMILIES; }

const char *egrc_task_family_name(int family) {
    return family >= 0 && family < EGRC_TASK_FAMILIES ? family_names[family] : NULL;
}

int egrc_task_family_find(const char *name) {
    for (int f = 0; name && f < EGRC_TASK_FAMILIES; f++)
        if (strcmp(name, family_names[f]) == 0) return f;
    return -1;
}

/* Uniform integer in [lo, hi]. */
static int uniform_int(egrc_rng *rng, int lo, int hi) {
    return lo + (int)egrc_rng_below(rng, (uint32_t)(hi - lo + 1));
}

static int apply(int a, char op, int b) {
    return op == '+' ? a + b : op == '-' ? a - b : a * b;
}

/* Appends the step "a op b = result" and returns the result. */
static int add_step(egrc_task_problem *p, int a, char op, int b) {
    int r = apply(a, op, b);
    p->steps[p->n_steps++] = (egrc_task_step){.a = a, .b = b, .result = r, .op = op};
    return r;
}

/* a * b with b a single digit. A two-digit a that is not a multiple of ten
 * is split into tens and units ("40 * 6 = 240. 7 * 6 = 42. 240 + 42 = 282."),
 * so a small model only ever multiplies a digit (or tens) by a digit and
 * adds, the same way in every family. */
static int add_mul(egrc_task_problem *p, int a, int b) {
    if (a < 10 || a % 10 == 0) return add_step(p, a, '*', b);
    int tens = add_step(p, a - a % 10, '*', b);
    int units = add_step(p, a % 10, '*', b);
    return add_step(p, tens, '+', units);
}

/* Appends printf output to the question; generated questions always fit. */
static void question_add(egrc_task_problem *p, const char *fmt, ...) EGRC_PRINTF(2, 3);
static void question_add(egrc_task_problem *p, const char *fmt, ...) {
    size_t len = strlen(p->question);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->question + len, sizeof p->question - len, fmt, ap);
    va_end(ap);
}

/* Picks + or - for the next operand so the running value stays >= 0. */
static char pick_op(egrc_rng *rng, int value, int operand) {
    return operand <= value && egrc_rng_below(rng, 2) ? '-' : '+';
}

static int gen_chain(int level, egrc_rng *rng, egrc_task_problem *p) {
    static const int operands[] = {2, 3, 4}, max_value[] = {9, 20, 30};
    int n = operands[level - 1], hi = max_value[level - 1];
    int value = uniform_int(rng, 1, hi);
    question_add(p, "%d", value);
    for (int i = 1; i < n; i++) {
        int x = uniform_int(rng, 1, hi);
        char op = pick_op(rng, value, x);
        question_add(p, " %c %d", op, x);
        value = add_step(p, value, op, x);
    }
    question_add(p, " = ?");
    return value;
}

static int gen_mul(int level, egrc_rng *rng, egrc_task_problem *p) {
    static const int lo[] = {2, 10, 50}, hi[] = {9, 49, 99};
    int a = uniform_int(rng, lo[level - 1], hi[level - 1]), b = uniform_int(rng, 2, 9);
    question_add(p, "%d * %d = ?", a, b);
    return add_mul(p, a, b);
}

/* (a op b) * c, plus "op d" at level 3. Level 1 adds to at most 9 (one
 * multiplication step); level 2 is every other bracket worth 1..19, so the
 * two levels share no question. */
static int gen_paren(int level, egrc_rng *rng, egrc_task_problem *p) {
    int a, b, inner;
    char op;
    do {
        a = uniform_int(rng, 1, level == 1 ? 8 : 18);
        b = uniform_int(rng, 1, level == 1 ? 8 : 18);
        op = level == 1 ? '+' : pick_op(rng, a, b);
        inner = apply(a, op, b);
    } while (inner < 1 || inner > (level == 1 ? 9 : 19) || (level == 2 && op == '+' && inner <= 9));
    int c = uniform_int(rng, 2, 9);
    question_add(p, "(%d %c %d) * %d", a, op, b, c);
    add_step(p, a, op, b);
    int value = add_mul(p, inner, c);
    if (level == 3) {
        int d = uniform_int(rng, 1, 30);
        char op2 = pick_op(rng, value, d);
        question_add(p, " %c %d", op2, d);
        value = add_step(p, value, op2, d);
    }
    question_add(p, " = ?");
    return value;
}

/* Two different numbers; the steps compare the first differing digit, then
 * the numbers. The answer is the number asked for (larger or smaller). */
static int gen_compare(int level, egrc_rng *rng, egrc_task_problem *p) {
    int x, y;
    if (level == 1) {
        int tx = uniform_int(rng, 1, 9), ty;
        do ty = uniform_int(rng, 1, 9);
        while (ty == tx);
        x = 10 * tx + uniform_int(rng, 0, 9);
        y = 10 * ty + uniform_int(rng, 0, 9);
    } else if (level == 2) {
        int t = uniform_int(rng, 1, 9), ux = uniform_int(rng, 0, 9), uy;
        do uy = uniform_int(rng, 0, 9);
        while (uy == ux);
        x = 10 * t + ux;
        y = 10 * t + uy;
    } else {
        x = uniform_int(rng, 100, 999);
        do y = uniform_int(rng, 100, 999);
        while (y == x);
    }
    int smaller = level == 3 && egrc_rng_below(rng, 2);
    question_add(p, "Which is %s, %d or %d?", smaller ? "smaller" : "larger", x, y);
    int scale = x >= 100 ? 100 : 10;
    while (x / scale % 10 == y / scale % 10) scale /= 10;
    char op = x < y ? '<' : '>';
    p->steps[p->n_steps++] = (egrc_task_step){.a = x / scale % 10, .b = y / scale % 10, .op = op};
    p->steps[p->n_steps++] = (egrc_task_step){.a = x, .b = y, .op = op};
    return (x < y) == smaller ? x : y;
}

/* a mod b as "q * b = m. a - m = r.", with q = a / b found by the model.
 * The quotient q is at most 5 with a divisor up to 5 at level 1, a digit
 * outside that square at level 2, two digits (a split multiplication) at
 * level 3, so the levels share no question. */
static int gen_mod(int level, egrc_rng *rng, egrc_task_problem *p) {
    int a, b, q;
    if (level < 3) {
        do {
            b = uniform_int(rng, 2, level == 1 ? 5 : 9);
            q = uniform_int(rng, 1, level == 1 ? 5 : 9);
        } while (level == 2 && b <= 5 && q <= 5);
        a = q * b + uniform_int(rng, 0, b - 1);
    } else {
        b = uniform_int(rng, 2, 9);
        a = uniform_int(rng, 10 * b, 99);
    }
    question_add(p, "What is %d mod %d?", a, b);
    int m = add_mul(p, a / b, b);
    return add_step(p, a, '-', m);
}

static int gen_word(int level, egrc_rng *rng, egrc_task_problem *p) {
    static const char *const names[] = {"Tom", "Ann", "Sam", "Mia", "Ben", "Eva", "Leo", "Zoe"};
    static const char *const items[] = {"apples", "pens", "coins", "cards", "eggs", "books", "stamps", "shells"};
    /* Each action is "<verb> <count><tail>". */
    static const char *const gains[][2] = {{"buys", " more"}, {"finds", " more"}, {"gets", " more"}};
    static const char *const losses[][2] = {{"gives away", ""}, {"loses", ""}, {"sells", ""}};
    static const int max_value[] = {9, 20, 20};
    const char *item = items[egrc_rng_below(rng, 8)];
    int value = uniform_int(rng, 2, max_value[level - 1]);
    question_add(p, "%s has %d %s", names[egrc_rng_below(rng, 8)], value, item);
    for (int i = 0; i < level; i++) {
        int x = uniform_int(rng, 1, level == 1 ? 9 : 12);
        char op = pick_op(rng, value, x);
        const char *const *action = op == '+' ? gains[egrc_rng_below(rng, 3)] : losses[egrc_rng_below(rng, 3)];
        question_add(p, ", %s %d%s", action[0], x, action[1]);
        value = add_step(p, value, op, x);
    }
    question_add(p, ". How many %s now?", item);
    return value;
}

int egrc_task_generate(int family, int difficulty, egrc_rng *rng, egrc_task_problem *out,
                       egrc_error *err) {
    if (family < 0 || family >= EGRC_TASK_FAMILIES)
        return egrc_fail(err, "task family %d does not exist (there are %d, numbered from 0)", family,
                         EGRC_TASK_FAMILIES);
    if (difficulty < 1 || difficulty > EGRC_TASK_DIFFICULTIES)
        return egrc_fail(err, "task difficulty %d is out of range (levels are 1 to %d)", difficulty,
                         EGRC_TASK_DIFFICULTIES);
    memset(out, 0, sizeof *out);
    out->family = family;
    out->difficulty = difficulty;
    int answer = 0;
    switch (family) {
    case EGRC_TASK_CHAIN: answer = gen_chain(difficulty, rng, out); break;
    case EGRC_TASK_MUL: answer = gen_mul(difficulty, rng, out); break;
    case EGRC_TASK_PAREN: answer = gen_paren(difficulty, rng, out); break;
    case EGRC_TASK_COMPARE: answer = gen_compare(difficulty, rng, out); break;
    case EGRC_TASK_MOD: answer = gen_mod(difficulty, rng, out); break;
    default: answer = gen_word(difficulty, rng, out); break;
    }
    snprintf(out->answer, sizeof out->answer, "%d", answer);
    return 0;
}

/* FNV-1a over the question text: the identity of a problem for the split. */
static uint64_t question_hash(const char *q) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *q; q++) h = (h ^ (unsigned char)*q) * 0x100000001b3ull;
    return h;
}

int egrc_task_is_eval(const egrc_task_problem *p, uint64_t eval_seed) {
    /* splitmix64 spreads the seed through all bits, so different seeds pick
     * unrelated evaluation splits. */
    uint64_t x = question_hash(p->question) ^ eval_seed;
    return egrc_splitmix64(&x) % EGRC_TASK_EVAL_SHARE == 0;
}

int egrc_task_sample(egrc_task_split split, uint64_t eval_seed, int family, int difficulty,
                     egrc_rng *rng, egrc_task_problem *out, egrc_error *err) {
    if (family < -1 || family >= EGRC_TASK_FAMILIES)
        return egrc_fail(err, "task family %d does not exist (use 0 to %d, or -1 for any)", family,
                         EGRC_TASK_FAMILIES - 1);
    if (difficulty < 0 || difficulty > EGRC_TASK_DIFFICULTIES)
        return egrc_fail(err, "task difficulty %d is out of range (use 1 to %d, or 0 for any)",
                         difficulty, EGRC_TASK_DIFFICULTIES);
    int want_eval = split == EGRC_TASK_EVAL;
    for (int draw = 0; draw < MAX_SAMPLE_DRAWS; draw++) {
        int f = family < 0 ? (int)egrc_rng_below(rng, EGRC_TASK_FAMILIES) : family;
        int d = difficulty == 0 ? 1 + (int)egrc_rng_below(rng, EGRC_TASK_DIFFICULTIES) : difficulty;
        if (egrc_task_generate(f, d, rng, out, err) != 0) return -1;
        if (egrc_task_is_eval(out, eval_seed) == want_eval) return 0;
    }
    return egrc_fail(err, "no %s problem of family %s, difficulty %d turned up in %d draws (eval seed %llu)",
                     want_eval ? "evaluation" : "training", family < 0 ? "any" : family_names[family],
                     difficulty, MAX_SAMPLE_DRAWS, (unsigned long long)eval_seed);
}

/* Open addressing over question hashes, to skip duplicates within a cell.
 * Two distinct questions with one 64-bit hash would only cost the cell one
 * problem. The table is at most half full; 0 marks an empty slot. */
static int seen_before(uint64_t *table, size_t mask, uint64_t h) {
    h |= 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        if (table[i] == h) return 1;
        if (table[i] == 0) {
            table[i] = h;
            return 0;
        }
    }
}

int egrc_task_eval_set(uint64_t eval_seed, int per_cell, egrc_task_problem **out, size_t *count,
                       egrc_error *err) {
    if (per_cell < 1 || per_cell > 100000)
        return egrc_fail(err, "evaluation problems per family and level must be 1 to 100000, not %d",
                         per_cell);
    size_t cells = (size_t)EGRC_TASK_FAMILIES * EGRC_TASK_DIFFICULTIES, slots = 4;
    while (slots < 2 * (size_t)per_cell) slots *= 2;
    egrc_task_problem *list = malloc(cells * (size_t)per_cell * sizeof *list);
    uint64_t *table = malloc(slots * sizeof *table);
    if (!list || !table) {
        free(list);
        free(table);
        return egrc_fail(err, "out of memory for %d evaluation problems per family and level", per_cell);
    }
    size_t n = 0;
    for (int f = 0; f < EGRC_TASK_FAMILIES; f++) {
        for (int d = 1; d <= EGRC_TASK_DIFFICULTIES; d++) {
            /* Each cell has its own stream, so cells do not shift each other. */
            egrc_rng rng;
            uint64_t cell_seed = eval_seed ^ ((uint64_t)(f * EGRC_TASK_DIFFICULTIES + d) << 56);
            egrc_rng_seed(&rng, egrc_splitmix64(&cell_seed));
            memset(table, 0, slots * sizeof *table);
            int taken = 0;
            for (int misses = 0; taken < per_cell && misses < MAX_EVAL_MISSES;) {
                egrc_task_problem *p = &list[n];
                egrc_task_generate(f, d, &rng, p, NULL);
                if (!egrc_task_is_eval(p, eval_seed) || seen_before(table, slots - 1, question_hash(p->question))) {
                    misses++;
                    continue;
                }
                misses = 0;
                taken++;
                n++;
            }
        }
    }
    free(table);
    *out = list;
    *count = n;
    return 0;
}

int egrc_task_prompt(const egrc_task_problem *p, char *buf, size_t size, egrc_error *err) {
    int n = snprintf(buf, size, "Q: %s\nA: ", p->question);
    if (n < 0 || (size_t)n >= size)
        return egrc_fail(err, "prompt buffer of %zu bytes is too small (%d needed)", size, n + 1);
    return 0;
}

int egrc_task_check(const egrc_task_problem *p, const char *response) {
    const char *close = strstr(response, EGRC_TASK_THINK_CLOSE);
    if (!close) return 0;
    const char *box = strstr(close + strlen(EGRC_TASK_THINK_CLOSE), "\\boxed{");
    if (!box) return 0;
    const char *start = box + strlen("\\boxed{");
    /* Braces nest, as in LaTeX; the content ends at the matching one. */
    const char *end = start;
    for (int depth = 0; *end && !(*end == '}' && depth == 0); end++)
        depth += *end == '{' ? 1 : *end == '}' ? -1 : 0;
    if (*end != '}') return 0;
    while (start < end && isspace((unsigned char)*start)) start++;
    while (end > start && isspace((unsigned char)end[-1])) end--;
    size_t len = (size_t)(end - start);
    return len == strlen(p->answer) && memcmp(start, p->answer, len) == 0;
}
