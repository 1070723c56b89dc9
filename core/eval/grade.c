/* Answer equivalence: the structure of an answer (matrix, union, set, tuple
 * or interval, unordered list, +/-), then each scalar by string, choice
 * letter, text and value. See grade.h for the contract. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grade.h"
#include "grade_internal.h"

/* Lists longer than this are compared as plain strings. */
#define MAX_ITEMS 64
/* Structures nest (a set of tuples of intervals); deeper ones compare as strings. */
#define MAX_NESTING 8
/* Expressions in variables are compared at this many points, numbers at one. */
#define SAMPLES 3
/* Longer "answers" (a whole response passed by mistake, a degenerate loop)
 * are compared as exact strings, keeping the worst case cheap. */
#define MAX_ANSWER_LEN 4096

typedef struct piece {
    const char *s;
    size_t len;
} piece;

/* Owned item strings of a split list. */
typedef struct item_list {
    char *items[MAX_ITEMS];
    size_t n;
} item_list;

static void list_free(item_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->items[i]);
    l->n = 0;
}

static int pieces_equal(piece a, piece b) { return a.len == b.len && memcmp(a.s, b.s, a.len) == 0; }

/* Values match within a relative 1e-6 (rounding in the evaluator and in
 * decimal answers). Zero has no relative scale, so against zero what is
 * under 1e-12 counts as cancelled rounding (sin(pi)); there is no absolute
 * floor otherwise, since Minerva's answers go down to 1e-27. Two exact
 * integers must be equal: 1450000 and 1450001 are within 1e-6 relative. */
static int is_close(double a, double b) {
    if (a == floor(a) && b == floor(b) && fabs(a) < 9e15 && fabs(b) < 9e15) return a == b;
    double diff = fabs(a - b);
    if (a == 0.0 || b == 0.0) return diff <= 1e-12;
    return diff <= 1e-6 * fmax(fabs(a), fabs(b));
}

/* Whether s[i..] starts with `name`, and a control word like "\cup" is not
 * the start of a longer one ("\cupcake"). */
static int starts_with_command(const char *s, size_t len, size_t i, const char *name) {
    size_t n = strlen(name);
    if (i + n > len || memcmp(s + i, name, n) != 0) return 0;
    return i + n == len || !isalpha((unsigned char)name[n - 1]) || !isalpha((unsigned char)s[i + n]);
}

/* Splits s at separators (",", "&", "\\", "\cup", "\pm") outside every kind
 * of bracket. Brackets are counted without pairing kinds, so the interval
 * "(3,4]" is one group. Returns the count, or 0 when there are more than
 * MAX_ITEMS parts. */
static size_t split_top(const char *s, size_t len, const char *sep, piece *out) {
    size_t n = 0, start = 0, sep_len = strlen(sep);
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (depth == 0 && (sep_len == 1 ? c == sep[0] : starts_with_command(s, len, i, sep))) {
            if (n == MAX_ITEMS) return 0;
            out[n++] = (piece){s + start, i - start};
            start = i + sep_len;
            i = start - 1;
        } else if (c == '\\' && i + 1 < len && s[i + 1] == '\\') {
            i++; /* a row break, not an escaped bracket */
        } else if (c == '(' || c == '[' || c == '{') {
            depth++;
        } else if (c == ')' || c == ']' || c == '}') {
            depth--;
        }
    }
    if (n == MAX_ITEMS) return 0;
    out[n++] = (piece){s + start, len - start};
    return n;
}

/* Whether s is one bracketed group, "(..)", "[..)", "\{..\}", ...; sets the
 * bracket characters ('{' for a set) and the inside. */
static int enclosed(piece s, char *open, char *close, piece *inner) {
    size_t skip = 0;
    if (s.len >= 4 && s.s[0] == '\\' && s.s[1] == '{' && s.s[s.len - 2] == '\\' && s.s[s.len - 1] == '}') skip = 1;
    else if (s.len < 2 || !strchr("([", s.s[0]) || !strchr(")]", s.s[s.len - 1])) return 0;
    int depth = 0;
    for (size_t i = skip; i < s.len - 1; i++) {
        char c = s.s[i];
        if (c == '(' || c == '[' || c == '{') depth++;
        else if (c == ')' || c == ']' || c == '}') depth--;
        if (depth == 0) return 0; /* closed before the end: "(a)(b)" */
    }
    *open = s.s[skip], *close = s.s[s.len - 1];
    *inner = (piece){s.s + skip + 1, s.len - 2 - 2 * skip};
    return 1;
}

/* "x = 5", "f(x) = x+1", "x \in [1,2]": the right-hand side, when the left
 * is one (possibly Greek, subscripted or applied) variable name. */
static piece strip_lhs_once(piece s);

/* "x = 5", "a = b = 6", "(p, q) = (3, 2)", "\approx 3.14" (normalised to
 * "=3.14"): the last side of a labelled or chained answer. */
static piece strip_lhs(piece s) {
    if (s.len > 1 && s.s[0] == '=') s = (piece){s.s + 1, s.len - 1};
    if (s.len > 2 && s.s[0] == '(') { /* a tuple of names: "(p,q)=" */
        size_t i = 1;
        while (i < s.len && (isalpha((unsigned char)s.s[i]) || s.s[i] == ',')) i++;
        if (i + 2 < s.len && i > 1 && s.s[i] == ')' && s.s[i + 1] == '=') return (piece){s.s + i + 2, s.len - i - 2};
    }
    for (int chain = 0; chain < MAX_ITEMS; chain++) {
        piece rest = strip_lhs_once(s);
        if (rest.s == s.s) return s;
        s = rest;
    }
    return s;
}

static piece strip_lhs_once(piece s) {
    size_t i = 0;
    if (i < s.len && s.s[i] == '\\') {
        i++;
        while (i < s.len && isalpha((unsigned char)s.s[i])) i++;
        if (i == 1) return s;
    } else if (i < s.len && isupper((unsigned char)s.s[i])) {
        while (i < s.len && i < 3 && isupper((unsigned char)s.s[i])) i++; /* a segment or angle: "AB", "ABC" */
    } else if (i < s.len && isalpha((unsigned char)s.s[i])) {
        i++;
    } else {
        return s;
    }
    if (i < s.len && s.s[i] == '_') {
        if (i + 1 < s.len && s.s[i + 1] == '{') {
            size_t close = egrc_grade_brace_end(s.s, s.len, i + 1);
            if (close >= s.len) return s;
            i = close + 1;
        } else {
            i += 2;
        }
    }
    if (i < s.len && s.s[i] == '(') {
        size_t j = i + 1;
        while (j < s.len && isalnum((unsigned char)s.s[j])) j++;
        if (j == i + 1 || j >= s.len || s.s[j] != ')') return s;
        i = j + 1;
    }
    if (i < s.len && s.s[i] == '=') i += 1;
    else if (starts_with_command(s.s, s.len, i, "\\in")) i += 3;
    else return s;
    if (i >= s.len) return s;
    return (piece){s.s + i, s.len - i};
}

/* A multiple-choice letter, "C" or "(C)", lower-cased; 0 if not one. */
static char choice_letter(piece s) {
    if (s.len == 3 && s.s[0] == '(' && s.s[2] == ')') s = (piece){s.s + 1, 1};
    if (s.len != 1) return 0;
    char c = (char)tolower((unsigned char)s.s[0]);
    return c >= 'a' && c <= 'e' ? c : 0;
}

static int is_text(piece s) {
    for (size_t i = 0; i < s.len; i++)
        if (!isalpha((unsigned char)s.s[i]) && s.s[i] != ' ') return 0;
    return s.len > 0;
}

static int scalar_equivalent(piece g, piece p, int g_percent, int p_percent) {
    g = strip_lhs(g), p = strip_lhs(p);
    if (pieces_equal(g, p)) return 1;
    char gc = choice_letter(g), pc = choice_letter(p);
    if (gc && pc) return gc == pc;
    if (is_text(g) && is_text(p)) return g.len == p.len && strncasecmp(g.s, p.s, g.len) == 0;
    double gv[SAMPLES], pv[SAMPLES];
    int g_vars = 0, p_vars = 0;
    for (int k = 0; k < SAMPLES; k++) {
        if (egrc_grade_eval(g.s, g.len, k, &gv[k], &g_vars) || egrc_grade_eval(p.s, p.len, k, &pv[k], &p_vars))
            return 0;
        if (k == 0 && !g_vars && !p_vars) break;
    }
    int samples = g_vars || p_vars ? SAMPLES : 1;
    /* "50%" matches 50 and 0.5: each side with a percent sign is also read
     * as a fraction. */
    for (int gs = 0; gs <= g_percent; gs++) {
        for (int ps = 0; ps <= p_percent; ps++) {
            int all = 1;
            for (int k = 0; k < samples && all; k++)
                all = is_close(gv[k] * (gs ? 0.01 : 1.0), pv[k] * (ps ? 0.01 : 1.0));
            if (all) return 1;
        }
    }
    return 0;
}

static int equivalent(piece g, piece p, int g_percent, int p_percent, int depth);

/* Appends s to the list, as two items "A+B" and "A-B" when s is "A\pm B". */
static int list_add(item_list *l, piece s) {
    piece parts[MAX_ITEMS];
    size_t n = split_top(s.s, s.len, "\\pm", parts);
    if (n != 2) n = split_top(s.s, s.len, "\\mp", parts);
    int sign_split = n == 2;
    for (int k = 0; k < (sign_split ? 2 : 1); k++) {
        if (l->n == MAX_ITEMS) return -1;
        size_t len = sign_split ? parts[0].len + 1 + parts[1].len : s.len;
        char *item = malloc(len + 1);
        if (!item) return -1;
        if (sign_split) {
            memcpy(item, parts[0].s, parts[0].len);
            item[parts[0].len] = k ? '-' : '+';
            memcpy(item + parts[0].len + 1, parts[1].s, parts[1].len);
        } else {
            memcpy(item, s.s, s.len);
        }
        item[len] = '\0';
        l->items[l->n++] = item;
    }
    return 0;
}

/* The comma-separated items of s, empty ones dropped, +/- expanded. */
static int split_list(piece s, item_list *l) {
    piece parts[MAX_ITEMS];
    size_t n = split_top(s.s, s.len, ",", parts);
    l->n = 0;
    if (!n) return -1;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len && list_add(l, parts[i])) {
            list_free(l);
            return -1;
        }
    }
    return 0;
}

static piece item(const item_list *l, size_t i) { return (piece){l->items[i], strlen(l->items[i])}; }

/* Every gold item matched by a distinct predicted item. */
static int unordered_equivalent(const item_list *g, const item_list *p, int gpc, int ppc, int depth) {
    if (g->n != p->n) return 0;
    int used[MAX_ITEMS] = {0};
    for (size_t i = 0; i < g->n; i++) {
        size_t j = 0;
        while (j < p->n && (used[j] || !equivalent(item(g, i), item(p, j), gpc, ppc, depth + 1))) j++;
        if (j == p->n) return 0;
        used[j] = 1;
    }
    return 1;
}

static int ordered_equivalent(const piece *g, const piece *p, size_t n, int gpc, int ppc, int depth) {
    for (size_t i = 0; i < n; i++)
        if (!equivalent(g[i], p[i], gpc, ppc, depth + 1)) return 0;
    return 1;
}

/* "\begin{pmatrix}...\end{pmatrix}" (any matrix environment): the cells. */
static int matrix_body(piece s, piece *body) {
    static const char begin[] = "\\begin{", end[] = "\\end{";
    if (s.len < sizeof begin || memcmp(s.s, begin, sizeof begin - 1) != 0) return 0;
    const char *env = s.s + sizeof begin - 1, *env_end = memchr(env, '}', s.len - (sizeof begin - 1));
    if (!env_end || env_end - env < 6 || memcmp(env_end - 6, "matrix", 6) != 0) return 0;
    size_t env_len = (size_t)(env_end - env), tail = sizeof end - 1 + env_len + 1;
    const char *body_start = env_end + 1;
    if ((size_t)(body_start - s.s) + tail > s.len) return 0;
    const char *t = s.s + s.len - tail;
    if (memcmp(t, end, sizeof end - 1) != 0 || memcmp(t + sizeof end - 1, env, env_len) != 0) return 0;
    *body = (piece){body_start, (size_t)(t - body_start)};
    return 1;
}

/* "1\\2\\" ends in a row break before \end: no row follows it. */
static size_t without_empty_last_row(const piece *rows, size_t n) {
    return n > 1 && rows[n - 1].len == 0 ? n - 1 : n;
}

static int matrix_equivalent(piece g, piece p, int gpc, int ppc, int depth) {
    piece g_rows[MAX_ITEMS], p_rows[MAX_ITEMS], g_cells[MAX_ITEMS], p_cells[MAX_ITEMS];
    size_t rows = without_empty_last_row(g_rows, split_top(g.s, g.len, "\\\\", g_rows));
    if (!rows || rows != without_empty_last_row(p_rows, split_top(p.s, p.len, "\\\\", p_rows))) return 0;
    for (size_t r = 0; r < rows; r++) {
        size_t cols = split_top(g_rows[r].s, g_rows[r].len, "&", g_cells);
        if (!cols || cols != split_top(p_rows[r].s, p_rows[r].len, "&", p_cells)) return 0;
        if (!ordered_equivalent(g_cells, p_cells, cols, gpc, ppc, depth)) return 0;
    }
    return 1;
}

static int list_equivalent(piece g, piece p, int gpc, int ppc, int depth) {
    item_list gl, pl;
    if (split_list(g, &gl)) return 0;
    if (split_list(p, &pl)) {
        list_free(&gl);
        return 0;
    }
    int result = unordered_equivalent(&gl, &pl, gpc, ppc, depth);
    list_free(&gl);
    list_free(&pl);
    return result;
}

static int equivalent(piece g, piece p, int gpc, int ppc, int depth) {
    if (pieces_equal(g, p)) return 1;
    if (depth > MAX_NESTING || !g.len || !p.len) return 0;
    piece g_body, p_body;
    if (matrix_body(g, &g_body)) return matrix_body(p, &p_body) && matrix_equivalent(g_body, p_body, gpc, ppc, depth);

    piece g_parts[MAX_ITEMS], p_parts[MAX_ITEMS];
    size_t n = split_top(g.s, g.len, "\\cup", g_parts);
    if (n > 1) /* a union: the same pieces in the same order */
        return n == split_top(p.s, p.len, "\\cup", p_parts) && ordered_equivalent(g_parts, p_parts, n, gpc, ppc, depth);

    char g_open, g_close, p_open, p_close;
    piece g_in, p_in;
    int p_enclosed = enclosed(p, &p_open, &p_close, &p_in);
    if (enclosed(g, &g_open, &g_close, &g_in)) {
        if (g_open == '{') /* a set: the prediction may drop the braces */
            return list_equivalent(g_in, p_enclosed && p_open == '{' ? p_in : p, gpc, ppc, depth);
        n = split_top(g_in.s, g_in.len, ",", g_parts);
        if (n > 1) /* a tuple or an interval: same brackets, same order */
            return p_enclosed && p_open == g_open && p_close == g_close &&
                   n == split_top(p_in.s, p_in.len, ",", p_parts) &&
                   ordered_equivalent(g_parts, p_parts, n, gpc, ppc, depth);
    }
    n = split_top(g.s, g.len, ",", g_parts);
    if (n > 1 || split_top(g.s, g.len, "\\pm", g_parts) == 2 || split_top(g.s, g.len, "\\mp", g_parts) == 2)
        return list_equivalent(g, p_enclosed && p_open == '{' ? p_in : p, gpc, ppc, depth);
    if (split_top(p.s, p.len, ",", p_parts) > 1) return 0;
    return scalar_equivalent(g, p, gpc, ppc);
}

int egrc_answers_equivalent(const char *gold, const char *pred) {
    if (!gold || !pred) return 0;
    if (strlen(gold) > MAX_ANSWER_LEN || strlen(pred) > MAX_ANSWER_LEN) return strcmp(gold, pred) == 0;
    egrc_norm_answer g, p;
    if (egrc_grade_normalize(gold, &g)) return 0;
    if (egrc_grade_normalize(pred, &p)) {
        free(g.text);
        return 0;
    }
    int result = egrc_grade_equations_equivalent(g.text, strlen(g.text), p.text, strlen(p.text));
    /* An inequality on either side is compared as its interval. */
    char g_interval[MAX_ANSWER_LEN + 32], p_interval[MAX_ANSWER_LEN + 32];
    const char *g_text = g.text, *p_text = p.text;
    if (egrc_grade_inequality_interval(g.text, strlen(g.text), g_interval, sizeof g_interval)) g_text = g_interval;
    if (egrc_grade_inequality_interval(p.text, strlen(p.text), p_interval, sizeof p_interval)) p_text = p_interval;
    piece gs = strip_lhs((piece){g_text, strlen(g_text)});
    piece ps = strip_lhs((piece){p_text, strlen(p_text)});
    if (!result) result = gs.len && ps.len && equivalent(gs, ps, g.percent, p.percent, 0);
    free(g.text);
    free(p.text);
    return result;
}

int egrc_grade_response(const char *gold_answer, const char *response) {
    if (!gold_answer || !response) return 0;
    char *gold = egrc_extract_answer(gold_answer, NULL);
    const char *gold_text = gold ? gold : gold_answer;
    char *answer = egrc_extract_answer(response, NULL);
    int result;
    if (answer) {
        result = egrc_answers_equivalent(gold_text, answer);
    } else if (egrc_answers_equivalent(gold_text, response)) {
        result = 1;
    } else {
        answer = egrc_extract_unmarked_answer(response);
        result = answer && egrc_answers_equivalent(gold_text, answer);
    }
    free(answer);
    free(gold);
    return result;
}
