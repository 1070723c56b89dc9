/* Relations as answers: an inequality in one variable read as the interval
 * it describes ("x>2" is "(2,\infty)", "1\le x<3" is "[1,3)"), and an
 * equation compared with another as the same relation ("y=2x+1" and
 * "2x-y=-1": lhs-rhs of one is a nonzero constant times the other's). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "grade_internal.h"

/* Points at which equations are compared (see egrc_grade_eval). */
#define RELATION_SAMPLES 3

typedef enum { OP_NONE, OP_LT, OP_LE, OP_GT, OP_GE } relation_op;

/* The comparison operator at s[i], with its length in *op_len. */
static relation_op op_at(const char *s, size_t len, size_t i, size_t *op_len) {
    if (s[i] == '<') return *op_len = 1, OP_LT;
    if (s[i] == '>') return *op_len = 1, OP_GT;
    if (i + 3 <= len && s[i] == '\\' && (s[i + 1] == 'l' || s[i + 1] == 'g') && s[i + 2] == 'e' &&
        (i + 3 == len || !isalpha((unsigned char)s[i + 3])))
        return *op_len = 3, s[i + 1] == 'l' ? OP_LE : OP_GE;
    return OP_NONE;
}

/* Whether s is one variable name: a letter, or a Greek letter command. */
static int is_variable(const char *s, size_t len) {
    while (len && s[0] == ' ') s++, len--;
    while (len && s[len - 1] == ' ') len--;
    if (len == 1) return isalpha((unsigned char)s[0]) != 0;
    if (len < 2 || s[0] != '\\') return 0;
    for (size_t i = 1; i < len; i++)
        if (!isalpha((unsigned char)s[i])) return 0;
    return strncmp(s, "\\infty", len) != 0;
}

/* Flips "a < x" into "x > a" so every bound reads from the variable. */
static relation_op flipped(relation_op op) {
    return op == OP_LT ? OP_GT : op == OP_GT ? OP_LT : op == OP_LE ? OP_GE : op == OP_GE ? OP_LE : OP_NONE;
}

int egrc_grade_inequality_interval(const char *s, size_t len, char *out, size_t out_size) {
    size_t cut[3], cut_len[3], n = 0;
    relation_op ops[2];
    for (size_t i = 0; i < len; i++) {
        size_t op_len;
        relation_op op = op_at(s, len, i, &op_len);
        if (op == OP_NONE) continue;
        if (n == 2) return 0;
        ops[n] = op, cut[n] = i, cut_len[n] = op_len, n++;
        i += op_len - 1;
    }
    if (n == 0) return 0;
    const char *lo = "-\\infty", *hi = "\\infty";
    size_t lo_len = 7, hi_len = 6;
    char lo_bracket = '(', hi_bracket = ')';
    if (n == 1) {
        const char *left = s, *right = s + cut[0] + cut_len[0];
        size_t left_len = cut[0], right_len = len - cut[0] - cut_len[0];
        relation_op op = ops[0];
        if (is_variable(right, right_len) && !is_variable(left, left_len)) {
            const char *t = left; left = right, right = t;
            size_t tl = left_len; left_len = right_len, right_len = tl;
            op = flipped(op);
        }
        if (!is_variable(left, left_len) || !right_len) return 0;
        if (op == OP_GT || op == OP_GE) lo = right, lo_len = right_len, lo_bracket = op == OP_GE ? '[' : '(';
        else hi = right, hi_len = right_len, hi_bracket = op == OP_LE ? ']' : ')';
    } else { /* "a < x <= b" */
        if ((ops[0] == OP_LT || ops[0] == OP_LE) != (ops[1] == OP_LT || ops[1] == OP_LE)) return 0;
        if (!is_variable(s + cut[0] + cut_len[0], cut[1] - cut[0] - cut_len[0])) return 0;
        const char *first = s, *last = s + cut[1] + cut_len[1];
        size_t first_len = cut[0], last_len = len - cut[1] - cut_len[1];
        if (!first_len || !last_len) return 0;
        int ascending = ops[0] == OP_LT || ops[0] == OP_LE;
        relation_op lo_op = ascending ? ops[0] : ops[1], hi_op = ascending ? ops[1] : ops[0];
        lo = ascending ? first : last, lo_len = ascending ? first_len : last_len;
        hi = ascending ? last : first, hi_len = ascending ? last_len : first_len;
        lo_bracket = lo_op == OP_LE || lo_op == OP_GE ? '[' : '(';
        hi_bracket = hi_op == OP_LE || hi_op == OP_GE ? ']' : ')';
    }
    int written = snprintf(out, out_size, "%c%.*s,%.*s%c", lo_bracket, (int)lo_len, lo, (int)hi_len, hi, hi_bracket);
    return written > 0 && (size_t)written < out_size;
}

/* Index of the only '=' in s, or len when there is none or more than one. */
static size_t only_equals(const char *s, size_t len) {
    const char *first = memchr(s, '=', len);
    if (!first || memchr(first + 1, '=', len - (size_t)(first - s) - 1)) return len;
    return (size_t)(first - s);
}

/* lhs - rhs of the equation at sample point k; -1 when not evaluable. */
static int difference(const char *s, size_t len, size_t eq, int k, double *value) {
    double left, right;
    int left_vars = 0, right_vars = 0;
    if (egrc_grade_eval(s, eq, k, &left, &left_vars) ||
        egrc_grade_eval(s + eq + 1, len - eq - 1, k, &right, &right_vars))
        return -1;
    *value = left - right;
    return left_vars || right_vars ? 0 : -1; /* "1=1" is no relation in variables */
}

int egrc_grade_equations_equivalent(const char *g, size_t g_len, const char *p, size_t p_len) {
    size_t g_eq = only_equals(g, g_len), p_eq = only_equals(p, p_len);
    if (g_eq == g_len || p_eq == p_len || !g_eq || !p_eq) return 0;
    double ratio = 0.0;
    for (int k = 0; k < RELATION_SAMPLES; k++) {
        double gd, pd;
        if (difference(g, g_len, g_eq, k, &gd) || difference(p, p_len, p_eq, k, &pd)) return 0;
        if (fabs(gd) < 1e-12 || fabs(pd) < 1e-12) return 0; /* a sample on the curve says nothing */
        double r = gd / pd;
        if (k > 0 && fabs(r - ratio) > 1e-6 * fmax(fabs(r), fabs(ratio))) return 0;
        ratio = r;
    }
    return 1;
}
