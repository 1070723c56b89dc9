/* Loading math benchmarks from JSON Lines. See benchmarks.h. */
#include "benchmarks.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "io/fileio.h"
#include "grade.h"

/* Benchmark files are a few MB; this only stops a wrong path from eating memory. */
#define MAX_BENCHMARK_BYTES ((size_t)1 << 30)

/* Where each known benchmark keeps its question and answer. */
typedef struct benchmark_format {
    const char *name;
    const char *question_field;
    const char *answer_field;
    const char *context_field; /* text that precedes the question, when present */
} benchmark_format;

static const benchmark_format known_formats[] = {
    {"gsm8k", "question", "answer", NULL},              /* "... #### 42" */
    {"math500", "problem", "answer", NULL},             /* LaTeX string */
    {"aime24", "problem", "answer", NULL},              /* "025" */
    {"amc23", "problem", "answer", NULL},               /* JSON number 27.0 */
    {"olympiadbench", "question", "final_answer", "context"}, /* list of LaTeX strings */
    {"minerva_math", "problem", "solution", NULL},      /* last \boxed{} of the solution */
};

/* Fields from which each item takes its id, in order of preference. */
static const char *const id_fields[] = {"id", "idx", "unique_id"};

/* "a/b/gsm8k/test.jsonl" -> "gsm8k/test.jsonl": short enough for messages,
 * long enough to tell the benchmarks' files apart. */
static const char *display_name(const char *path) {
    const char *last = strrchr(path, '/');
    if (!last) return path;
    const char *prev = last;
    while (prev > path && prev[-1] != '/') prev--;
    return prev;
}

/* A JSON number as an answer: 27.0 is "27", 0.5 is "0.5". */
static void format_number(double v, char *buf, size_t size) { snprintf(buf, size, "%.15g", v); }

static char *join_answer_list(const cJSON *list) {
    size_t total = 1;
    char num[64];
    const cJSON *e;
    cJSON_ArrayForEach(e, list) {
        if (cJSON_IsString(e)) total += strlen(e->valuestring) + 2;
        else if (cJSON_IsNumber(e)) total += sizeof num + 2;
        else return NULL;
    }
    char *joined = malloc(total);
    if (!joined) return NULL;
    size_t used = 0;
    cJSON_ArrayForEach(e, list) {
        const char *text = e->valuestring;
        if (cJSON_IsNumber(e)) format_number(e->valuedouble, num, sizeof num), text = num;
        used += (size_t)snprintf(joined + used, total - used, "%s%s", used ? ", " : "", text);
    }
    joined[used] = '\0';
    return joined;
}

/* The gold answer of one record, or NULL with the message naming line and field. */
static char *answer_of(const cJSON *value, const char *where, size_t line, const char *field, egrc_error *err) {
    char num[64];
    if (cJSON_IsNumber(value)) {
        format_number(value->valuedouble, num, sizeof num);
        char *copy = strdup(num);
        if (!copy) egrc_fail(err, "%s:%zu: out of memory", where, line);
        return copy;
    }
    if (cJSON_IsArray(value)) {
        if (cJSON_GetArraySize(value) == 0) {
            egrc_fail(err, "%s:%zu: field '%s' is an empty list", where, line, field);
            return NULL;
        }
        char *joined = join_answer_list(value);
        if (!joined) egrc_fail(err, "%s:%zu: field '%s' must list only strings and numbers", where, line, field);
        return joined;
    }
    if (!cJSON_IsString(value)) {
        egrc_fail(err, "%s:%zu: field '%s' must be a string, a number or a list of them", where, line, field);
        return NULL;
    }
    const char *text = value->valuestring;
    /* A whole solution carries its answer in a box, after "####", or at
     * least spreads over lines; a bare answer is taken as it stands. */
    int is_solution = strstr(text, "\\boxed") || strstr(text, "\\fbox") || strstr(text, "####") || strchr(text, '\n');
    char *answer = is_solution ? egrc_extract_answer(text, err) : strdup(text);
    if (!answer) {
        if (!is_solution) egrc_fail(err, "%s:%zu: out of memory", where, line);
        else if (err && err->msg[0]) egrc_error_prefix(err, "%s:%zu", where, line);
        else
            egrc_fail(err,
                      "%s:%zu: field '%s' holds a solution without a final answer "
                      "(no \\boxed{}, '####' or 'the answer is')",
                      where, line, field);
        return NULL;
    }
    if (!answer[0]) {
        free(answer);
        egrc_fail(err, "%s:%zu: field '%s' is empty", where, line, field);
        return NULL;
    }
    return answer;
}

static char *id_of(const cJSON *record, size_t line) {
    char buf[64];
    for (size_t i = 0; i < sizeof id_fields / sizeof *id_fields; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(record, id_fields[i]);
        if (cJSON_IsString(v)) return strdup(v->valuestring);
        if (cJSON_IsNumber(v)) {
            format_number(v->valuedouble, buf, sizeof buf);
            return strdup(buf);
        }
    }
    snprintf(buf, sizeof buf, "%zu", line);
    return strdup(buf);
}

static char *question_of(const cJSON *record, const benchmark_format *fmt, const char *where, size_t line,
                         egrc_error *err) {
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(record, fmt->question_field);
    if (!q) {
        egrc_fail(err, "%s:%zu: missing field '%s'", where, line, fmt->question_field);
        return NULL;
    }
    if (!cJSON_IsString(q)) {
        egrc_fail(err, "%s:%zu: field '%s' must be a string", where, line, fmt->question_field);
        return NULL;
    }
    const cJSON *ctx = fmt->context_field ? cJSON_GetObjectItemCaseSensitive(record, fmt->context_field) : NULL;
    const char *context = cJSON_IsString(ctx) && ctx->valuestring[0] ? ctx->valuestring : NULL;
    size_t size = strlen(q->valuestring) + (context ? strlen(context) + 1 : 0) + 1;
    char *text = malloc(size);
    if (!text) {
        egrc_fail(err, "%s:%zu: out of memory", where, line);
        return NULL;
    }
    snprintf(text, size, "%s%s%s", context ? context : "", context ? "\n" : "", q->valuestring);
    return text;
}

/* Fills `item` from one record; 0 or -1 with the message. */
static int load_record(const cJSON *record, const benchmark_format *fmt, const char *where, size_t line,
                       egrc_benchmark_item *item, egrc_error *err) {
    if (!cJSON_IsObject(record)) return egrc_fail(err, "%s:%zu: a record must be a JSON object", where, line);
    item->question = question_of(record, fmt, where, line, err);
    if (!item->question) return -1;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(record, fmt->answer_field);
    if (!a) return egrc_fail(err, "%s:%zu: missing field '%s'", where, line, fmt->answer_field);
    item->gold_answer = answer_of(a, where, line, fmt->answer_field, err);
    if (!item->gold_answer) return -1;
    item->id = id_of(record, line);
    if (!item->id) return egrc_fail(err, "%s:%zu: out of memory", where, line);
    return 0;
}

/* A line's size and encoding, checked before it is parsed: cJSON copies any
 * bytes into its strings, so a Latin-1 file would otherwise reach the
 * tokenizer, and a huge line the per-token buffers of generation. */
static int check_line(const char *start, size_t len, const char *where, size_t line, egrc_error *err) {
    if (len > EGRC_BENCHMARK_MAX_LINE_BYTES)
        return egrc_fail(err,
                         "%s:%zu: the line is %zu bytes, more than the %zu bytes (1 MiB) allowed for one record (the "
                         "longest in the six math benchmarks is 13 KB): is this a benchmark file?",
                         where, line, len, EGRC_BENCHMARK_MAX_LINE_BYTES);
    const utf8proc_uint8_t *bytes = (const utf8proc_uint8_t *)start;
    for (size_t at = 0; at < len;) {
        if (bytes[at] < 0x80) {
            at++;
            continue;
        }
        utf8proc_int32_t codepoint;
        utf8proc_ssize_t used = utf8proc_iterate(bytes + at, (utf8proc_ssize_t)(len - at), &codepoint);
        if (used < 0)
            return egrc_fail(err,
                             "%s:%zu: byte %zu of the line (0x%02X) is not valid UTF-8; benchmark files must be "
                             "UTF-8 text (convert it, e.g. iconv -f latin1 -t utf-8)",
                             where, line, at + 1, bytes[at]);
        at += (size_t)used;
    }
    return 0;
}

/* The fields of a file of unknown origin, from its first record. */
static void detect_format(const cJSON *record, benchmark_format *fmt) {
    fmt->question_field = cJSON_HasObjectItem(record, "problem") ? "problem" : "question";
    if (cJSON_HasObjectItem(record, "final_answer")) fmt->answer_field = "final_answer";
    else if (cJSON_HasObjectItem(record, "answer")) fmt->answer_field = "answer";
    else fmt->answer_field = "solution";
    fmt->context_field = NULL;
}

static egrc_benchmark *load(const char *path, const char *name, benchmark_format fmt, int detect, egrc_error *err) {
    const char *where = display_name(path);
    size_t size;
    char *text = egrc_read_file(path, MAX_BENCHMARK_BYTES, &size, err);
    if (!text) return NULL;
    egrc_benchmark *bench = calloc(1, sizeof *bench);
    size_t cap = 0;
    int failed = !bench || !(bench->name = strdup(name)) || !(bench->file = strdup(path));
    if (failed) egrc_fail(err, "%s: out of memory", where);
    size_t line = 0;
    for (char *cursor = text; !failed && cursor < text + size;) {
        char *end = memchr(cursor, '\n', (size_t)(text + size - cursor));
        if (!end) end = text + size;
        *end = '\0';
        line++;
        const char *start = cursor, *parse_end = NULL;
        cursor = end + 1;
        if ((failed = check_line(start, (size_t)(end - start), where, line, err))) break;
        if (!start[strspn(start, " \t\r")]) continue;
        /* One whole value per line: trailing text is an error too. */
        cJSON *record = cJSON_ParseWithOpts(start, &parse_end, 1);
        if (!record) {
            failed = egrc_fail(err, "%s:%zu: not valid JSON (at byte %zu of the line)", where, line,
                               parse_end ? (size_t)(parse_end - start) + 1 : (size_t)1);
            break;
        }
        if (detect && bench->count == 0) detect_format(record, &fmt);
        if (bench->count == cap) {
            cap = cap ? 2 * cap : 256;
            egrc_benchmark_item *grown = realloc(bench->items, cap * sizeof *grown);
            if (!grown) failed = egrc_fail(err, "%s: out of memory at line %zu", where, line);
            else bench->items = grown;
        }
        if (!failed) {
            egrc_benchmark_item *item = &bench->items[bench->count++];
            memset(item, 0, sizeof *item);
            item->line = line;
            failed = load_record(record, &fmt, where, line, item, err);
        }
        cJSON_Delete(record);
    }
    free(text);
    if (!failed && bench->count == 0) failed = egrc_fail(err, "%s: no records", where);
    if (failed) {
        egrc_benchmark_free(bench);
        return NULL;
    }
    return bench;
}

/* "dir/name.jsonl" -> "name" (malloc'd). */
static char *file_stem(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 6 && strcmp(base + n - 6, ".jsonl") == 0) n -= 6;
    return strndup(base, n);
}

egrc_benchmark *egrc_benchmark_load_jsonl(const char *path, const char *question_field, const char *answer_field,
                                          egrc_error *err) {
    char *name = file_stem(path);
    if (!name) {
        egrc_fail(err, "%s: out of memory", path);
        return NULL;
    }
    benchmark_format fmt = {name, question_field, answer_field, NULL};
    egrc_benchmark *bench = load(path, name, fmt, 0, err);
    free(name);
    return bench;
}

egrc_benchmark *egrc_benchmark_load(const char *path, egrc_error *err) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        egrc_fail(err, "%s: no such benchmark file or folder", path);
        return NULL;
    }
    /* The benchmark's name is its folder's: "x/gsm8k" or "x/gsm8k/test.jsonl". */
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    char *file = malloc(n + sizeof "/test.jsonl");
    char *folder = file ? strndup(path, n) : NULL;
    if (!folder) {
        free(file);
        egrc_fail(err, "%s: out of memory", path);
        return NULL;
    }
    if (S_ISDIR(sb.st_mode)) {
        snprintf(file, n + sizeof "/test.jsonl", "%s/test.jsonl", folder);
    } else {
        memcpy(file, folder, n + 1);
        char *slash = strrchr(folder, '/');
        if (slash) *slash = '\0';
        else folder[0] = '\0';
    }
    const char *base = strrchr(folder, '/');
    base = base ? base + 1 : folder;
    benchmark_format fmt = {NULL, NULL, NULL, NULL};
    for (size_t i = 0; i < sizeof known_formats / sizeof *known_formats; i++)
        if (strcmp(base, known_formats[i].name) == 0) fmt = known_formats[i];
    egrc_benchmark *bench;
    if (fmt.name) {
        bench = load(file, fmt.name, fmt, 0, err);
    } else {
        /* A folder's test.jsonl is named after the folder, any other file by itself. */
        const char *file_base = strrchr(file, '/');
        file_base = file_base ? file_base + 1 : file;
        int named_by_folder = (S_ISDIR(sb.st_mode) || strcmp(file_base, "test.jsonl") == 0) && base[0];
        char *name = named_by_folder ? strdup(base) : file_stem(file);
        bench = name ? load(file, name, fmt, 1, err) : NULL;
        if (!name) egrc_fail(err, "%s: out of memory", path);
        free(name);
    }
    free(file);
    free(folder);
    return bench;
}

void egrc_benchmark_free(egrc_benchmark *bench) {
    if (!bench) return;
    for (size_t i = 0; i < bench->count; i++) {
        free(bench->items[i].id);
        free(bench->items[i].question);
        free(bench->items[i].gold_answer);
    }
    free(bench->items);
    free(bench->file);
    free(bench->name);
    free(bench);
}
