/* Data and grading from Lua: the built-in task suite (tasks.h), math answer
 * grading (grade.h) and the benchmark loaders (benchmarks.h). (The reward
 * formulas live in Lua only: lua/egrc/rewards.lua.) */
#include <stdlib.h>
#include <string.h>

#include "eval/benchmarks.h"
#include "eval/grade.h"
#include "lua_internal.h"
#include "eval/tasks.h"

/* ---- task problems as tables ---- */

static void set_string(lua_State *L, const char *key, const char *value) {
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
}

static void set_int(lua_State *L, const char *key, lua_Integer value) {
    lua_pushinteger(L, value);
    lua_setfield(L, -2, key);
}

/* {family=, difficulty=, question=, answer=, steps={{a=, op=, b=, result=}...}, prompt=} */
static void push_problem(lua_State *L, const egrc_task_problem *p) {
    lua_createtable(L, 0, 6);
    set_string(L, "family", egrc_task_family_name(p->family));
    set_int(L, "difficulty", p->difficulty);
    set_string(L, "question", p->question);
    set_string(L, "answer", p->answer);
    lua_createtable(L, p->n_steps, 0);
    for (int i = 0; i < p->n_steps; i++) {
        const egrc_task_step *s = &p->steps[i];
        lua_createtable(L, 0, 4);
        set_int(L, "a", s->a);
        set_int(L, "b", s->b);
        set_int(L, "result", s->result);
        lua_pushlstring(L, &s->op, 1);
        lua_setfield(L, -2, "op");
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "steps");
    char prompt[EGRC_TASK_TEXT_MAX];
    if (egrc_task_prompt(p, prompt, sizeof prompt, NULL) == 0) set_string(L, "prompt", prompt);
}

static void copy_field(lua_State *L, int arg, const char *key, char *dst, size_t size) {
    lua_getfield(L, arg, key);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (!s || len >= size)
        luaL_argerror(L, arg, lua_pushfstring(L, "problem field '%s': string of at most %d bytes expected", key,
                                              (int)size - 1));
    memcpy(dst, s, len + 1);
    lua_pop(L, 1);
}

static lua_Integer int_field(lua_State *L, int idx, const char *key, int arg) {
    lua_getfield(L, idx, key);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_argerror(L, arg, lua_pushfstring(L, "problem field '%s': integer expected", key));
    lua_pop(L, 1);
    return v;
}

/* A problem table back into the struct; the answer suffices for checking,
 * rendering a trace needs the family and the steps too. */
static void check_problem(lua_State *L, int arg, egrc_task_problem *p, int need_steps) {
    luaL_checktype(L, arg, LUA_TTABLE);
    memset(p, 0, sizeof *p);
    copy_field(L, arg, "answer", p->answer, sizeof p->answer);
    if (lua_getfield(L, arg, "question") == LUA_TSTRING) copy_field(L, arg, "question", p->question, sizeof p->question);
    lua_pop(L, 1);
    if (!need_steps) return;
    lua_getfield(L, arg, "family");
    p->family = egrc_task_family_find(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (p->family < 0) luaL_argerror(L, arg, "problem field 'family': a task family name expected");
    p->difficulty = (int)int_field(L, arg, "difficulty", arg);
    if (lua_getfield(L, arg, "steps") != LUA_TTABLE) luaL_argerror(L, arg, "problem field 'steps': table expected");
    size_t n = lua_rawlen(L, -1);
    luaL_argcheck(L, n <= EGRC_TASK_MAX_STEPS, arg, "problem has too many steps");
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        int step = lua_gettop(L);
        if (!lua_istable(L, step)) luaL_argerror(L, arg, "problem field 'steps': tables expected");
        egrc_task_step *s = &p->steps[i];
        s->a = (int)int_field(L, step, "a", arg);
        s->b = (int)int_field(L, step, "b", arg);
        s->result = (int)int_field(L, step, "result", arg);
        lua_getfield(L, step, "op");
        const char *op = lua_tostring(L, -1);
        if (!op || strlen(op) != 1 || !strchr("+-*<>", *op)) luaL_argerror(L, arg, "step field 'op': one of + - * < > expected");
        s->op = *op;
        lua_pop(L, 2);
    }
    p->n_steps = (int)n;
    lua_pop(L, 1);
}

/* ---- egrc.tasks ---- */

static int tasks_families(lua_State *L) {
    lua_createtable(L, egrc_task_family_count(), 0);
    for (int f = 0; f < egrc_task_family_count(); f++) {
        lua_pushstring(L, egrc_task_family_name(f));
        lua_rawseti(L, -2, f + 1);
    }
    return 1;
}

static int check_family(lua_State *L, int arg, const char *name) {
    if (!name) return -1;
    int f = egrc_task_family_find(name);
    if (f < 0) {
        const char *names[EGRC_TASK_FAMILIES];
        for (int i = 0; i < EGRC_TASK_FAMILIES; i++) names[i] = egrc_task_family_name(i);
        const char *near = egrc_closest(name, names, EGRC_TASK_FAMILIES);
        luaL_argerror(L, arg, lua_pushfstring(L, "unknown task family '%s'%s%s%s", name, near ? " (did you mean '" : "",
                                              near ? near : "", near ? "'?)" : ""));
    }
    return f;
}

/* egrc.tasks.sample(rng, {split="train"|"eval", family=, difficulty=, eval_seed=}) */
static int tasks_sample(lua_State *L) {
    egrc_rng *rng = egrc_check_rng(L, 1);
    egrc_check_options(L, 2, (const char *const[]){"split", "family", "difficulty", "eval_seed", NULL});
    int split = egrc_opt_enum(L, 2, "split", "train", (const char *const[]){"train", "eval", NULL});
    int family = check_family(L, 2, egrc_opt_string(L, 2, "family", NULL));
    int difficulty = (int)egrc_opt_integer(L, 2, "difficulty", 0);
    uint64_t eval_seed = (uint64_t)egrc_opt_integer(L, 2, "eval_seed", 0);
    egrc_task_problem p;
    egrc_error err;
    if (egrc_task_sample(split ? EGRC_TASK_EVAL : EGRC_TASK_TRAIN, eval_seed, family, difficulty, rng, &p, &err))
        return egrc_lua_raise(L, &err);
    push_problem(L, &p);
    return 1;
}

/* egrc.tasks.generate(rng, family, difficulty): one problem, ignoring the split. */
static int tasks_generate(lua_State *L) {
    egrc_rng *rng = egrc_check_rng(L, 1);
    int family = check_family(L, 2, luaL_checkstring(L, 2));
    egrc_task_problem p;
    egrc_error err;
    if (egrc_task_generate(family, (int)luaL_checkinteger(L, 3), rng, &p, &err)) return egrc_lua_raise(L, &err);
    push_problem(L, &p);
    return 1;
}

/* egrc.tasks.eval_set(eval_seed, per_cell) -> the fixed evaluation list */
static int tasks_eval_set(lua_State *L) {
    lua_Integer seed = luaL_checkinteger(L, 1), per_cell = luaL_checkinteger(L, 2);
    luaL_argcheck(L, per_cell >= 1 && per_cell <= 100000, 2, "per_cell must be in 1..100000");
    egrc_task_problem *list;
    size_t count;
    egrc_error err;
    lua_createtable(L, 0, 0);
    if (egrc_task_eval_set((uint64_t)seed, (int)per_cell, &list, &count, &err)) return egrc_lua_raise(L, &err);
    for (size_t i = 0; i < count; i++) {
        push_problem(L, &list[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    free(list);
    return 1;
}

static int tasks_prompt(lua_State *L) {
    egrc_task_problem p;
    check_problem(L, 1, &p, 0);
    char buf[EGRC_TASK_TEXT_MAX];
    egrc_error err;
    if (egrc_task_prompt(&p, buf, sizeof buf, &err)) return egrc_lua_raise(L, &err);
    lua_pushstring(L, buf);
    return 1;
}

/* egrc.tasks.trace(problem, "concise"|"verbose", [rng]) -> the worked response */
static int tasks_trace(lua_State *L) {
    egrc_task_problem p;
    check_problem(L, 1, &p, 1);
    int style = luaL_checkoption(L, 2, NULL, (const char *const[]){"concise", "verbose", NULL});
    egrc_rng seeded, *rng = &seeded;
    if (lua_isnoneornil(L, 3)) egrc_rng_seed(&seeded, 0);
    else rng = egrc_check_rng(L, 3);
    char buf[EGRC_TASK_TEXT_MAX];
    egrc_error err;
    if (egrc_task_trace(&p, style ? EGRC_TRACE_VERBOSE : EGRC_TRACE_CONCISE, rng, buf, sizeof buf, &err))
        return egrc_lua_raise(L, &err);
    lua_pushstring(L, buf);
    return 1;
}

static int tasks_check(lua_State *L) {
    egrc_task_problem p;
    check_problem(L, 1, &p, 0);
    lua_pushboolean(L, egrc_task_check(&p, luaL_checkstring(L, 2)));
    return 1;
}

static int tasks_is_eval(lua_State *L) {
    egrc_task_problem p;
    check_problem(L, 1, &p, 0);
    lua_pushboolean(L, egrc_task_is_eval(&p, (uint64_t)luaL_checkinteger(L, 2)));
    return 1;
}

/* egrc.tasks.tokenizer(): the suite's tokenizer, compiled into egrc. */
static int tasks_tokenizer(lua_State *L) {
    const egrc_embedded_file *f = egrc_embedded_find("task_tokenizer.json");
    if (!f) return luaL_error(L, "egrc.tasks.tokenizer: not available in this build");
    egrc_push_tokenizer(L, NULL);
    egrc_error err;
    egrc_tokenizer *tok = egrc_tokenizer_from_json((const char *)f->data, f->size, EGRC_TASK_TOKENIZER_PATH, &err);
    if (!tok) return egrc_lua_raise(L, &err);
    *(egrc_tokenizer **)lua_touserdata(L, -1) = tok;
    return 1;
}

/* ---- egrc.grade ---- */

static int grade_extract(lua_State *L) {
    egrc_error err;
    char *answer = egrc_extract_answer(luaL_checkstring(L, 1), &err);
    if (!answer && err.msg[0]) return egrc_lua_raise(L, &err);
    if (answer) lua_pushstring(L, answer);
    else lua_pushnil(L);
    free(answer);
    return 1;
}

static int grade_equivalent(lua_State *L) {
    lua_pushboolean(L, egrc_answers_equivalent(luaL_checkstring(L, 1), luaL_checkstring(L, 2)));
    return 1;
}

static int grade_response(lua_State *L) {
    lua_pushboolean(L, egrc_grade_response(luaL_checkstring(L, 1), luaL_checkstring(L, 2)));
    return 1;
}

/* ---- egrc.benchmarks ---- */

static int push_benchmark(lua_State *L, egrc_benchmark *b, const egrc_error *err) {
    if (!b) return egrc_lua_raise(L, err);
    lua_createtable(L, 0, 3);
    set_string(L, "name", b->name);
    set_string(L, "file", b->file);
    lua_createtable(L, (int)b->count, 0);
    for (size_t i = 0; i < b->count; i++) {
        lua_createtable(L, 0, 4);
        set_string(L, "id", b->items[i].id);
        set_string(L, "question", b->items[i].question);
        set_string(L, "answer", b->items[i].gold_answer);
        set_int(L, "line", (lua_Integer)b->items[i].line);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "items");
    egrc_benchmark_free(b);
    return 1;
}

static int benchmarks_load(lua_State *L) {
    egrc_error err;
    egrc_lua_check_readable(L, luaL_checkstring(L, 1));
    return push_benchmark(L, egrc_benchmark_load(luaL_checkstring(L, 1), &err), &err);
}

static int benchmarks_load_jsonl(lua_State *L) {
    egrc_error err;
    const char *path = luaL_checkstring(L, 1), *q = luaL_checkstring(L, 2), *a = luaL_checkstring(L, 3);
    egrc_lua_check_readable(L, path);
    return push_benchmark(L, egrc_benchmark_load_jsonl(path, q, a, &err), &err);
}

void egrc_open_tasks(lua_State *L) {
    luaL_newlib(L, ((const luaL_Reg[]){{"families", tasks_families},
                                       {"sample", tasks_sample},
                                       {"generate", tasks_generate},
                                       {"eval_set", tasks_eval_set},
                                       {"prompt", tasks_prompt},
                                       {"trace", tasks_trace},
                                       {"check", tasks_check},
                                       {"is_eval", tasks_is_eval},
                                       {"tokenizer", tasks_tokenizer},
                                       {NULL, NULL}}));
    set_string(L, "eos", EGRC_TASK_EOS);
    lua_pushinteger(L, EGRC_TASK_TRACES_VERSION);
    lua_setfield(L, -2, "traces_version");
    set_string(L, "think_open", EGRC_TASK_THINK_OPEN);
    set_string(L, "think_close", EGRC_TASK_THINK_CLOSE);
    set_int(L, "difficulties", EGRC_TASK_DIFFICULTIES);
    lua_setfield(L, -2, "tasks");
    luaL_newlib(L, ((const luaL_Reg[]){{"extract", grade_extract}, {"equivalent", grade_equivalent},
                                       {"response", grade_response}, {NULL, NULL}}));
    lua_setfield(L, -2, "grade");
    luaL_newlib(L, ((const luaL_Reg[]){{"load", benchmarks_load}, {"load_jsonl", benchmarks_load_jsonl}, {NULL, NULL}}));
    lua_setfield(L, -2, "benchmarks");
}
