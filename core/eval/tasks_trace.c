/* Reasoning traces for the task suite, rendered from a problem's stored
 * steps. The concise style states each step once. The verbose style imitates
 * how reasoning models wander: an opener, restating the question, logical
 * connectors before steps, re-checks of a step (recomputing it or viewing it
 * another way: 12 - 5 = 7 for 7 + 5 = 12), a final pass over every step.
 * Every statement is true arithmetic, so a model trained on either style
 * learns the same facts and only the length differs. */
#include "tasks.h"

#include <stdarg.h>
#include <stdio.h>

typedef struct {
    char *p;
    size_t size, len;
    int overflow;
    int first; /* no sentence written since "<think>": no space before the next */
} text;

static void put(text *t, const char *fmt, ...) EGRC_PRINTF(2, 3);

static void put(text *t, const char *fmt, ...) {
    if (t->overflow) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->p + t->len, t->size - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= t->size - t->len)
        t->overflow = 1;
    else
        t->len += (size_t)n;
}

/* Separates sentences by one space. */
static void sentence(text *t) {
    if (!t->first) put(t, " ");
    t->first = 0;
}

static int is_comparison(char op) { return op == '<' || op == '>'; }

static void put_step(text *t, const egrc_task_step *s) {
    if (is_comparison(s->op))
        put(t, "%d %c %d", s->a, s->op, s->b);
    else
        put(t, "%d %c %d = %d", s->a, s->op, s->b, s->result);
}

/* The same fact seen from the other side: the inverse operation for + and -,
 * the swapped factors for *, the mirrored comparison. */
static void put_other_view(text *t, const egrc_task_step *s) {
    switch (s->op) {
    case '+': put(t, "%d - %d = %d", s->result, s->b, s->a); break;
    case '-': put(t, "%d + %d = %d", s->result, s->b, s->a); break;
    case '*': put(t, "%d * %d = %d", s->b, s->a, s->result); break;
    default: put(t, "%d %c %d", s->b, s->op == '<' ? '>' : '<', s->a); break;
    }
}

static int chance(egrc_rng *rng, float p) { return egrc_rng_uniform(rng) < p; }

static const char *pick(egrc_rng *rng, const char *const *list, size_t n) {
    return list[egrc_rng_below(rng, (uint32_t)n)];
}

#define PICK(rng, list) pick((rng), (list), sizeof(list) / sizeof *(list))

/* A re-check of one step: before, the step (or its other view), after. */
typedef struct {
    const char *before;
    int other_view;
    const char *after;
} recheck;

static const recheck rechecks[] = {
    {"Wait, let me double-check. ", 0, ". Yes."},
    {"Hmm, let me verify: ", 0, ". Right."},
    {"Let me recompute that. ", 0, ". Correct."},
    {"Wait, is that right? ", 0, ". Yes, that is right."},
    {"Let me check it another way: ", 1, ". Good."},
    {"Hmm, let me make sure. ", 1, ". So it holds."},
};

static void put_recheck(text *t, const egrc_task_step *s, egrc_rng *rng) {
    const recheck *r = &rechecks[egrc_rng_below(rng, sizeof rechecks / sizeof *rechecks)];
    sentence(t);
    put(t, "%s", r->before);
    if (r->other_view)
        put_other_view(t, s);
    else
        put_step(t, s);
    put(t, "%s", r->after);
}

static void put_steps_plain(text *t, const egrc_task_problem *p) {
    for (int i = 0; i < p->n_steps; i++) {
        sentence(t);
        put_step(t, &p->steps[i]);
        put(t, ".");
    }
}

static void verbose(text *t, const egrc_task_problem *p, egrc_rng *rng) {
    /* Every verbose trace opens with "Okay," (as DeepSeek-R1-style models'
     * thoughts do) before it varies. The first token then carries the whole
     * verbose share of the SFT mix, so greedy decoding of the base model starts
     * verbose on every prompt even with a sizeable concise share, whose first
     * tokens (the first number) are concentrated too. */
    static const char *const openers[] = {"Okay, let me think about this.",
                                          "Okay, let me work through this step by step.", "Okay, let me see.",
                                          "Okay, so let me think."};
    static const char *const first_connectors[] = {"First,", "To start,", "Let me begin."};
    static const char *const connectors[] = {"Then", "Next,", "Now", "So", "And then"};
    static const char *const final_passes[] = {"Hmm, let me verify again:", "Let me go over it once more:",
                                               "Wait, let me check the whole thing again."};
    static const char *const final_verdicts[] = {"Yes.", "Everything checks out.", "All correct."};
    static const char *const conclusions[] = {"So the answer is", "Therefore, the answer is",
                                              "So the final answer is"};
    /* How eager this trace is to re-check: drawn per trace, so lengths
     * spread rather than cluster around one mean. */
    float eager = 0.35f + 0.5f * egrc_rng_uniform(rng);
    sentence(t);
    put(t, "%s", PICK(rng, openers));
    if (chance(rng, 0.5f)) {
        sentence(t);
        put(t, "Let me reread the question: %s", p->question);
    }
    for (int i = 0; i < p->n_steps; i++) {
        const egrc_task_step *s = &p->steps[i];
        sentence(t);
        if (chance(rng, 0.8f)) put(t, "%s ", i == 0 ? PICK(rng, first_connectors) : PICK(rng, connectors));
        put_step(t, s);
        put(t, ".");
        for (int k = 0; k < 2 && chance(rng, eager); k++) put_recheck(t, s, rng);
    }
    if (chance(rng, eager)) {
        sentence(t);
        put(t, "%s", PICK(rng, final_passes));
        put_steps_plain(t, p);
        sentence(t);
        put(t, "%s", PICK(rng, final_verdicts));
    }
    sentence(t);
    put(t, "%s %s.", PICK(rng, conclusions), p->answer);
}

int egrc_task_trace(const egrc_task_problem *p, egrc_trace_style style, egrc_rng *rng, char *buf,
                    size_t size, egrc_error *err) {
    if (size == 0) return egrc_fail(err, "trace buffer has no room");
    text t = {.p = buf, .size = size, .first = 1};
    buf[0] = '\0';
    put(&t, "%s", EGRC_TASK_THINK_OPEN);
    if (style == EGRC_TRACE_VERBOSE)
        verbose(&t, p, rng);
    else
        put_steps_plain(&t, p);
    put(&t, "%s \\boxed{%s}", EGRC_TASK_THINK_CLOSE, p->answer);
    if (t.overflow)
        return egrc_fail(err, "trace buffer of %zu bytes is too small (EGRC_TASK_TEXT_MAX always suffices)",
                         size);
    return 0;
}
