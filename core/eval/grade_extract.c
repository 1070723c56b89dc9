/* Finding the final answer in a model response or a reference solution. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grade.h"
#include "grade_internal.h"

#define MAX_BOX_CANDIDATES 16

/* What one search found: a span of the text, or nothing. */
typedef struct span {
    const char *start;
    size_t len;
} span;

static int is_space(char c) { return isspace((unsigned char)c) != 0; }

static span trimmed(const char *start, size_t len) {
    while (len && is_space(*start)) start++, len--;
    while (len && is_space(start[len - 1])) len--;
    return (span){start, len};
}

/* Last occurrence of `needle` in [text, text+len), or NULL. */
static const char *find_last(const char *text, size_t len, const char *needle) {
    size_t n = strlen(needle);
    if (n > len) return NULL;
    for (size_t i = len - n + 1; i-- > 0;)
        if (memcmp(text + i, needle, n) == 0) return text + i;
    return NULL;
}

static const char *find_last_nocase(const char *text, size_t len, const char *needle) {
    size_t n = strlen(needle);
    if (n > len) return NULL;
    for (size_t i = len - n + 1; i-- > 0;)
        if (strncasecmp(text + i, needle, n) == 0) return text + i;
    return NULL;
}

/* The argument of a box command whose name ends at `after`: "{...}" with
 * nesting, or (as models write "\boxed 5") the next token up to a space or
 * '$'; empty when there is neither. */
static span box_argument(const char *text, size_t len, const char *after) {
    size_t i = (size_t)(after - text);
    if (i < len && isalpha((unsigned char)text[i])) return (span){NULL, 0}; /* a longer command name */
    while (i < len && is_space(text[i])) i++;
    if (i < len && text[i] == '{') {
        size_t close = egrc_grade_brace_end(text, len, i);
        if (close >= len) return (span){NULL, 0};
        return trimmed(text + i + 1, close - i - 1);
    }
    size_t end = i;
    while (end < len && !is_space(text[end]) && text[end] != '$') end++;
    return (span){text + i, end - i};
}

/* The last non-empty \boxed / \fbox / \framebox argument. Walking back over
 * candidates matters: a response may end with an unterminated or empty box
 * after a good one. Only the last few are tried, since each costs a scan to
 * the end of the text and a looping model can write thousands of "\boxed{". */
static span last_box(const char *text, size_t len) {
    static const char *const commands[] = {"\\boxed", "\\fbox", "\\framebox"};
    size_t limit = len;
    for (int tries = 0; tries < MAX_BOX_CANDIDATES; tries++) {
        const char *best = NULL, *best_end = NULL;
        for (size_t c = 0; c < sizeof commands / sizeof *commands; c++) {
            const char *hit = find_last(text, limit, commands[c]);
            if (hit && (!best || hit > best)) best = hit, best_end = hit + strlen(commands[c]);
        }
        if (!best) return (span){NULL, 0};
        span arg = box_argument(text, len, best_end);
        if (arg.start && arg.len) return arg;
        limit = (size_t)(best - text);
    }
    return (span){NULL, 0};
}

/* GSM8K's "#### 42": the rest of the line after the last "####". */
static span hash_answer(const char *text, size_t len) {
    const char *hit = find_last(text, len, "####");
    if (!hit) return (span){NULL, 0};
    const char *start = hit + 4, *end = start;
    while (end < text + len && *end != '\n') end++;
    return trimmed(start, (size_t)(end - start));
}

/* "The answer is X." / "Answer: X": X runs to the end of its line or
 * sentence; a sentence ends at a period followed by a space, so decimals
 * ("3.5") stay whole while "$5$. I hope it is correct." loses its tail. */
static span phrase_answer(const char *text, size_t len) {
    static const char *const phrases[] = {"answer is", "answer:"};
    const char *best = NULL;
    size_t best_len = 0;
    for (size_t p = 0; p < sizeof phrases / sizeof *phrases; p++) {
        const char *hit = find_last_nocase(text, len, phrases[p]);
        if (hit && (!best || hit > best)) best = hit, best_len = strlen(phrases[p]);
    }
    if (!best) return (span){NULL, 0};
    const char *start = best + best_len, *end = start, *stop = text + len;
    while (start < stop && (*start == ':' || *start == ' ' || *start == '\t')) start++;
    end = start;
    while (end < stop && *end != '\n' && !(*end == '.' && (end + 1 == stop || is_space(end[1])))) end++;
    return trimmed(start, (size_t)(end - start));
}

/* The last inline math "$...$" (or "$$...$$"): with no marked answer, a
 * solution's final formula is its answer, as in Math-Verify's fallback. */
static span last_math(const char *text, size_t len) {
    const char *close = find_last(text, len, "$");
    if (!close) return (span){NULL, 0};
    size_t end = (size_t)(close - text);
    while (end > 0 && text[end - 1] == '$') end--;
    const char *open = find_last(text, end, "$");
    if (!open) return (span){NULL, 0};
    return trimmed(open + 1, end - (size_t)(open + 1 - text));
}

/* The last number in the text ("-3", "1,000", "2.5", "3/4"): the final
 * fallback, as GSM8K-style responses often end "so she pays 18 dollars". */
static span last_number(const char *text, size_t len) {
    size_t end = len;
    while (end > 0 && !isdigit((unsigned char)text[end - 1])) end--;
    if (!end) return (span){NULL, 0};
    size_t start = end;
    while (start > 0 && (isdigit((unsigned char)text[start - 1]) ||
                         (strchr(".,/", text[start - 1]) && start > 1 && isdigit((unsigned char)text[start - 2]))))
        start--;
    if (start > 0 && text[start - 1] == '-') start--;
    return (span){text + start, end - start};
}

static span find_answer(const char *text, size_t len) {
    span found = last_box(text, len);
    if (!found.len) found = hash_answer(text, len);
    if (!found.len) found = phrase_answer(text, len);
    return found;
}

/* With no marked answer anywhere: the last formula, then the last number. */
static span find_unmarked_answer(const char *text, size_t len) {
    span found = last_math(text, len);
    if (!found.len) found = last_number(text, len);
    return found;
}

static char *copy_span(span found) {
    char *answer = malloc(found.len + 1);
    if (!answer) return NULL;
    memcpy(answer, found.start, found.len);
    answer[found.len] = '\0';
    return answer;
}

char *egrc_extract_unmarked_answer(const char *text) {
    if (!text) return NULL;
    size_t len = strlen(text);
    span found = {NULL, 0};
    const char *think_end = find_last(text, len, "</think>");
    if (think_end) {
        const char *after = think_end + strlen("</think>");
        found = find_unmarked_answer(after, len - (size_t)(after - text));
    }
    if (!found.len) found = find_unmarked_answer(text, len);
    return found.len ? copy_span(found) : NULL;
}

char *egrc_extract_answer(const char *response, egrc_error *err) {
    if (err) err->msg[0] = '\0';
    if (!response) {
        egrc_fail(err, "no response text to extract an answer from (NULL)");
        return NULL;
    }
    size_t len = strlen(response);
    span found = {NULL, 0};
    const char *think_end = find_last(response, len, "</think>");
    if (think_end) {
        const char *after = think_end + strlen("</think>");
        found = find_answer(after, len - (size_t)(after - response));
    }
    if (!found.len) found = find_answer(response, len);
    if (!found.len) return NULL;
    char *answer = malloc(found.len + 1);
    if (!answer) {
        egrc_fail(err, "out of memory copying a %zu-byte answer", found.len);
        return NULL;
    }
    memcpy(answer, found.start, found.len);
    answer[found.len] = '\0';
    return answer;
}
