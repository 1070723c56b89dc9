/* Normalising an answer string before comparison. The passes, in order:
 *
 * 1. clean: drop what never carries meaning ($, \left/\right, \! \, \; \:
 *    \quad, \displaystyle, degree signs, \% and %, which set `percent`),
 *    unwrap \textbf{} \boxed{} and friends, map \dfrac/\tfrac/\cfrac to
 *    \frac, \dbinom/\tbinom to \binom, \leq/\geq to \le/\ge, and common
 *    Unicode symbols (π √ ∞ − × · ±) to LaTeX. \text{}, \mbox{}, \mathrm{}
 *    groups that follow the answer and end it ("5 \text{ cm}^2") are units
 *    and dropped; elsewhere their content stays ("\text{(B)}" is "(B)").
 * 2. words: drop the words "degree(s)" and "percent" (setting `percent`),
 *    and unit words after a plain number ("18 dollars" is "18").
 * 3. thousands: "1,000" and "58,500.5" lose their commas, but only when the
 *    whole answer is such a number, so tuples like "(1,000)" or lists like
 *    "1, 2" keep theirs.
 * 4. tokens: give \frac and \sqrt braced arguments as TeX reads them
 *    ("\frac12" is "\frac{1}{2}", "\sqrt2" is "\sqrt{2}"), brace the token
 *    after ^ and _ ("x^2" is "x^{2}"; a digit run stays whole, "2^10" is
 *    "2^{10}"), and remove whitespace except where it ends a command name
 *    ("\cot x").
 * 5. trim, and drop trailing periods. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grade_internal.h"

/* Deeper nesting than this is copied as it stands rather than recursed into. */
#define NORM_MAX_DEPTH 64

/* A growable NUL-terminated string. After a failed allocation `oom` is set,
 * further appends are ignored, and the owner reports the failure once. */
typedef struct strbuf {
    char *s;
    size_t len, cap;
    int oom;
} strbuf;

static void strbuf_append(strbuf *b, const char *text, size_t len) {
    if (b->oom) return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + len + 1) cap *= 2;
        char *grown = realloc(b->s, cap);
        if (!grown) {
            b->oom = 1;
            return;
        }
        b->s = grown, b->cap = cap;
    }
    memcpy(b->s + b->len, text, len);
    b->len += len;
    b->s[b->len] = '\0';
}

static void strbuf_putc(strbuf *b, char c) { strbuf_append(b, &c, 1); }

/* Hands over the string; NULL (having freed it) after a failed allocation. */
static char *strbuf_take(strbuf *b) {
    if (b->oom) {
        free(b->s);
        return NULL;
    }
    if (!b->s) strbuf_append(b, "", 0);
    return b->s;
}

size_t egrc_grade_brace_end(const char *s, size_t len, size_t open) {
    int depth = 0;
    for (size_t i = open; i < len; i++) {
        if (s[i] == '\\') {
            i++;
        } else if (s[i] == '{') {
            depth++;
        } else if (s[i] == '}' && --depth == 0) {
            return i;
        }
    }
    return len;
}

static int is_space(char c) { return isspace((unsigned char)c) != 0; }
static int is_alpha(char c) { return isalpha((unsigned char)c) != 0; }
static int is_digit(char c) { return isdigit((unsigned char)c) != 0; }

static int name_is(const char *name, size_t n, const char *want) { return strlen(want) == n && !memcmp(name, want, n); }

static int name_in(const char *name, size_t n, const char *const *list) {
    for (; *list; list++)
        if (name_is(name, n, *list)) return 1;
    return 0;
}

/* ---- pass 1: clean ---- */

/* Text whose content stays, or which is dropped as a unit after the answer. */
static const char *const text_commands[] = {"text", "textrm", "textup", "textnormal", "textsf",
                                            "textit", "mbox", "hbox", "mathrm", NULL};
/* Formatting around the answer: the content stays. */
static const char *const unwrap_commands[] = {"textbf", "mathbf", "boxed", "fbox", "bm",
                                              "boldsymbol", "mathit", "mathsf", "mathnormal", NULL};
/* Delimiter sizing, spacing, style and degree signs. */
static const char *const dropped_commands[] = {"left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr",
                                               "quad", "qquad", "displaystyle", "textstyle", "limits",
                                               "nolimits", "circ", "degree", NULL};
/* Renamed commands, as pairs: from, to. */
static const char *const renamed_commands[] = {
    "dfrac", "frac", "tfrac", "frac", "cfrac", "frac", "dbinom", "binom", "tbinom", "binom",
    "leq", "le", "leqslant", "le", "geq", "ge", "geqslant", "ge", "neq", "ne", NULL};

/* Unicode symbols models use in plain-text answers, as pairs: symbol, LaTeX. */
static const char *const unicode_symbols[] = {
    "\xc2\xb0", "",             /* degree sign */
    "\xcf\x80", "\\pi ",        /* pi */
    "\xe2\x88\x9a", "\\sqrt ",  /* square root */
    "\xe2\x88\x9e", "\\infty ", /* infinity */
    "\xe2\x88\x92", "-",        /* minus sign */
    "\xc3\x97", "\\times ",     /* multiplication sign */
    "\xc2\xb7", "\\cdot ",      /* middle dot */
    "\xc2\xb1", "\\pm ",        /* plus-minus */
    NULL};

typedef struct cleaner {
    strbuf out;
    int percent;
} cleaner;

static size_t command_name_len(const char *s, size_t len, size_t backslash) {
    size_t n = 0;
    while (backslash + 1 + n < len && is_alpha(s[backslash + 1 + n])) n++;
    return n;
}

static int out_has_content(const strbuf *b) {
    for (size_t i = 0; i < b->len; i++)
        if (!is_space(b->s[i])) return 1;
    return 0;
}

/* End of an exponent starting at s[i] == '^': "^{...}", "^\cmd" or "^x". */
static size_t exponent_end(const char *s, size_t len, size_t i) {
    i++;
    while (i < len && is_space(s[i])) i++;
    if (i >= len) return len;
    if (s[i] == '{') {
        size_t close = egrc_grade_brace_end(s, len, i);
        return close < len ? close + 1 : len;
    }
    if (s[i] == '\\') return i + 1 + (command_name_len(s, len, i) ? command_name_len(s, len, i) : 1);
    if (s[i] == '-' || is_digit(s[i])) {
        size_t j = i + 1;
        while (j < len && is_digit(s[j])) j++;
        return j;
    }
    return i + 1;
}

/* Whether s[i..] holds nothing but more units: spaces, periods, '$', '/',
 * exponents, spacing commands and further text groups. */
static int is_unit_tail(const char *s, size_t len, size_t i) {
    while (i < len) {
        char c = s[i];
        if (is_space(c) || c == '.' || c == '$' || c == '/' || c == '~') {
            i++;
        } else if (c == '^') {
            i = exponent_end(s, len, i);
        } else if (c == '\\' && i + 1 < len && strchr("!,;: ", s[i + 1])) {
            i += 2;
        } else if (c == '\\') {
            size_t n = command_name_len(s, len, i);
            if (!n || !name_in(s + i + 1, n, text_commands)) return 0;
            size_t j = i + 1 + n;
            while (j < len && is_space(s[j])) j++;
            if (j >= len || s[j] != '{') return 0;
            size_t close = egrc_grade_brace_end(s, len, j);
            if (close >= len) return 0;
            i = close + 1;
        } else {
            return 0;
        }
    }
    return 1;
}

static int is_word(const char *s, size_t len, const char *word) {
    while (len && is_space(*s)) s++, len--;
    while (len && is_space(s[len - 1])) len--;
    return len == strlen(word) && strncasecmp(s, word, len) == 0;
}

static void clean(cleaner *c, const char *s, size_t len, int depth);

/* A command with a braced argument (text, unwrap); returns the index after
 * what it consumed, or 0 when the command has no braced argument. */
static size_t clean_group(cleaner *c, const char *s, size_t len, size_t after_name, int is_text, int depth) {
    size_t open = after_name;
    while (open < len && is_space(s[open])) open++;
    if (open >= len || s[open] != '{') return 0;
    size_t close = egrc_grade_brace_end(s, len, open);
    if (close >= len) return 0;
    const char *inner = s + open + 1;
    size_t inner_len = close - open - 1;
    if (is_text && out_has_content(&c->out) && is_unit_tail(s, len, close + 1)) return len;
    if (is_text && (is_word(inner, inner_len, "and") || is_word(inner, inner_len, "or"))) {
        strbuf_putc(&c->out, ',');
    } else if (depth < NORM_MAX_DEPTH) {
        clean(c, inner, inner_len, depth + 1);
    } else {
        strbuf_append(&c->out, inner, inner_len);
    }
    return close + 1;
}

/* Handles the command at s[i] == '\\'; returns the index after it. */
static size_t clean_command(cleaner *c, const char *s, size_t len, size_t i, int depth) {
    if (i + 1 >= len) return len;
    char next = s[i + 1];
    if (next == '!') { /* MATH's thousands separator is ",\! " */
        i += 2;
        while (i < len && is_space(s[i])) i++;
        return i;
    }
    if (strchr(",;: ", next)) return i + 2; /* thin spaces */
    if (next == '%') {
        c->percent = 1;
        return i + 2;
    }
    if (next == '$') return i + 2;
    size_t n = command_name_len(s, len, i);
    if (!n) { /* \{ \} \\ and other control symbols stay */
        strbuf_append(&c->out, s + i, 2);
        return i + 2;
    }
    const char *name = s + i + 1;
    size_t after = i + 1 + n;
    int is_text = name_in(name, n, text_commands);
    if (is_text || name_in(name, n, unwrap_commands)) {
        size_t end = clean_group(c, s, len, after, is_text, depth);
        if (end) return end;
    }
    if (name_in(name, n, dropped_commands)) {
        /* "\left." and "\right." are invisible delimiters. */
        if ((name_is(name, n, "left") || name_is(name, n, "right")) && after < len && s[after] == '.') after++;
        return after;
    }
    if (name_is(name, n, "approx")) { /* "x \approx 3.14" is graded as "x = 3.14" */
        strbuf_putc(&c->out, '=');
        return after;
    }
    for (const char *const *r = renamed_commands; *r; r += 2) {
        if (name_is(name, n, r[0])) {
            strbuf_putc(&c->out, '\\');
            strbuf_append(&c->out, r[1], strlen(r[1]));
            return after;
        }
    }
    strbuf_append(&c->out, s + i, after - i);
    return after;
}

/* "^\circ", "^{\circ}", "^{ \circ }": the degree sign, dropped whole. */
static size_t degree_end(const char *s, size_t len, size_t caret) {
    size_t i = caret + 1, braced = 0;
    while (i < len && is_space(s[i])) i++;
    if (i < len && s[i] == '{') braced = 1, i++;
    while (i < len && is_space(s[i])) i++;
    if (i + 5 > len || memcmp(s + i, "\\circ", 5) != 0 || (i + 5 < len && is_alpha(s[i + 5]))) return 0;
    i += 5;
    while (i < len && is_space(s[i])) i++;
    if (braced) {
        if (i >= len || s[i] != '}') return 0;
        i++;
    }
    return i;
}

/* A standalone "and" / "or" word at s[i] (space before and after); the index
 * after it, or 0. */
static size_t list_word_end(const char *s, size_t len, size_t i) {
    if (i == 0 || !is_space(s[i - 1])) return 0;
    static const char *const words[] = {"and", "or"};
    for (size_t w = 0; w < 2; w++) {
        size_t n = strlen(words[w]);
        if (i + n < len && memcmp(s + i, words[w], n) == 0 && is_space(s[i + n])) return i + n;
    }
    return 0;
}

static void clean(cleaner *c, const char *s, size_t len, int depth) {
    size_t i = 0;
    while (i < len && !c->out.oom) {
        char ch = s[i];
        size_t end;
        if (ch == '\\') {
            i = clean_command(c, s, len, i, depth);
        } else if (ch == '^' && (end = degree_end(s, len, i)) != 0) {
            i = end;
        } else if (ch == '$') {
            i++;
        } else if (ch == '%') {
            c->percent = 1;
            i++;
        } else if (ch == '{' && i + 2 < len && s[i + 1] == ',' && s[i + 2] == '}') {
            strbuf_putc(&c->out, ','); /* "14{,}916": a braced thousands comma */
            i += 3;
        } else if (ch == ';') {
            strbuf_putc(&c->out, ','); /* "1; 2" lists like "1, 2" */
            i++;
        } else if ((end = list_word_end(s, len, i)) != 0 && out_has_content(&c->out)) {
            strbuf_putc(&c->out, ','); /* a bare "and"/"or", as \text{ and } is */
            i = end;
        } else if (ch == '~') {
            strbuf_putc(&c->out, ' ');
            i++;
        } else {
            const char *const *u = unicode_symbols;
            for (; *u; u += 2)
                if (strlen(u[0]) <= len - i && !memcmp(s + i, u[0], strlen(u[0]))) break;
            if (*u) {
                strbuf_append(&c->out, u[1], strlen(u[1]));
                i += strlen(u[0]);
            } else {
                strbuf_putc(&c->out, ch);
                i++;
            }
        }
    }
}

/* ---- pass 2: words ---- */

/* Removes whole words (letters not touching other letters or a backslash). */
static void drop_word(char *s, const char *word, int *found) {
    size_t n = strlen(word);
    for (char *p = s; (p = strcasestr(p, word)) != NULL;) {
        int starts = p == s || (!is_alpha(p[-1]) && p[-1] != '\\');
        if (starts && !is_alpha(p[n])) {
            memmove(p, p + n, strlen(p + n) + 1);
            *found = 1;
        } else {
            p++;
        }
    }
}

/* "18 dollars", "5 cm^2", "3.5 hours": a plain number, a space, then a
 * unit-like tail that starts with a word of two or more letters. */
static void drop_unit_words(char *s) {
    size_t i = 0, digits = 0;
    while (is_space(s[i])) i++;
    if (s[i] == '-' || s[i] == '+') i++;
    while (is_digit(s[i]) || s[i] == '.' || s[i] == ',') digits += is_digit(s[i]) != 0, i++;
    size_t number_end = i;
    if (!digits || !is_space(s[i])) return;
    while (is_space(s[i])) i++;
    if (!is_alpha(s[i]) || !is_alpha(s[i + 1])) return;
    for (size_t j = i; s[j]; j++)
        if (!is_alpha(s[j]) && !is_digit(s[j]) && !is_space(s[j]) && !strchr("^{}/.-", s[j])) return;
    s[number_end] = '\0';
}

/* ---- pass 3: thousands separators ---- */

static void drop_thousands_commas(char *s) {
    while (is_space(*s)) s++;
    size_t i = (*s == '-' || *s == '+') ? 1 : 0, lead = 0;
    while (is_digit(s[i + lead])) lead++;
    if (lead < 1 || lead > 3 || s[i + lead] != ',') return;
    size_t j = i + lead;
    while (s[j] == ',') {
        for (int k = 1; k <= 3; k++)
            if (!is_digit(s[j + k])) return;
        j += 4;
    }
    if (is_digit(s[j])) return;
    if (s[j] == '.') {
        j++;
        while (is_digit(s[j])) j++;
    }
    while (is_space(s[j])) j++;
    if (s[j]) return;
    char *w = s;
    for (char *r = s; *r; r++)
        if (*r != ',') *w++ = *r;
    *w = '\0';
}

/* ---- pass 4: tokens and whitespace ---- */

static void tokens(strbuf *out, const char *s, size_t len, int depth);

/* Whether the output ends with a control word such as "\cot" (so that a
 * following letter needs the space that separates it). */
static int ends_with_control_word(const strbuf *b) {
    size_t i = b->len;
    while (i > 0 && is_alpha(b->s[i - 1])) i--;
    if (i == b->len || i == 0 || b->s[i - 1] != '\\') return 0;
    size_t slashes = 0;
    while (i > slashes && b->s[i - 1 - slashes] == '\\') slashes++;
    return slashes % 2 == 1;
}

/* Emits one argument at s[i] (after spaces) braced, returns the index after it. */
static size_t braced_argument(strbuf *out, const char *s, size_t len, size_t i, int digit_run, int depth) {
    while (i < len && is_space(s[i])) i++;
    if (i >= len) return len;
    size_t end;
    if (s[i] == '{') {
        end = egrc_grade_brace_end(s, len, i);
        if (end >= len) { /* unbalanced: copy the rest as is */
            strbuf_append(out, s + i, len - i);
            return len;
        }
        strbuf_putc(out, '{');
        tokens(out, s + i + 1, end - i - 1, depth + 1);
        strbuf_putc(out, '}');
        return end + 1;
    }
    if (s[i] == '\\') {
        size_t n = command_name_len(s, len, i);
        end = i + 1 + (n ? n : 1);
    } else if (digit_run && (is_digit(s[i]) || (s[i] == '-' && i + 1 < len && is_digit(s[i + 1])))) {
        end = i + 1;
        while (end < len && is_digit(s[end])) end++;
    } else {
        end = i + 1;
    }
    if (end > len) end = len;
    strbuf_putc(out, '{');
    strbuf_append(out, s + i, end - i);
    strbuf_putc(out, '}');
    return end;
}

static void tokens(strbuf *out, const char *s, size_t len, int depth) {
    if (depth > NORM_MAX_DEPTH) {
        strbuf_append(out, s, len);
        return;
    }
    size_t i = 0;
    while (i < len && !out->oom) {
        char ch = s[i];
        if (is_space(ch)) {
            while (i < len && is_space(s[i])) i++;
            if (i < len && is_alpha(s[i]) && ends_with_control_word(out)) strbuf_putc(out, ' ');
        } else if (ch == '^' || ch == '_') {
            strbuf_putc(out, ch);
            i = braced_argument(out, s, len, i + 1, 1, depth);
        } else if (ch == '\\' && command_name_len(s, len, i)) {
            size_t n = command_name_len(s, len, i);
            int is_frac = name_is(s + i + 1, n, "frac") || name_is(s + i + 1, n, "binom");
            int is_sqrt = name_is(s + i + 1, n, "sqrt");
            strbuf_append(out, s + i, n + 1);
            i += n + 1;
            if (is_sqrt) {
                size_t j = i;
                while (j < len && is_space(s[j])) j++;
                if (j < len && s[j] == '[') {
                    size_t close = j;
                    while (close < len && s[close] != ']') close++;
                    if (close < len) {
                        strbuf_putc(out, '[');
                        tokens(out, s + j + 1, close - j - 1, depth + 1);
                        strbuf_putc(out, ']');
                        j = close + 1;
                    }
                }
                i = braced_argument(out, s, len, j, 0, depth);
            } else if (is_frac) {
                i = braced_argument(out, s, len, i, 0, depth);
                i = braced_argument(out, s, len, i, 0, depth);
            }
        } else if (ch == '\\') { /* a control symbol, "\{" or "\\" */
            size_t n = i + 1 < len ? 2 : 1;
            strbuf_append(out, s + i, n);
            i += n;
        } else {
            strbuf_putc(out, ch);
            i++;
        }
    }
}

/* ---- all passes ---- */

int egrc_grade_normalize(const char *answer, egrc_norm_answer *out) {
    cleaner c = {{NULL, 0, 0, 0}, 0};
    clean(&c, answer, strlen(answer), 0);
    char *cleaned = strbuf_take(&c.out);
    if (!cleaned) return -1;
    int unused = 0;
    drop_word(cleaned, "degrees", &unused);
    drop_word(cleaned, "degree", &unused);
    drop_word(cleaned, "percent", &c.percent);
    drop_unit_words(cleaned);
    drop_thousands_commas(cleaned);

    strbuf tok = {NULL, 0, 0, 0};
    tokens(&tok, cleaned, strlen(cleaned), 0);
    free(cleaned);
    char *text = strbuf_take(&tok);
    if (!text) return -1;
    size_t n = strlen(text);
    while (n && (text[n - 1] == '.' || is_space(text[n - 1]))) text[--n] = '\0';
    out->text = text;
    out->percent = c.percent;
    return 0;
}
