/* A small numeric evaluator for normalised LaTeX answers, so that answers
 * written differently compare by value: "0.5" and "\frac{1}{2}", "2\sqrt{3}"
 * and "\sqrt{12}", "\frac{\pi}{2}" and "1.5707963".
 *
 * Grammar (recursive descent, whitespace ignored):
 *   sum      := product (('+' | '-') product)*
 *   product  := signed (('*' | '/' | \cdot | \times | \div | juxtaposition) signed)*
 *   signed   := ('-' | '+') signed | power
 *   power    := postfix ('^' exponent)?          right-associative
 *   postfix  := primary '!'*
 *   primary  := number | variable | (sum) | [sum] | {sum} | \frac A B | \sqrt[n] A
 *             | \binom A B | \pi | \lfloor sum \rfloor | \lceil sum \rceil
 *             | function power                  (\sin x, \log_{2} n, \ln^{2} x)
 * A juxtaposed integer and proper integer fraction is a mixed number
 * ("1\frac{4}{5}" is 9/5, as MATH writes it); any other juxtaposition
 * multiplies. Variables are a letter or Greek command with an optional
 * subscript; each gets a pseudo-random value in [0.6, 2.4] fixed by its name
 * and the sample index, so two expressions agreeing at three samples are
 * taken as the same function (floor, ceiling and factorial of variables are
 * not evaluated). Runs of three or more letters are words, not products of
 * variables, so "east" and "seat" do not evaluate at all. */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grade_internal.h"

#define EVAL_PI 3.14159265358979323846
#define EVAL_MAX_DEPTH 64

typedef struct parser {
    const char *s;
    size_t len, pos;
    int sample;
    int depth;
    int used_vars;
    int used_steps; /* floor, ceiling or factorial */
    int bad;
} parser;

static double parse_sum(parser *ps);
static double parse_signed(parser *ps);
static double parse_power(parser *ps);
static double parse_primary(parser *ps);

static double reject(parser *ps) {
    ps->bad = 1;
    return 0.0;
}

/* Domain errors (0/0, sqrt of a negative, overflow) end the evaluation. */
static double checked(parser *ps, double v) { return isfinite(v) ? v : reject(ps); }

static void skip_spaces(parser *ps) {
    while (ps->pos < ps->len && isspace((unsigned char)ps->s[ps->pos])) ps->pos++;
}

static char peek(parser *ps) {
    skip_spaces(ps);
    return ps->pos < ps->len ? ps->s[ps->pos] : '\0';
}

static int accept(parser *ps, char c) {
    if (peek(ps) != c) return 0;
    ps->pos++;
    return 1;
}

static void expect(parser *ps, char c) {
    if (!accept(ps, c)) reject(ps);
}

/* Length of the command name at the cursor ("\frac" -> 4), 0 if none. */
static size_t command_len(parser *ps) {
    if (peek(ps) != '\\') return 0;
    size_t n = 0;
    while (ps->pos + 1 + n < ps->len && isalpha((unsigned char)ps->s[ps->pos + 1 + n])) n++;
    return n;
}

static int at_command(parser *ps, const char *name) {
    size_t n = command_len(ps);
    return n == strlen(name) && memcmp(ps->s + ps->pos + 1, name, n) == 0;
}

static int accept_command(parser *ps, const char *name) {
    if (!at_command(ps, name)) return 0;
    ps->pos += 1 + strlen(name);
    return 1;
}

static int in_list(const char *name, size_t n, const char *const *list) {
    for (; *list; list++)
        if (strlen(*list) == n && memcmp(*list, name, n) == 0) return 1;
    return 0;
}

static const char *const greek[] = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota",
    "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi",
    "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega", "hbar", "ell", NULL};

static const char *const functions[] = {"sin",    "cos",    "tan",  "cot",  "sec",  "csc", "arcsin", "arccos",
                                        "arctan", "sinh",   "cosh", "tanh", "ln",   "log", "exp",    NULL};

static const char *const value_commands[] = {"frac", "sqrt", "binom", "pi", "lfloor", "lceil", NULL};

/* Whether the next token can start a factor, i.e. juxtaposition multiplies. */
static int starts_factor(parser *ps) {
    char c = peek(ps);
    if (isdigit((unsigned char)c) || isalpha((unsigned char)c) || c == '.' || c == '(' || c == '[' || c == '{')
        return 1;
    size_t n = command_len(ps);
    const char *name = ps->s + ps->pos + 1;
    return n && (in_list(name, n, value_commands) || in_list(name, n, functions) || in_list(name, n, greek));
}

/* FNV-1a over the name and sample, then a mixing step, mapped to [0.6, 2.4]:
 * positive and away from 0 and 1, so roots, logs and powers stay defined
 * and distinct. */
static double variable_value(const char *name, size_t n, int sample) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)name[i]) * 16777619u;
    h = (h ^ (uint32_t)(sample + 1)) * 16777619u;
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return 0.6 + 1.8 * (double)(h % 1000003u) / 1000003.0;
}

/* A subscript belongs to the variable's name: x_1 and x_2 differ. */
static void skip_subscript(parser *ps) {
    if (peek(ps) != '_') return;
    ps->pos++;
    if (peek(ps) == '{') {
        size_t close = egrc_grade_brace_end(ps->s, ps->len, ps->pos);
        if (close >= ps->len) {
            reject(ps);
            return;
        }
        ps->pos = close + 1;
    } else if (ps->pos < ps->len && isalnum((unsigned char)ps->s[ps->pos])) {
        ps->pos++;
    } else {
        reject(ps);
    }
}

static double parse_variable(parser *ps, size_t name_start) {
    skip_subscript(ps);
    /* A bare "e" is Euler's number, as in the peer graders ("e^2"). */
    if (ps->pos - name_start == 1 && ps->s[name_start] == 'e') return exp(1.0);
    ps->used_vars = 1;
    return variable_value(ps->s + name_start, ps->pos - name_start, ps->sample);
}

static double parse_number(parser *ps) {
    size_t start = ps->pos, i = start;
    while (i < ps->len && isdigit((unsigned char)ps->s[i])) i++;
    if (i < ps->len && ps->s[i] == '.') {
        i++;
        while (i < ps->len && isdigit((unsigned char)ps->s[i])) i++;
    }
    /* Scientific notation as in Minerva's answers ("4.5e33", "1e-5"); a
     * bare "2e" stays 2 times the variable e. */
    if (i < ps->len && (ps->s[i] == 'e' || ps->s[i] == 'E')) {
        size_t j = i + 1;
        if (j < ps->len && (ps->s[j] == '-' || ps->s[j] == '+')) j++;
        if (j < ps->len && isdigit((unsigned char)ps->s[j])) {
            while (j < ps->len && isdigit((unsigned char)ps->s[j])) j++;
            i = j;
        }
    }
    char buf[128];
    if (i - start >= sizeof buf || (i - start == 1 && ps->s[start] == '.')) return reject(ps);
    memcpy(buf, ps->s + start, i - start);
    buf[i - start] = '\0';
    ps->pos = i;
    if (peek(ps) == '_') return reject(ps); /* a base subscript, "40_9" */
    return checked(ps, strtod(buf, NULL));
}

/* A macro argument: a braced group, or as TeX reads "\frac12", one token. */
static double parse_argument(parser *ps) {
    char c = peek(ps);
    if (c == '{') {
        ps->pos++;
        double v = parse_sum(ps);
        expect(ps, '}');
        return v;
    }
    if (isdigit((unsigned char)c)) {
        ps->pos++;
        return c - '0';
    }
    if (isalpha((unsigned char)c)) {
        ps->pos++;
        ps->used_vars = 1;
        return variable_value(&c, 1, ps->sample);
    }
    if (c == '\\') return parse_primary(ps);
    return reject(ps);
}

static double binomial(parser *ps, double n, double k) {
    if (n != floor(n) || k != floor(k) || k < 0 || n < k || n > 1e6) return reject(ps);
    if (k > n - k) k = n - k;
    double r = 1.0;
    for (double i = 1; i <= k; i++) r = r * (n - k + i) / i;
    return checked(ps, round(r));
}

static double apply_function(parser *ps, const char *name, size_t n, double x, double log_base) {
    double r;
    if (n == 3 && !memcmp(name, "sin", 3)) r = sin(x);
    else if (n == 3 && !memcmp(name, "cos", 3)) r = cos(x);
    else if (n == 3 && !memcmp(name, "tan", 3)) r = tan(x);
    else if (n == 3 && !memcmp(name, "cot", 3)) r = 1.0 / tan(x);
    else if (n == 3 && !memcmp(name, "sec", 3)) r = 1.0 / cos(x);
    else if (n == 3 && !memcmp(name, "csc", 3)) r = 1.0 / sin(x);
    else if (n == 6 && !memcmp(name, "arcsin", 6)) r = asin(x);
    else if (n == 6 && !memcmp(name, "arccos", 6)) r = acos(x);
    else if (n == 6 && !memcmp(name, "arctan", 6)) r = atan(x);
    else if (n == 4 && !memcmp(name, "sinh", 4)) r = sinh(x);
    else if (n == 4 && !memcmp(name, "cosh", 4)) r = cosh(x);
    else if (n == 4 && !memcmp(name, "tanh", 4)) r = tanh(x);
    else if (n == 3 && !memcmp(name, "exp", 3)) r = exp(x);
    else if (n == 2) r = log(x); /* ln */
    else r = log(x) / log(log_base); /* log, base 10 unless subscripted */
    return checked(ps, r);
}

/* \sin x, \sin^{2} x, \log_{2} n, \ln(2): an optional power of the result
 * and (for log) a base, in either order, then the argument. */
static double parse_function(parser *ps, const char *name, size_t n) {
    double power = 1.0, base = 10.0;
    for (int i = 0; i < 2; i++) {
        if (accept(ps, '^')) {
            power = parse_argument(ps);
        } else if (accept(ps, '_')) {
            base = parse_argument(ps);
        }
    }
    double x = parse_power(ps);
    if (ps->bad) return 0.0;
    return checked(ps, pow(apply_function(ps, name, n, x, base), power));
}

static double parse_command(parser *ps) {
    size_t n = command_len(ps);
    const char *name = ps->s + ps->pos + 1;
    if (!n) return reject(ps);
    size_t name_start = ps->pos;
    ps->pos += 1 + n;
    if (n == 4 && !memcmp(name, "frac", 4)) {
        double num = parse_argument(ps);
        double den = parse_argument(ps);
        return checked(ps, num / den);
    }
    if (n == 4 && !memcmp(name, "sqrt", 4)) {
        double index = 2.0;
        if (accept(ps, '[')) {
            index = parse_sum(ps);
            expect(ps, ']');
        }
        double x = parse_argument(ps);
        /* Odd roots of negatives are real: \sqrt[3]{-8} = -2. */
        if (x < 0 && fmod(index, 2.0) == 1.0) return checked(ps, -pow(-x, 1.0 / index));
        return checked(ps, pow(x, 1.0 / index));
    }
    if (n == 5 && !memcmp(name, "binom", 5)) {
        double top = parse_argument(ps);
        return binomial(ps, top, parse_argument(ps));
    }
    if (n == 2 && !memcmp(name, "pi", 2)) return EVAL_PI;
    if (n == 6 && !memcmp(name, "lfloor", 6)) {
        double v = parse_sum(ps);
        if (!accept_command(ps, "rfloor")) return reject(ps);
        ps->used_steps = 1;
        return floor(v);
    }
    if (n == 5 && !memcmp(name, "lceil", 5)) {
        double v = parse_sum(ps);
        if (!accept_command(ps, "rceil")) return reject(ps);
        ps->used_steps = 1;
        return ceil(v);
    }
    if (in_list(name, n, functions)) return parse_function(ps, name, n);
    if (in_list(name, n, greek)) return parse_variable(ps, name_start);
    return reject(ps); /* \infty, \cup, \le, ...: not a number */
}

static double parse_primary(parser *ps) {
    char c = peek(ps);
    if (isdigit((unsigned char)c) || c == '.') return parse_number(ps);
    if (c == '(' || c == '[' || c == '{') {
        ps->pos++;
        double v = parse_sum(ps);
        expect(ps, c == '(' ? ')' : c == '[' ? ']' : '}');
        return v;
    }
    if (isalpha((unsigned char)c)) {
        size_t run = 0;
        while (ps->pos + run < ps->len && isalpha((unsigned char)ps->s[ps->pos + run])) run++;
        if (run >= 3) return reject(ps); /* a word */
        size_t start = ps->pos++;
        return parse_variable(ps, start);
    }
    if (c == '\\') return parse_command(ps);
    return reject(ps);
}

static double parse_postfix(parser *ps) {
    double v = parse_primary(ps);
    while (!ps->bad && accept(ps, '!')) {
        if (v < 0 || v != floor(v) || v > 170) return reject(ps);
        v = tgamma(v + 1.0);
        ps->used_steps = 1;
    }
    return v;
}

/* What follows '^': a braced group or one token (a whole digit run, since
 * "2^10" in a plain-text answer means 1024), then any further '^' nests. */
static double parse_exponent(parser *ps) {
    double e;
    char c = peek(ps);
    if (c == '-' || c == '+') {
        ps->pos++;
        e = (c == '-' ? -1.0 : 1.0) * parse_exponent(ps);
        return e;
    }
    if (c == '{') e = parse_argument(ps);
    else if (isdigit((unsigned char)c)) e = parse_number(ps);
    else if (isalpha((unsigned char)c)) e = parse_argument(ps);
    else e = parse_primary(ps);
    if (!ps->bad && accept(ps, '^')) e = checked(ps, pow(e, parse_exponent(ps)));
    return e;
}

static double parse_power(parser *ps) {
    double base = parse_postfix(ps);
    if (ps->bad || !accept(ps, '^')) return base;
    return checked(ps, pow(base, parse_exponent(ps)));
}

static double parse_signed(parser *ps) {
    if (++ps->depth > EVAL_MAX_DEPTH) return reject(ps);
    double v;
    if (accept(ps, '-')) v = -parse_signed(ps);
    else if (accept(ps, '+')) v = parse_signed(ps);
    else v = parse_power(ps);
    ps->depth--;
    return v;
}

/* "\frac{D}{D}" with digits only and numerator < denominator at the cursor. */
static int proper_fraction_at(parser *ps, double *num, double *den) {
    size_t save = ps->pos;
    if (!accept_command(ps, "frac")) return 0;
    double part[2];
    for (int i = 0; i < 2; i++) {
        if (!accept(ps, '{')) break;
        size_t start = ps->pos;
        while (ps->pos < ps->len && isdigit((unsigned char)ps->s[ps->pos])) ps->pos++;
        if (ps->pos == start || ps->pos - start > 15 || !accept(ps, '}')) break;
        part[i] = strtod(ps->s + start, NULL);
        if (i == 1 && part[0] < part[1] && part[1] > 0) {
            *num = part[0], *den = part[1];
            return 1;
        }
    }
    ps->pos = save;
    return 0;
}

/* Whether s[start, end) is an optionally negative run of digits. */
static int is_integer_literal(const char *s, size_t start, size_t end) {
    while (start < end && isspace((unsigned char)s[start])) start++;
    if (start < end && s[start] == '-') start++;
    while (end > start && isspace((unsigned char)s[end - 1])) end--;
    if (start == end) return 0;
    for (size_t i = start; i < end; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    return 1;
}

static double parse_product(parser *ps) {
    skip_spaces(ps);
    size_t first_start = ps->pos;
    double v = parse_signed(ps);
    double num, den;
    if (!ps->bad && is_integer_literal(ps->s, first_start, ps->pos) && proper_fraction_at(ps, &num, &den))
        v += (v < 0 || ps->s[first_start] == '-' ? -1.0 : 1.0) * num / den;
    while (!ps->bad) {
        if (accept(ps, '*') || accept_command(ps, "cdot") || accept_command(ps, "times")) {
            v *= parse_signed(ps);
        } else if (accept(ps, '/') || accept_command(ps, "div")) {
            v = checked(ps, v / parse_signed(ps));
        } else if (starts_factor(ps)) {
            v *= parse_signed(ps);
        } else {
            break;
        }
        v = checked(ps, v);
    }
    return v;
}

static double parse_sum(parser *ps) {
    if (++ps->depth > EVAL_MAX_DEPTH) return reject(ps);
    double v = parse_product(ps);
    while (!ps->bad) {
        if (accept(ps, '+')) v += parse_product(ps);
        else if (accept(ps, '-')) v -= parse_product(ps);
        else break;
        v = checked(ps, v);
    }
    ps->depth--;
    return v;
}

int egrc_grade_eval(const char *expr, size_t len, int sample, double *value, int *used_vars) {
    parser ps = {.s = expr, .len = len, .sample = sample};
    double v = parse_sum(&ps);
    skip_spaces(&ps);
    /* Step functions of variables are constant over the sample range, so
     * "\lfloor n/5 \rfloor" and "\lfloor n/6 \rfloor" would agree: leave
     * those to string comparison. */
    if (ps.bad || ps.pos != ps.len || !isfinite(v) || (ps.used_steps && ps.used_vars)) return -1;
    *value = v;
    *used_vars = ps.used_vars;
    return 0;
}
