/* The built-in task suite: determinism, the train/eval split, arithmetic
 * recomputed from the question text independently of the generator, answer
 * checking, and the task tokenizer (round trip, one token per digit, the
 * verbose/concise length ratio). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "eval/tasks.h"
#include "test.h"
#include "io/tokenizer.h"

#define TASK_TOKENIZER EGRC_TEST_DATA "/../../" EGRC_TASK_TOKENIZER_PATH
#define EVAL_SEED 1234u

/* ---- an independent evaluator of the question text ---- */

typedef struct {
    const char *s;
    int ok;
} parser;

static void skip_spaces(parser *ps) {
    while (*ps->s == ' ') ps->s++;
}

static long parse_sum(parser *ps);

static long parse_atom(parser *ps) {
    skip_spaces(ps);
    if (*ps->s == '(') {
        ps->s++;
        long v = parse_sum(ps);
        skip_spaces(ps);
        if (*ps->s != ')') ps->ok = 0;
        ps->s++;
        return v;
    }
    if (!isdigit((unsigned char)*ps->s)) {
        ps->ok = 0;
        return 0;
    }
    long v = 0;
    while (isdigit((unsigned char)*ps->s)) v = 10 * v + (*ps->s++ - '0');
    return v;
}

static long parse_product(parser *ps) {
    long v = parse_atom(ps);
    for (skip_spaces(ps); ps->ok && *ps->s == '*'; skip_spaces(ps)) {
        ps->s++;
        v *= parse_atom(ps);
    }
    return v;
}

static long parse_sum(parser *ps) {
    long v = parse_product(ps);
    for (skip_spaces(ps); ps->ok && (*ps->s == '+' || *ps->s == '-'); skip_spaces(ps)) {
        char op = *ps->s++;
        long x = parse_product(ps);
        v = op == '+' ? v + x : v - x;
    }
    return v;
}

/* The word problem's count after its actions, read from the sentence. */
static int solve_word(const char *q, long *out) {
    static const char *const gains[] = {"buys ", "finds ", "gets "};
    static const char *const losses[] = {"gives away ", "loses ", "sells "};
    const char *has = strstr(q, " has ");
    if (!has) return -1;
    long v = strtol(has + 5, NULL, 10);
    const char *end = strstr(q, ". How many ");
    if (!end) return -1;
    for (const char *c = strstr(q, ", "); c && c < end; c = strstr(c + 1, ", ")) {
        const char *a = c + 2;
        int sign = 0;
        size_t len = 0;
        for (int i = 0; i < 3; i++) {
            if (strncmp(a, gains[i], strlen(gains[i])) == 0) sign = 1, len = strlen(gains[i]);
            if (strncmp(a, losses[i], strlen(losses[i])) == 0) sign = -1, len = strlen(losses[i]);
        }
        if (!sign) return -1;
        v += sign * strtol(a + len, NULL, 10);
    }
    *out = v;
    return 0;
}

static int solve(const egrc_task_problem *p, long *out) {
    const char *q = p->question;
    switch (p->family) {
    case EGRC_TASK_CHAIN:
    case EGRC_TASK_MUL:
    case EGRC_TASK_PAREN: {
        parser ps = {q, 1};
        *out = parse_sum(&ps);
        return ps.ok && strcmp(ps.s, "= ?") == 0 ? 0 : -1;
    }
    case EGRC_TASK_COMPARE: {
        char which[16];
        int x, y;
        if (sscanf(q, "Which is %15[a-z], %d or %d?", which, &x, &y) != 3) return -1;
        int larger = strcmp(which, "larger") == 0;
        *out = larger == (x > y) ? x : y;
        return x != y ? 0 : -1;
    }
    case EGRC_TASK_MOD: {
        int a, b;
        if (sscanf(q, "What is %d mod %d?", &a, &b) != 2 || b <= 0) return -1;
        *out = a % b;
        return 0;
    }
    default: return solve_word(q, out);
    }
}

/* Every "x op y = z" and "x < y" / "x > y" in the text must be true; returns
 * how many were checked, or -1 at the first false one. */
static int check_statements(const char *text) {
    enum { NUM, SYM };
    struct {
        int kind;
        long v;
        char c;
    } lex[4096];
    int n = 0;
    for (const char *s = text; *s && n < 4096;) {
        if (isdigit((unsigned char)*s)) {
            long v = 0;
            while (isdigit((unsigned char)*s)) v = 10 * v + (*s++ - '0');
            lex[n].kind = NUM, lex[n].v = v, n++;
        } else if (*s != ' ') {
            lex[n].kind = SYM, lex[n].c = *s++, n++;
        } else {
            s++;
        }
    }
    int checked = 0;
    for (int i = 0; i + 2 < n; i++) {
        if (lex[i].kind != NUM || lex[i + 1].kind != SYM || lex[i + 2].kind != NUM) continue;
        char op = lex[i + 1].c;
        long a = lex[i].v, b = lex[i + 2].v;
        if (op == '<' || op == '>') {
            if ((op == '<') != (a < b) || a == b) return -1;
            checked++;
        } else if ((op == '+' || op == '-' || op == '*') && i + 4 < n && lex[i + 3].kind == SYM &&
                   lex[i + 3].c == '=' && lex[i + 4].kind == NUM) {
            long r = op == '+' ? a + b : op == '-' ? a - b : a * b;
            if (r != lex[i + 4].v) return -1;
            checked++;
        }
    }
    return checked;
}

/* ---- tests ---- */

static void test_families(void) {
    CHECK(egrc_task_family_count() == 6);
    for (int f = 0; f < egrc_task_family_count(); f++)
        CHECK(egrc_task_family_find(egrc_task_family_name(f)) == f);
    CHECK(strcmp(egrc_task_family_name(EGRC_TASK_MOD), "mod") == 0);
    CHECK(egrc_task_family_name(6) == NULL && egrc_task_family_name(-1) == NULL);
    CHECK(egrc_task_family_find("algebra") == -1);

    egrc_rng rng;
    egrc_rng_seed(&rng, 1);
    egrc_task_problem p;
    egrc_error err;
    CHECK(egrc_task_generate(6, 1, &rng, &p, &err) == -1 && strstr(err.msg, "family 6"));
    CHECK(egrc_task_generate(0, 4, &rng, &p, &err) == -1 && strstr(err.msg, "difficulty 4"));
    CHECK(egrc_task_sample(EGRC_TASK_TRAIN, 0, -2, 0, &rng, &p, &err) == -1);
    CHECK(egrc_task_sample(EGRC_TASK_TRAIN, 0, 0, -1, &rng, &p, &err) == -1);
    egrc_task_problem *list;
    size_t count;
    CHECK(egrc_task_eval_set(0, 0, &list, &count, &err) == -1 && strstr(err.msg, "not 0"));
}

/* Draws problems and both traces from one seed into one long string. */
static char *draw_all(uint64_t seed, int n) {
    size_t cap = (size_t)n * 3 * EGRC_TASK_TEXT_MAX, len = 0;
    char *all = malloc(cap);
    egrc_rng rng;
    egrc_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        egrc_task_problem p;
        char text[EGRC_TASK_TEXT_MAX];
        egrc_error err;
        CHECK(egrc_task_sample(EGRC_TASK_TRAIN, EVAL_SEED, -1, 0, &rng, &p, &err) == 0);
        len += (size_t)snprintf(all + len, cap - len, "%d %d %s|%s|", p.family, p.difficulty, p.question, p.answer);
        for (int style = 0; style < 2; style++) {
            CHECK(egrc_task_trace(&p, style ? EGRC_TRACE_VERBOSE : EGRC_TRACE_CONCISE, &rng, text, sizeof text,
                                  &err) == 0);
            len += (size_t)snprintf(all + len, cap - len, "%s|", text);
        }
    }
    return all;
}

static void test_determinism(void) {
    char *a = draw_all(7, 300), *b = draw_all(7, 300), *c = draw_all(8, 300);
    CHECK(strcmp(a, b) == 0);
    CHECK(strcmp(a, c) != 0);
    free(a);
    free(b);
    free(c);

    /* Every family and level shows up when drawn at random. */
    egrc_rng rng;
    egrc_rng_seed(&rng, 3);
    int seen[EGRC_TASK_FAMILIES][EGRC_TASK_DIFFICULTIES + 1] = {{0}};
    for (int i = 0; i < 2000; i++) {
        egrc_task_problem p;
        CHECK(egrc_task_sample(EGRC_TASK_EVAL, EVAL_SEED, -1, 0, &rng, &p, NULL) == 0);
        seen[p.family][p.difficulty] = 1;
    }
    for (int f = 0; f < EGRC_TASK_FAMILIES; f++)
        for (int d = 1; d <= EGRC_TASK_DIFFICULTIES; d++) CHECK_MSG(seen[f][d], "family %d level %d", f, d);
}

static int by_string(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_split(void) {
    egrc_task_problem *eval, *again, *small;
    size_t n_eval, n_again, n_small;
    egrc_error err;
    CHECK(egrc_task_eval_set(EVAL_SEED, 50, &eval, &n_eval, &err) == 0);
    CHECK(egrc_task_eval_set(EVAL_SEED, 50, &again, &n_again, &err) == 0);
    CHECK(egrc_task_eval_set(EVAL_SEED, 20, &small, &n_small, &err) == 0);
    CHECK(n_eval == n_again && memcmp(eval, again, n_eval * sizeof *eval) == 0);
    /* Only the small cells (mul level 1 has 64 problems) can run short. */
    CHECK_MSG(n_eval > 15 * 50, "%zu evaluation problems", n_eval);

    const char **questions = malloc(n_eval * sizeof *questions);
    int per_cell[EGRC_TASK_FAMILIES][EGRC_TASK_DIFFICULTIES + 1] = {{0}};
    for (size_t i = 0; i < n_eval; i++) {
        CHECK(egrc_task_is_eval(&eval[i], EVAL_SEED));
        questions[i] = eval[i].question;
        per_cell[eval[i].family][eval[i].difficulty]++;
    }
    qsort(questions, n_eval, sizeof *questions, by_string);
    for (size_t i = 1; i < n_eval; i++) CHECK_MSG(strcmp(questions[i - 1], questions[i]) != 0, "%s", questions[i]);

    /* The 20-per-cell list is the first 20 of each cell of the 50 one. */
    size_t k = 0, start = 0;
    for (int f = 0; f < EGRC_TASK_FAMILIES; f++)
        for (int d = 1; d <= EGRC_TASK_DIFFICULTIES; d++) {
            int m = per_cell[f][d] < 20 ? per_cell[f][d] : 20;
            for (int i = 0; i < m && k < n_small; i++, k++)
                CHECK(strcmp(small[k].question, eval[start + (size_t)i].question) == 0);
            start += (size_t)per_cell[f][d];
        }
    CHECK(k == n_small);

    /* Training draws never hit the evaluation list, nor the split. */
    egrc_rng rng;
    egrc_rng_seed(&rng, 11);
    int overlap = 0, eval_member = 0;
    for (int i = 0; i < 6000; i++) {
        egrc_task_problem p;
        CHECK(egrc_task_sample(EGRC_TASK_TRAIN, EVAL_SEED, -1, 0, &rng, &p, &err) == 0);
        const char *q = p.question;
        overlap += bsearch(&q, questions, n_eval, sizeof *questions, by_string) != NULL;
        eval_member += egrc_task_is_eval(&p, EVAL_SEED);
    }
    CHECK_MSG(overlap == 0 && eval_member == 0, "%d in the list, %d in the split", overlap, eval_member);

    /* About one problem in EGRC_TASK_EVAL_SHARE is held out, and another
     * seed holds out others. */
    int held = 0, both = 0;
    for (int i = 0; i < 20000; i++) {
        egrc_task_problem p;
        CHECK(egrc_task_generate(i % EGRC_TASK_FAMILIES, 2 + i % 2, &rng, &p, &err) == 0);
        held += egrc_task_is_eval(&p, EVAL_SEED);
        both += egrc_task_is_eval(&p, EVAL_SEED) && egrc_task_is_eval(&p, EVAL_SEED + 1);
    }
    CHECK_MSG(held > 20000 / EGRC_TASK_EVAL_SHARE * 8 / 10 && held < 20000 / EGRC_TASK_EVAL_SHARE * 12 / 10,
              "%d of 20000 held out", held);
    CHECK_MSG(both < held / 4, "%d of %d held out by both seeds", both, held);
    free(questions);
    free(eval);
    free(again);
    free(small);
}

/* The content of the first \boxed{} after </think>, or "" */
static void boxed(const char *text, char *out, size_t size) {
    const char *close = strstr(text, "</think>");
    const char *box = close ? strstr(close, "\\boxed{") : NULL;
    const char *end = box ? strchr(box, '}') : NULL;
    size_t len = end ? (size_t)(end - box - 7) : 0;
    snprintf(out, size, "%.*s", (int)(len < size ? len : size - 1), box ? box + 7 : "");
}

static void test_arithmetic(void) {
    egrc_rng rng;
    egrc_rng_seed(&rng, 5);
    for (int f = 0; f < EGRC_TASK_FAMILIES; f++) {
        for (int d = 1; d <= EGRC_TASK_DIFFICULTIES; d++) {
            int bad_answer = 0, bad_trace = 0, bad_box = 0, too_few = 0, negative = 0;
            for (int i = 0; i < 500; i++) {
                egrc_task_problem p;
                egrc_error err;
                CHECK(egrc_task_generate(f, d, &rng, &p, &err) == 0);
                CHECK(p.family == f && p.difficulty == d);
                long expected;
                char want[32];
                if (solve(&p, &expected) != 0) {
                    CHECK_MSG(0, "cannot read the question '%s'", p.question);
                    continue;
                }
                snprintf(want, sizeof want, "%ld", expected);
                bad_answer += strcmp(want, p.answer) != 0;
                for (int s = 0; s < p.n_steps; s++) negative += p.steps[s].result < 0;
                for (int style = 0; style < 2; style++) {
                    char text[EGRC_TASK_TEXT_MAX], got[32];
                    CHECK(egrc_task_trace(&p, style ? EGRC_TRACE_VERBOSE : EGRC_TRACE_CONCISE, &rng, text,
                                          sizeof text, &err) == 0);
                    int checked = check_statements(text);
                    bad_trace += checked < 0;
                    too_few += checked >= 0 && checked < p.n_steps;
                    boxed(text, got, sizeof got);
                    bad_box += strcmp(got, p.answer) != 0 || !egrc_task_check(&p, text);
                    CHECK(strncmp(text, "<think>", 7) == 0);
                }
            }
            CHECK_MSG(bad_answer == 0 && bad_trace == 0 && bad_box == 0 && too_few == 0 && negative == 0,
                      "%s level %d: %d wrong answers, %d false statements, %d wrong boxes, %d short traces, "
                      "%d negative steps",
                      egrc_task_family_name(f), d, bad_answer, bad_trace, bad_box, too_few, negative);
        }
    }
}

static void test_check(void) {
    egrc_rng rng;
    egrc_rng_seed(&rng, 9);
    egrc_task_problem p;
    CHECK(egrc_task_generate(EGRC_TASK_CHAIN, 2, &rng, &p, NULL) == 0);
    char wrong[EGRC_TASK_ANSWER_MAX + 2], r[256];
    snprintf(wrong, sizeof wrong, "%d", atoi(p.answer) + 1);

    snprintf(r, sizeof r, "<think>ok</think> \\boxed{%s}", p.answer);
    CHECK(egrc_task_check(&p, r) == 1);
    snprintf(r, sizeof r, "<think></think>The answer is \\boxed{  %s }.", p.answer);
    CHECK(egrc_task_check(&p, r) == 1);
    snprintf(r, sizeof r, "<think>x</think> \\boxed{%s}", wrong);
    CHECK(egrc_task_check(&p, r) == 0);
    snprintf(r, sizeof r, "<think>x</think> \\boxed{%s0}", p.answer);
    CHECK(egrc_task_check(&p, r) == 0);
    /* Only the first box counts, so listing candidates earns nothing. */
    snprintf(r, sizeof r, "<think>x</think> \\boxed{%s} \\boxed{%s}", wrong, p.answer);
    CHECK(egrc_task_check(&p, r) == 0);
    snprintf(r, sizeof r, "<think>x \\boxed{%s}</think>", p.answer);
    CHECK(egrc_task_check(&p, r) == 0);
    snprintf(r, sizeof r, "<think>x \\boxed{%s}", p.answer);
    CHECK(egrc_task_check(&p, r) == 0);
    snprintf(r, sizeof r, "<think>x</think> %s", p.answer);
    CHECK(egrc_task_check(&p, r) == 0);
    snprintf(r, sizeof r, "<think>x</think> \\boxed{%s", p.answer);
    CHECK(egrc_task_check(&p, r) == 0);
    snprintf(r, sizeof r, "<think>x</think> \\boxed{{%s}}", p.answer);
    CHECK(egrc_task_check(&p, r) == 0);
    CHECK(egrc_task_check(&p, "") == 0);
    CHECK(egrc_task_check(&p, "<think>x</think> \\boxed{}") == 0);

    char prompt[EGRC_TASK_TEXT_MAX], expect[EGRC_TASK_TEXT_MAX];
    CHECK(egrc_task_prompt(&p, prompt, sizeof prompt, NULL) == 0);
    snprintf(expect, sizeof expect, "Q: %s\nA: ", p.question);
    CHECK(strcmp(prompt, expect) == 0);
    egrc_error err;
    CHECK(egrc_task_prompt(&p, prompt, 8, &err) == -1 && strstr(err.msg, "too small"));
    CHECK(egrc_task_trace(&p, EGRC_TRACE_VERBOSE, &rng, prompt, 16, &err) == -1 && strstr(err.msg, "too small"));
}

static size_t count_tokens(const egrc_tokenizer *tok, const char *text) {
    int32_t *ids = NULL;
    size_t n = 0;
    egrc_error err;
    if (egrc_tokenizer_encode(tok, text, strlen(text), &ids, &n, &err) != 0) {
        CHECK_MSG(0, "%s", err.msg);
        return 0;
    }
    free(ids);
    return n;
}

/* Encode then decode gives the text back, and every token that holds a digit
 * is exactly that digit. */
static void check_round_trip(const egrc_tokenizer *tok, const char *text, int *failures) {
    int32_t *ids = NULL;
    size_t n = 0;
    egrc_error err;
    if (egrc_tokenizer_encode(tok, text, strlen(text), &ids, &n, &err) != 0) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    char *back = egrc_tokenizer_decode(tok, ids, n, 1, &err);
    if (!back || strcmp(back, text) != 0) {
        if (*failures == 0) fprintf(stderr, "round trip of '%s' gave '%s'\n", text, back ? back : err.msg);
        ++*failures;
    }
    free(back);
    for (size_t i = 0; i < n; i++) {
        char *piece = egrc_tokenizer_decode(tok, &ids[i], 1, 1, NULL);
        if (piece && strpbrk(piece, "0123456789") && strlen(piece) != 1) {
            if (*failures == 0) fprintf(stderr, "token '%s' holds a digit and more\n", piece);
            ++*failures;
        }
        free(piece);
    }
    free(ids);
}

static void test_tokenizer(void) {
    egrc_error err;
    egrc_tokenizer *tok = egrc_tokenizer_load(TASK_TOKENIZER, &err);
    CHECK_MSG(tok != NULL, "%s", err.msg);
    if (!tok) return;
    int32_t vocab = egrc_tokenizer_vocab_size(tok);
    CHECK_MSG(vocab >= 512 && vocab <= 1024, "vocab size %d", vocab);
    int32_t eos = egrc_tokenizer_token_id(tok, EGRC_TASK_EOS), open = egrc_tokenizer_token_id(tok, "<think>"),
            close = egrc_tokenizer_token_id(tok, "</think>");
    CHECK(eos >= 0 && open >= 0 && close >= 0);
    CHECK(egrc_tokenizer_is_special(tok, eos));
    for (char d = '0'; d <= '9'; d++) {
        char s[2] = {d, 0};
        CHECK(count_tokens(tok, s) == 1);
    }
    CHECK(count_tokens(tok, "1234567890") == 10);
    CHECK(count_tokens(tok, " 2025") == 5);
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(egrc_tokenizer_encode(tok, "<think>7</think>", 16, &ids, &n, &err) == 0);
    CHECK(n == 3 && ids[0] == open && ids[2] == close);
    free(ids);

    int failures = 0;
    check_round_trip(tok, "Caf\xc3\xa9 \xe2\x9c\x93 tabs\tand\nnewlines <|endoftext|>", &failures);

    egrc_rng rng;
    egrc_rng_seed(&rng, 21);
    double concise[EGRC_TASK_FAMILIES] = {0}, verbose[EGRC_TASK_FAMILIES] = {0}, all_c = 0, all_v = 0;
    const int per_cell = 200;
    /* Verbose lengths should spread: some responses under 3x their concise
     * length, some over 5x. The longest prompt + response must fit 512. */
    int under3 = 0, over5 = 0;
    size_t longest = 0;
    printf("%-8s %14s %14s %6s\n", "family", "concise tokens", "verbose tokens", "ratio");
    for (int f = 0; f < EGRC_TASK_FAMILIES; f++) {
        for (int d = 1; d <= EGRC_TASK_DIFFICULTIES; d++)
            for (int i = 0; i < per_cell; i++) {
                egrc_task_problem p;
                char text[EGRC_TASK_TEXT_MAX];
                CHECK(egrc_task_sample(EGRC_TASK_TRAIN, EVAL_SEED, f, d, &rng, &p, &err) == 0);
                CHECK(egrc_task_prompt(&p, text, sizeof text, &err) == 0);
                check_round_trip(tok, text, &failures);
                size_t prompt = count_tokens(tok, text);
                CHECK(egrc_task_trace(&p, EGRC_TRACE_CONCISE, &rng, text, sizeof text, &err) == 0);
                check_round_trip(tok, text, &failures);
                size_t c = count_tokens(tok, text);
                CHECK(egrc_task_trace(&p, EGRC_TRACE_VERBOSE, &rng, text, sizeof text, &err) == 0);
                check_round_trip(tok, text, &failures);
                size_t v = count_tokens(tok, text);
                concise[f] += (double)c;
                verbose[f] += (double)v;
                under3 += v < 3 * c;
                over5 += v > 5 * c;
                if (prompt + v > longest) longest = prompt + v;
            }
        all_c += concise[f];
        all_v += verbose[f];
        concise[f] /= EGRC_TASK_DIFFICULTIES * per_cell;
        verbose[f] /= EGRC_TASK_DIFFICULTIES * per_cell;
        printf("%-8s %14.1f %14.1f %6.2f\n", egrc_task_family_name(f), concise[f], verbose[f], verbose[f] / concise[f]);
        CHECK_MSG(verbose[f] >= 3 * concise[f], "%s: verbose %.1f vs concise %.1f tokens",
                  egrc_task_family_name(f), verbose[f], concise[f]);
    }
    printf("%-8s %14.1f %14.1f %6.2f\n", "all", all_c / (6.0 * 3 * per_cell), all_v / (6.0 * 3 * per_cell),
           all_v / all_c);
    CHECK_MSG(all_v >= 3 * all_c, "verbose %.0f vs concise %.0f tokens in all", all_v, all_c);
    int samples = EGRC_TASK_FAMILIES * EGRC_TASK_DIFFICULTIES * per_cell;
    printf("verbose under 3x concise: %d of %d, over 5x: %d; longest prompt + verbose response: %zu tokens\n",
           under3, samples, over5, longest);
    CHECK(under3 > samples / 20 && over5 > samples / 20);
    CHECK(longest < 512);
    CHECK_MSG(failures == 0, "%d texts did not round-trip or merged a digit", failures);
    egrc_tokenizer_free(tok);
}

int main(void) {
    test_families();
    test_determinism();
    test_split();
    test_arithmetic();
    test_check();
    test_tokenizer();
    return test_finish("test_tasks");
}
