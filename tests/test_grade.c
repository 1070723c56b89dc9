/* Answer extraction, answer equivalence and the benchmark loaders.
 *
 * Every gold answer of the six committed benchmark samples must match itself,
 * a reformatted equivalent inside a verbose response, and must not match
 * perturbed answers; a table covers each normalisation rule both ways. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/benchmarks.h"
#include "eval/grade.h"
#include "test.h"

/* ---- extraction ---- */

typedef struct extract_case {
    const char *response;
    const char *answer; /* NULL: no answer */
} extract_case;

static const extract_case extract_cases[] = {
    {"The answer is \\boxed{42}.", "42"},
    {"\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"},
    {"so $\\boxed{\\{1,2\\}}$ holds", "\\{1,2\\}"},
    {"braces \\boxed{a{b{c}}d} nest", "a{b{c}}d"},
    {"first \\boxed{1} then \\boxed{2}", "2"},
    {"\\boxed 5", "5"},
    {"so $\\boxed 5$.", "5"},
    {"\\boxed5", "5"},
    {"so $\\boxed$ nothing", NULL},
    {"\\fbox{7}", "7"},
    {"good \\boxed{3} then broken \\boxed{4", "3"},
    {"good \\boxed{8} then empty \\boxed{ }", "8"},
    {"\\boxedfoo{1}", NULL},
    {"\\boxed{\\text{(B)}}", "\\text{(B)}"},
    {"She pays 2*3=<<2*3=6>>6.\n#### 6", "6"},
    {"steps\n#### 1,000\nmore", "1,000"},
    {"#### 5\nbut really \\boxed{6}", "6"},
    {"The answer is 5\n#### 6", "6"},
    {"Thus the answer is 7.", "7"},
    {"Final Answer: The final answer is $5$. I hope it is correct.", "$5$"},
    {"Answer: 3.5", "3.5"},
    {"so the answer is 3.5.", "3.5"},
    {"The answer is: $(1, 2)$\nDone.", "$(1, 2)$"},
    {"<think>maybe \\boxed{1}</think> so \\boxed{2}", "2"},
    {"<think>maybe \\boxed{1}</think> no idea", "1"},
    {"<think>the answer is 4</think>The answer is 5", "5"},
    {"<think>a</think><think>b \\boxed{9}</think>The answer is 8", "8"},
    {"no answer here", NULL},
    {"", NULL},
};

static void test_extract(void) {
    for (size_t i = 0; i < sizeof extract_cases / sizeof *extract_cases; i++) {
        const extract_case *c = &extract_cases[i];
        egrc_error err;
        strcpy(err.msg, "stale");
        char *got = egrc_extract_answer(c->response, &err);
        if (c->answer) {
            CHECK_MSG(got && strcmp(got, c->answer) == 0, "extract(\"%s\") = \"%s\", want \"%s\"", c->response,
                      got ? got : "(none)", c->answer);
        } else {
            CHECK_MSG(!got, "extract(\"%s\") = \"%s\", want no answer", c->response, got ? got : "");
            CHECK_MSG(err.msg[0] == '\0', "no answer is not an error, got \"%s\"", err.msg);
        }
        free(got);
    }
    egrc_error err;
    CHECK(egrc_extract_answer(NULL, &err) == NULL && err.msg[0] != '\0');
}

/* ---- equivalence rules ---- */

/* Each rule holds both ways: with gold and prediction swapped too. */
typedef struct equiv_case {
    const char *gold, *pred;
    int equal;
} equiv_case;

static const equiv_case equiv_cases[] = {
    /* whitespace, \left \right, thin spaces, dollars */
    {"\\frac{1}{2}", " \\frac { 1 } { 2 } ", 1},
    {"\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", 1},
    {"\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{3})", 0},
    {"x\\;=\\;5", "5", 1},
    {"$\\frac{1}{2}$", "\\frac{1}{2}", 1},
    {"\\$18.90", "18.9", 1},
    /* units in \text and \mbox, unit words */
    {"5 \\text{ cm}", "5", 1},
    {"5 \\text{ cm}", "6", 0},
    {"15\\mbox{ cm}^2", "15", 1},
    {"5.4 \\text{ cents}", "5.4", 1},
    {"1.6 \\mathrm{~cm}", "1.6", 1},
    {"18 dollars", "18", 1},
    {"18 dollars", "19", 0},
    /* degrees */
    {"30^\\circ", "30", 1},
    {"30^{\\circ}", "30 degrees", 1},
    {"\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", 1},
    {"45\xc2\xb0", "45", 1},
    {"30^\\circ", "60^\\circ", 0},
    {"(45^{\\circ}, 60^{\\circ})", "(45,60)", 1},
    /* trailing period */
    {"5.", "5", 1},
    {"\\frac{1}{2}.", "0.5", 1},
    /* \dfrac, \tfrac, \frac12, a/b */
    {"\\dfrac{17}{50}", "\\frac{17}{50}", 1},
    {"\\dfrac{17}{50}", "\\frac{17}{51}", 0},
    {"\\tfrac{1}{3}", "\\frac13", 1},
    {"\\frac12", "\\frac{1}{2}", 1},
    {"\\frac12", "12", 0},
    {"\\frac 34", "0.75", 1},
    {"\\frac9{19}", "\\frac{9}{19}", 1},
    {"\\frac{3}{4}", "3/4", 1},
    {"\\frac{3}{4}", "4/3", 0},
    /* thousands separators, without breaking tuples and lists */
    {"1,000", "1000", 1},
    {"1,000", "1", 0},
    {"58,500", "58500", 1},
    {"10,\\!080", "10080", 1},
    {"11,\\! 111,\\! 111,\\! 100", "11111111100", 1},
    {"\\$32,\\!348", "32348", 1},
    {"1,450,000", "1450000", 1},
    {"1450000", "1450001", 0},
    {"(1,2)", "(12)", 0},
    {"1,2", "12", 0},
    /* percentages: 50% is 50 and 0.5 */
    {"50\\%", "50", 1},
    {"50\\%", "0.5", 1},
    {"17.5%", "0.175", 1},
    {"8 percent", "8", 1},
    {"50\\%", "5", 0},
    {"50", "0.5", 0},
    /* decimals, fractions, leading zeros, negatives, scientific notation */
    {"0.5", "\\frac{1}{2}", 1},
    {".35625", "\\frac{57}{160}", 1},
    {"\\frac{1}{3}", "0.3333333", 1},
    {"\\frac{1}{3}", "0.333", 0},
    {"025", "25", 1},
    {"-\\frac{35}{9}", "-3.888888889", 1},
    {"-10", "10", 0},
    {"4.5e33", "4.5 \\times 10^{33}", 1},
    {"2.7778e-6", "2.7778 \\cdot 10^{-6}", 1},
    {"3.89e-10", "3.89e-11", 0},
    {"4.6e-24", "5.6e-24", 0},
    {"\\sin(\\pi)", "0", 1},
    {"-1./3", "-\\frac{1}{3}", 1},
    /* radicals */
    {"\\sqrt2", "\\sqrt{2}", 1},
    {"11\\sqrt2", "11\\sqrt{2}", 1},
    {"2\\sqrt{3}", "\\sqrt{12}", 1},
    {"2\\sqrt{3}", "\\sqrt{13}", 0},
    {"\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", 1},
    {"5 \\sqrt[3]{4}", "\\sqrt[3]{500}", 1},
    {"\\frac{-1+\\sqrt{5}}{2}", "\\frac{\\sqrt5-1}{2}", 1},
    /* pi */
    {"\\frac{\\pi}{2}", "\\frac12\\pi", 1},
    {"\\frac{\\pi}{2}", "1.5707963", 1},
    {"\\pi", "3.14", 0},
    {"2+\\pi", "\\pi+2", 1},
    {"\\frac{20000}{\\pi}", "20000/\\pi", 1},
    {"-\\frac{\\pi}{6}", "\\frac{\\pi}{6}", 0},
    /* mixed numbers as MATH writes them */
    {"1\\frac{4}{5}", "\\frac{9}{5}", 1},
    {"137 \\frac{1}{2}", "137.5", 1},
    {"-1\\frac{1}{2}", "-1.5", 1},
    {"2\\frac{\\pi}{3}", "\\frac{2\\pi}{3}", 1},
    /* tuples: element-wise, in order */
    {"(1,2)", "(1, 2)", 1},
    {"(1,2)", "(2,1)", 0},
    {"\\left( \\frac{3}{2}, -13 \\right)", "(1.5,-13)", 1},
    {"(6,31,-1)", "(6,31)", 0},
    /* intervals: bracket types matter */
    {"(3,4]", "(3,4]", 1},
    {"(3,4]", "[3,4]", 0},
    {"(3,4]", "(3,4)", 0},
    {"(-\\infty, 0]", "(-\\infty,0]", 1},
    {"\\left(\\frac{3}{5},\\frac{8}{3}\\right]", "(0.6, \\frac{8}{3}]", 1},
    {"(0,9) \\cup (9,36)", "(0,9)\\cup(9,36)", 1},
    {"(0,9) \\cup (9,36)", "(0,9)\\cup[9,36)", 0},
    {"x \\in [-2,7]", "[-2,7]", 1},
    {"(-\\infty, 0) \\cup\\{1\\}.", "(-\\infty,0)\\cup\\{1\\}", 1},
    /* unbracketed lists and sets: any order */
    {"3, 5, 7", "7, 5, 3", 1},
    {"x = 1, 2", "2, 1", 1},
    {"1,2", "x=1 \\text{ or } x=2", 1},
    {"1,2", "1,3", 0},
    {"1,2", "1,2,3", 0},
    {"1,2", "\\{2,1\\}", 1},
    {"(1,1), (3,2)", "(3,2),(1,1)", 1},
    {"(1,1), (3,2)", "(1,1),(2,3)", 0},
    {"\\{1\\pm\\sqrt{5},-2\\}", "-2, 1+\\sqrt{5}, 1-\\sqrt{5}", 1},
    {"1 \\pm \\sqrt{19}", "1-\\sqrt{19}, 1+\\sqrt{19}", 1},
    {"1 \\pm \\sqrt{19}", "1+\\sqrt{19}", 0},
    {"E_{1},E_{2}", "E_2, E_1", 1},
    /* "x = 5" is 5 */
    {"x=5", "5", 1},
    {"x=5", "6", 0},
    {"k=3", "3", 1},
    {"f(x)=x+1", "x+1", 1},
    {"y = 2x + 3", "y=3+2x", 1},
    {"5x - 7y + 11z + 4 = 0", "5x-7y+11z+4=0", 1},
    /* multiple-choice letters */
    {"(A)", "A", 1},
    {"\\text{(B)}", "b", 1},
    {"\\textbf{(C)}", "(c)", 1},
    {"(A)", "B", 0},
    /* text answers */
    {"\\text{Evelyn}", "evelyn", 1},
    {"\\text{east}", "seat", 0},
    {"\\text{ellipse}", "\\text{Ellipse}", 1},
    /* expressions in variables, compared by value at sample points */
    {"2 n^{2}-2 n+1", "2n^2-2n+1", 1},
    {"\\frac{n(n+1)}{2}", "\\frac{n^2+n}{2}", 1},
    {"\\frac{n(n+1)}{2}", "\\frac{n^2+1}{2}", 0},
    {"(a+5)(b+2)", "(b+2)(a+5)", 1},
    {"p - q", "-q+p", 1},
    {"1+2i", "2i+1", 1},
    {"1+2i", "1-2i", 0},
    {"\\frac{37}{4} m", "9.25m", 1},
    {"\\sqrt{2} \\cos (2 t-\\pi / 4)", "\\cos(2t-\\pi/4)\\sqrt{2}", 1},
    {"\\frac{\\log 2}{\\log 2-\\log 3}", "\\frac{\\ln 2}{\\ln 2 - \\ln 3}", 1},
    {"\\lfloor\\frac{2 n-1}{5}\\rfloor", "\\left\\lfloor \\frac{2n-1}{5} \\right\\rfloor", 1},
    {"\\lfloor\\frac{2 n-1}{5}\\rfloor", "\\lfloor\\frac{2 n-1}{6}\\rfloor", 0},
    {"\\binom{2n}{n}", "\\dbinom{2n}{n}", 1},
    {"2021 \\cdot 505 \\cdot 337", "343943885", 1},
    {"10^{100}", "10^{101}", 0},
    /* matrices, element-wise */
    {"\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{bmatrix}-1&0\\\\0&-1\\end{bmatrix}", 1},
    {"\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}",
     "\\begin{pmatrix} \\frac{1}{5} \\\\ -\\frac{18}{5} \\end{pmatrix}", 1},
    {"\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", "\\begin{pmatrix} -18/5 \\\\ 1/5 \\end{pmatrix}", 0},
    {"\\begin{pmatrix} a \\\\ b \\end{pmatrix}", "\\begin{pmatrix} a \\\\ b \\end{pmatrix}", 1},
    {"\\begin{pmatrix} a \\\\ b \\end{pmatrix}", "\\begin{pmatrix} b \\\\ a \\end{pmatrix}", 0},
    {"\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", 0},
    /* base subscripts and Unicode */
    {"40_9", "40_{9}", 1},
    {"40_9", "40", 0},
    {"\\frac{\\pi}{2}", "\xcf\x80/2", 1},
    {"2\\sqrt{3}", "2\xe2\x88\x9a" "3", 1},
    {"-5", "\xe2\x88\x92" "5", 1},
    /* nothing is not an answer */
    {"", "", 0},
    {"5", "", 0},
    {"5", "$ $", 0},
};

static void test_equivalence(void) {
    for (size_t i = 0; i < sizeof equiv_cases / sizeof *equiv_cases; i++) {
        const equiv_case *c = &equiv_cases[i];
        CHECK_MSG(egrc_answers_equivalent(c->gold, c->pred) == c->equal, "gold \"%s\" pred \"%s\": want %s", c->gold,
                  c->pred, c->equal ? "equivalent" : "different");
        CHECK_MSG(egrc_answers_equivalent(c->pred, c->gold) == c->equal, "gold \"%s\" pred \"%s\": want %s", c->pred,
                  c->gold, c->equal ? "equivalent" : "different");
    }
    CHECK(egrc_answers_equivalent(NULL, "1") == 0);
    CHECK(egrc_grade_response("\\frac{1}{2}", "<think>hmm</think>So it is $\\boxed{0.5}$.") == 1);
    CHECK(egrc_grade_response("\\frac{1}{2}", "<think>hmm</think>So it is $\\boxed{0.6}$.") == 0);
    CHECK(egrc_grade_response("18", "He makes 9 * 2 = $18.\n#### 18") == 1);
    CHECK(egrc_grade_response("18", "I am not sure.") == 0);
    CHECK(egrc_grade_response("18", NULL) == 0);
}

/* ---- the committed benchmark samples ---- */

static char *concat3(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

/* s with every `from` replaced by `to`. */
static char *replace_all(const char *s, const char *from, const char *to) {
    size_t count = 0, from_len = strlen(from), to_len = strlen(to);
    for (const char *p = s; (p = strstr(p, from)) != NULL; p += from_len) count++;
    char *out = malloc(strlen(s) + count * to_len + 1), *w = out;
    if (!out) return NULL;
    for (const char *p = s;;) {
        const char *hit = strstr(p, from);
        size_t keep = hit ? (size_t)(hit - p) : strlen(p);
        memcpy(w, p, keep), w += keep;
        if (!hit) break;
        memcpy(w, to, to_len), w += to_len;
        p = hit + from_len;
    }
    *w = '\0';
    return out;
}

/* Whether s is a plain decimal number: -?digits(.digits)? */
static int is_plain_number(const char *s) {
    if (*s == '-') s++;
    if (!isdigit((unsigned char)*s)) return 0;
    while (isdigit((unsigned char)*s)) s++;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s)) return 0;
        while (isdigit((unsigned char)*s)) s++;
    }
    return *s == '\0';
}

/* An equivalent way to write a gold answer, as a model might. Plain numbers
 * (with or without thousands separators): integers become a fraction
 * ("\frac{54}{2}"), or get thousands separators and a unit when large, or
 * lose leading zeros ("025" -> "25"); decimals become exact fractions ("9.5"
 * -> "\frac{95}{10}"). Anything else gets \dfrac for \frac and spaces after
 * commas. */
static char *reformat(const char *gold) {
    char buf[256], number[64];
    size_t n = 0;
    for (const char *p = gold; *p && n + 1 < sizeof number; p++)
        if (*p != ',') number[n++] = *p;
    number[n] = '\0';
    /* "1,450,000" is a number (the grader agrees), "1,2" a list. */
    if (is_plain_number(number) && strlen(gold) < 40 && (!strchr(gold, ',') || egrc_answers_equivalent(gold, number))) {
        gold = number;
        const char *sign = gold[0] == '-' ? "-" : "", *digits = gold + (gold[0] == '-');
        const char *dot = strchr(digits, '.');
        if (dot) { /* 0.5613 -> \frac{5613}{10000} */
            char num[64], den[64] = "1";
            size_t int_len = (size_t)(dot - digits), frac_len = strlen(dot + 1);
            snprintf(num, sizeof num, "%.*s%s", (int)int_len, digits, dot + 1);
            for (size_t i = 0; i < frac_len; i++) strcat(den, "0");
            snprintf(buf, sizeof buf, "%s\\frac{%s}{%s}", sign, num, den);
        } else if (digits[0] == '0' && digits[1]) { /* AIME's "025" */
            while (digits[0] == '0' && digits[1]) digits++;
            snprintf(buf, sizeof buf, "%s%s", sign, digits);
        } else if (strlen(digits) >= 4) { /* 70000 -> 70,000 \text{ dollars} */
            size_t len = strlen(digits), w = 0;
            w += (size_t)snprintf(buf, sizeof buf, "%s", sign);
            for (size_t i = 0; i < len; i++) {
                if (i && (len - i) % 3 == 0) buf[w++] = ',';
                buf[w++] = digits[i];
            }
            snprintf(buf + w, sizeof buf - w, " \\text{ dollars}");
        } else {
            snprintf(buf, sizeof buf, "\\frac{%s%ld}{2}", sign, 2 * strtol(digits, NULL, 10));
        }
        return strdup(buf);
    }
    char *dfrac = replace_all(gold, "\\frac", "\\dfrac");
    /* Not in MATH's "10,\!080", which would become a list. */
    char *spaced = !dfrac ? NULL : strstr(gold, ",\\!") ? strdup(dfrac) : replace_all(dfrac, ",", ", ");
    free(dfrac);
    return spaced;
}

/* A wrong answer close to the gold: its first digit bumped ("(3,4]" ->
 * "(4,4]", "\frac{1}{2}" -> "\frac{2}{2}"), or "+1" appended if it has none.
 * The first digit, because a last one may sit in a unit ("15\mbox{ cm}^2"). */
static char *bump_first_digit(const char *gold) {
    char *s = strdup(gold);
    if (!s) return NULL;
    for (size_t i = 0; s[i]; i++) {
        if (isdigit((unsigned char)s[i])) {
            s[i] = s[i] == '9' ? '0' : (char)(s[i] + 1);
            return s;
        }
    }
    free(s);
    return concat3(gold, "+1", "");
}

/* Splits "(A,B)" (brackets of any kind, $ and spaces around) at its one
 * top-level comma; returns 0 if it is not such a pair. */
static int split_pair(const char *gold, char *open, char *a, char *b, char *close, size_t size) {
    char s[256];
    size_t n = 0;
    for (const char *p = gold; *p && n + 1 < sizeof s; p++)
        if (*p != '$' && *p != ' ') s[n++] = *p;
    s[n] = '\0';
    if (n < 5 || !strchr("([", s[0]) || !strchr(")]", s[n - 1])) return 0;
    int depth = 0;
    size_t comma = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        if (strchr("([{", s[i])) depth++;
        else if (strchr(")]}", s[i])) depth--;
        else if (s[i] == ',' && depth == 0) {
            if (comma) return 0;
            comma = i;
        }
        if (depth < 0) return 0;
    }
    if (!comma || comma - 1 >= size || n - comma - 2 >= size) return 0;
    *open = s[0], *close = s[n - 1];
    snprintf(a, size, "%.*s", (int)(comma - 1), s + 1);
    snprintf(b, size, "%.*s", (int)(n - comma - 2), s + comma + 1);
    return 1;
}

typedef struct sample_counts {
    int self, reformat, perturb;
} sample_counts;

static void check_gold(const char *bench, const char *id, const char *gold, sample_counts *counts) {
    /* Itself, bare and boxed. */
    int ok = egrc_answers_equivalent(gold, gold);
    char *boxed = concat3("\\boxed{", gold, "}");
    ok = ok && boxed && egrc_grade_response(gold, boxed);
    CHECK_MSG(ok, "%s %s: gold \"%s\" does not match itself", bench, id, gold);
    counts->self += ok;
    free(boxed);

    /* Reformatted, inside a verbose response whose thinking boxes a wrong answer. */
    char *alt = reformat(gold);
    char *head = alt ? concat3("<think>\nFirst guess: \\boxed{-12345}. Check again.\n</think>\n\n"
                               "Simplifying, the final answer is $\\boxed{",
                               alt, "}$.")
                     : NULL;
    ok = head && egrc_grade_response(gold, head);
    CHECK_MSG(ok, "%s %s: gold \"%s\" does not match reformatted \"%s\"", bench, id, gold, alt ? alt : "");
    counts->reformat += ok;
    free(alt);
    free(head);

    /* Perturbed: a bumped digit; a tuple in the other order; an interval
     * with the other bracket. Unbracketed lists must take either order. */
    char *bumped = bump_first_digit(gold);
    ok = bumped && !egrc_answers_equivalent(gold, bumped);
    CHECK_MSG(ok, "%s %s: gold \"%s\" matches perturbed \"%s\"", bench, id, gold, bumped ? bumped : "");
    counts->perturb += ok;
    free(bumped);
    char open, close, a[128], b[128], swapped[300];
    if (split_pair(gold, &open, a, b, &close, sizeof a)) {
        if (!egrc_answers_equivalent(a, b)) {
            snprintf(swapped, sizeof swapped, "%c%s,%s%c", open, b, a, close);
            ok = !egrc_answers_equivalent(gold, swapped);
            CHECK_MSG(ok, "%s %s: tuple \"%s\" matches swapped \"%s\"", bench, id, gold, swapped);
            counts->perturb += ok;
        }
        snprintf(swapped, sizeof swapped, "%c%s,%s%c", open == '(' ? '[' : '(', a, b, close);
        ok = !egrc_answers_equivalent(gold, swapped);
        CHECK_MSG(ok, "%s %s: \"%s\" matches \"%s\" with the other bracket", bench, id, gold, swapped);
        counts->perturb += ok;
    } else if (!strchr(gold, '(') && !strchr(gold, '{') && !strchr(gold, '\\') && strchr(gold, ',')) {
        /* "1,450,000" is a number, not a list: it equals itself without commas. */
        char *no_commas = replace_all(gold, ",", "");
        if (no_commas && !egrc_answers_equivalent(gold, no_commas)) {
            const char *comma = strrchr(gold, ',');
            snprintf(swapped, sizeof swapped, "%s, %.*s", comma + 1, (int)(comma - gold), gold);
            ok = egrc_answers_equivalent(gold, swapped);
            CHECK_MSG(ok, "%s %s: list \"%s\" does not match reordered \"%s\"", bench, id, gold, swapped);
            counts->reformat += ok;
        }
        free(no_commas);
    }
}

typedef struct sample_expect {
    const char *name;
    size_t count;
    const char *first_id, *first_gold;
} sample_expect;

static const sample_expect samples[] = {
    {"gsm8k", 20, "0", "18"},
    {"math500", 52, "test/precalculus/807.json", "\\left( 3, \\frac{\\pi}{2} \\right)"},
    {"aime24", 12, "60", "204"},
    {"amc23", 40, "0", "27"},
    {"olympiadbench", 34, "1618", "$(1,8,19), (2,7,13), (4,5,7)$"},
    {"minerva_math", 28, "0", "1.6"},
};

static void test_samples(void) {
    for (size_t s = 0; s < sizeof samples / sizeof *samples; s++) {
        const sample_expect *want = &samples[s];
        char path[512];
        snprintf(path, sizeof path, "%s/benchmarks/%s/sample.jsonl", EGRC_TEST_DATA, want->name);
        egrc_error err;
        egrc_benchmark *bench = egrc_benchmark_load(path, &err);
        CHECK_MSG(bench, "%s: %s", path, err.msg);
        if (!bench) continue;
        CHECK_MSG(strcmp(bench->name, want->name) == 0, "name %s", bench->name);
        CHECK_MSG(bench->count == want->count, "%s: %zu items", want->name, bench->count);
        CHECK_MSG(strcmp(bench->items[0].id, want->first_id) == 0, "%s: first id %s", want->name, bench->items[0].id);
        CHECK_MSG(strcmp(bench->items[0].gold_answer, want->first_gold) == 0, "%s: first gold %s", want->name,
                  bench->items[0].gold_answer);
        sample_counts counts = {0, 0, 0};
        for (size_t i = 0; i < bench->count; i++) {
            CHECK(bench->items[i].question[0] != '\0');
            check_gold(want->name, bench->items[i].id, bench->items[i].gold_answer, &counts);
        }
        printf("%s: %zu gold answers: %d match themselves, %d reformatted matches, %d perturbations rejected\n",
               want->name, bench->count, counts.self, counts.reformat, counts.perturb);
        egrc_benchmark_free(bench);
    }

    /* MATH500's "answer" agrees with the last \boxed{} of its "solution". */
    char path[512];
    snprintf(path, sizeof path, "%s/benchmarks/math500/sample.jsonl", EGRC_TEST_DATA);
    egrc_error err;
    egrc_benchmark *answers = egrc_benchmark_load_jsonl(path, "problem", "answer", &err);
    egrc_benchmark *solutions = egrc_benchmark_load_jsonl(path, "problem", "solution", &err);
    CHECK(answers && solutions && answers->count == solutions->count);
    for (size_t i = 0; answers && solutions && i < answers->count; i++)
        CHECK_MSG(egrc_answers_equivalent(answers->items[i].gold_answer, solutions->items[i].gold_answer),
                  "math500 %s: answer \"%s\" vs solution's \"%s\"", answers->items[i].id, answers->items[i].gold_answer,
                  solutions->items[i].gold_answer);
    if (answers) CHECK(strcmp(answers->name, "sample") == 0);
    egrc_benchmark_free(answers);
    egrc_benchmark_free(solutions);
}

/* ---- loader errors and formats ---- */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK_MSG(f, "cannot write %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* Loads `text` as dir/name with the given fields; returns the error message. */
static const char *load_error(const char *dir, const char *name, const char *text, const char *q, const char *a,
                              egrc_error *err) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_text(path, text);
    egrc_benchmark *bench = egrc_benchmark_load_jsonl(path, q, a, err);
    CHECK_MSG(!bench, "%s loaded", name);
    egrc_benchmark_free(bench);
    unlink(path);
    return err->msg;
}

static void test_loader(void) {
    char dir[] = "/tmp/egrc-test-grade-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    egrc_error err;
    const char *msg;

    msg = load_error(dir, "bad.jsonl", "{\"question\": \"q\", \"answer\": \"1\"}\n{not json\n", "question", "answer",
                     &err);
    CHECK_MSG(strstr(msg, "bad.jsonl:2: not valid JSON"), "%s", msg);
    msg = load_error(dir, "g.jsonl", "{\"question\": \"q\", \"answer\": \"1\"} trailing\n", "question", "answer", &err);
    CHECK_MSG(strstr(msg, "g.jsonl:1: not valid JSON"), "%s", msg);
    msg = load_error(dir, "m.jsonl", "{\"answer\": \"5\"}\n", "question", "answer", &err);
    CHECK_MSG(strstr(msg, "m.jsonl:1: missing field 'question'"), "%s", msg);
    msg = load_error(dir, "t.jsonl", "{\"question\": 5, \"answer\": \"1\"}\n", "question", "answer", &err);
    CHECK_MSG(strstr(msg, "t.jsonl:1: field 'question' must be a string"), "%s", msg);
    msg = load_error(dir, "o.jsonl", "\n{\"question\": \"q\", \"answer\": {\"x\": 1}}\n", "question", "answer", &err);
    CHECK_MSG(strstr(msg, "o.jsonl:2: field 'answer' must be a string, a number or a list"), "%s", msg);
    msg = load_error(dir, "s.jsonl", "{\"question\": \"q\", \"solution\": \"step one\\nstep two\"}\n", "question",
                     "solution", &err);
    CHECK_MSG(strstr(msg, "s.jsonl:1: field 'solution' holds a solution without a final answer"), "%s", msg);
    msg = load_error(dir, "e.jsonl", "\n\n", "question", "answer", &err);
    CHECK_MSG(strstr(msg, "e.jsonl: no records"), "%s", msg);
    msg = load_error(dir, "l.jsonl", "{\"question\": \"q\", \"answer\": []}\n", "question", "answer", &err);
    CHECK_MSG(strstr(msg, "l.jsonl:1: field 'answer' is an empty list"), "%s", msg);
    msg = load_error(dir, "n.jsonl", "[1, 2]\n", "question", "answer", &err);
    CHECK_MSG(strstr(msg, "n.jsonl:1: a record must be a JSON object"), "%s", msg);
    CHECK(egrc_benchmark_load_jsonl("/nonexistent/x.jsonl", "q", "a", &err) == NULL && strstr(err.msg, "x.jsonl"));
    CHECK(egrc_benchmark_load("/nonexistent/gsm8k", &err) == NULL && strstr(err.msg, "/nonexistent/gsm8k"));

    /* A known folder's format, and the message naming folder/file:line. */
    char sub[600], path[700];
    snprintf(sub, sizeof sub, "%s/gsm8k", dir);
    CHECK(mkdir(sub, 0700) == 0);
    snprintf(path, sizeof path, "%s/test.jsonl", sub);
    char text[4096] = "";
    for (int line = 1; line < 17; line++)
        strcat(text, "{\"question\": \"How many?\", \"answer\": \"2+2=4\\n#### 4\"}\n");
    strcat(text, "{\"problem\": \"How many?\", \"answer\": \"#### 4\"}\n");
    write_text(path, text);
    CHECK(egrc_benchmark_load(sub, &err) == NULL);
    CHECK_MSG(strcmp(err.msg, "gsm8k/test.jsonl:17: missing field 'question'") == 0, "%s", err.msg);
    unlink(path);
    rmdir(sub);

    /* An unknown folder: fields from the first record; lists and numbers. */
    snprintf(sub, sizeof sub, "%s/custom", dir);
    CHECK(mkdir(sub, 0700) == 0);
    snprintf(path, sizeof path, "%s/test.jsonl", sub);
    write_text(path, "{\"problem\": \"p1\", \"solution\": \"So $x=\\\\boxed{\\\\frac{1}{2}}$.\", \"idx\": 7}\n\n"
                     "{\"problem\": \"p2\", \"solution\": \"#### 12\"}\n");
    egrc_benchmark *bench = egrc_benchmark_load(sub, &err);
    CHECK_MSG(bench, "%s", err.msg);
    if (bench) {
        CHECK(strcmp(bench->name, "custom") == 0 && bench->count == 2);
        CHECK(strcmp(bench->items[0].gold_answer, "\\frac{1}{2}") == 0 && strcmp(bench->items[0].id, "7") == 0);
        CHECK(strcmp(bench->items[1].gold_answer, "12") == 0 && strcmp(bench->items[1].id, "3") == 0);
        egrc_benchmark_free(bench);
    }
    unlink(path);
    rmdir(sub);
    snprintf(path, sizeof path, "%s/mine.jsonl", dir);
    write_text(path, "{\"q\": \"p\", \"a\": [\"$1$\", 2.5], \"context\": \"c\"}\n{\"q\": \"p\", \"a\": -3.0}\n");
    bench = egrc_benchmark_load_jsonl(path, "q", "a", &err);
    CHECK_MSG(bench, "%s", err.msg);
    if (bench) {
        CHECK(strcmp(bench->name, "mine") == 0 && bench->count == 2);
        CHECK_MSG(strcmp(bench->items[0].gold_answer, "$1$, 2.5") == 0, "%s", bench->items[0].gold_answer);
        CHECK(strcmp(bench->items[1].gold_answer, "-3") == 0 && strcmp(bench->items[0].question, "p") == 0);
        egrc_benchmark_free(bench);
    }
    unlink(path);
    CHECK(rmdir(dir) == 0);
}

/* "\n" in a case-file field stands for a newline (responses span lines). */
static void unescape_newlines(char *field) {
    char *out = field;
    for (char *in = field; *in; in++) {
        if (in[0] == '\\' && in[1] == 'n' && (in == field || in[-1] != '\\')) *out++ = '\n', in++;
        else *out++ = *in;
    }
    *out = '\0';
}

/* tests/data/grade/cases.tsv: gold, prediction, verdict, kind per line; each
 * must grade as its verdict (through egrc_grade_response, as the reward
 * does). Prints the agreement by kind. */
static void test_case_file(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/grade/cases.tsv", EGRC_TEST_DATA);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f) return;
    enum { MAX_KINDS = 64 };
    char kinds[MAX_KINDS][32];
    int agreed[MAX_KINDS] = {0}, total[MAX_KINDS] = {0}, n_kinds = 0, cases = 0;
    char line[8192];
    for (int line_no = 1; fgets(line, sizeof line, f); line_no++) {
        if (line[0] == '#' || line[0] == '\n') continue;
        line[strcspn(line, "\r\n")] = '\0';
        char *fields[4], *rest = line;
        int n = 0;
        for (; n < 4 && rest; n++) {
            fields[n] = rest;
            rest = strchr(rest, '\t');
            if (rest) *rest++ = '\0';
        }
        CHECK_MSG(n == 4 && !rest, "%s:%d: want 4 tab-separated fields", path, line_no);
        if (n != 4) continue;
        unescape_newlines(fields[0]), unescape_newlines(fields[1]);
        int want = strcmp(fields[2], "correct") == 0;
        CHECK_MSG(want || strcmp(fields[2], "incorrect") == 0, "%s:%d: verdict '%s'", path, line_no, fields[2]);
        int got = egrc_grade_response(fields[0], fields[1]);
        CHECK_MSG(got == want, "%s:%d: [%s] gold \"%s\" pred \"%s\" graded %s, want %s", path, line_no, fields[3],
                  fields[0], fields[1], got ? "correct" : "incorrect", fields[2]);
        int k = 0;
        while (k < n_kinds && strcmp(kinds[k], fields[3]) != 0) k++;
        if (k == n_kinds && n_kinds < MAX_KINDS) snprintf(kinds[n_kinds++], sizeof kinds[0], "%s", fields[3]);
        if (k < n_kinds) total[k]++, agreed[k] += got == want;
        cases++;
    }
    fclose(f);
    CHECK_MSG(cases >= 400, "%s: %d cases, want at least 400", path, cases);
    printf("cases.tsv: %d cases;", cases);
    for (int k = 0; k < n_kinds; k++) printf(" %s %d/%d", kinds[k], agreed[k], total[k]);
    printf("\n");
}

/* Every gold answer of the full benchmark files (when this machine has
 * them: $EGRC_MATH_BENCHMARKS or /work/shared/benchmarks/math) grades
 * correct against itself, as a bare answer and boxed in a response. */
static void test_full_benchmarks(void) {
    static const char *const names[] = {"gsm8k", "math500", "aime24", "amc23", "olympiadbench", "minerva_math"};
    const char *root = getenv("EGRC_MATH_BENCHMARKS");
    if (!root) root = "/work/shared/benchmarks/math";
    for (size_t b = 0; b < sizeof names / sizeof *names; b++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s/test.jsonl", root, names[b]);
        if (access(path, R_OK) != 0) {
            printf("%s: skipped (no %s)\n", names[b], path);
            continue;
        }
        egrc_error err;
        egrc_benchmark *bench = egrc_benchmark_load(path, &err);
        CHECK_MSG(bench, "%s: %s", path, err.msg);
        if (!bench) continue;
        size_t matched = 0;
        for (size_t i = 0; i < bench->count; i++) {
            const char *gold = bench->items[i].gold_answer;
            char boxed[8192];
            snprintf(boxed, sizeof boxed, "So the answer is \\boxed{%s}.", gold);
            int ok = egrc_grade_response(gold, gold) && egrc_grade_response(gold, boxed);
            CHECK_MSG(ok, "%s %s: gold \"%s\" does not match itself", names[b], bench->items[i].id, gold);
            matched += (size_t)ok;
        }
        printf("%s full: %zu/%zu gold answers match themselves\n", names[b], matched, bench->count);
        egrc_benchmark_free(bench);
    }
}

int main(void) {
    test_extract();
    test_equivalence();
    test_samples();
    test_loader();
    test_case_file();
    test_full_benchmarks();
    return test_finish("test_grade");
}
