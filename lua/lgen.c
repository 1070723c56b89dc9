/* Generation from Lua: batched sampling into a rollout userdata (the
 * completions with their token counts, log-probs and entropies stay in C;
 * Lua reads what it needs), and the token-level entropy analysis. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl/analyze.h"
#include "lua_internal.h"

typedef struct lua_rollout {
    egrc_rollout r;
} lua_rollout;

const egrc_rollout *egrc_check_rollout(lua_State *L, int arg) {
    lua_rollout *u = luaL_checkudata(L, arg, EGRC_ROLLOUT_MT);
    luaL_argcheck(L, u->r.n > 0, arg, "rollout was freed");
    return &u->r;
}

/* __gc, and rollout:free(): the collector sees only the small userdata, not
 * the C arrays behind it, so loops free each step's rollout explicitly. */
static int rollout_gc(lua_State *L) {
    egrc_rollout_free(&((lua_rollout *)luaL_checkudata(L, 1, EGRC_ROLLOUT_MT))->r);
    return 0;
}

static const char *const sampling_keys[] = {"temperature", "top_p", "top_k", "max_new_tokens", "stop", "seed",
                                            "repeat", NULL};

static void sampling_from_table(lua_State *L, int arg, egrc_sampling_config *c) {
    *c = egrc_sampling_defaults();
    egrc_check_options(L, arg, sampling_keys);
    c->temperature = (float)egrc_opt_number(L, arg, "temperature", c->temperature);
    c->top_p = (float)egrc_opt_number(L, arg, "top_p", c->top_p);
    c->top_k = (int)egrc_opt_integer(L, arg, "top_k", c->top_k);
    c->max_new_tokens = (int)egrc_opt_integer(L, arg, "max_new_tokens", c->max_new_tokens);
    c->seed = (uint64_t)egrc_opt_integer(L, arg, "seed", 0);
    if (lua_isnoneornil(L, arg)) return;
    int type = lua_getfield(L, arg, "stop");
    if (type == LUA_TNUMBER) {
        c->n_stop = 1;
        c->stop_tokens[0] = (int32_t)egrc_opt_integer(L, arg, "stop", 0);
    } else if (type == LUA_TTABLE) {
        size_t n = lua_rawlen(L, -1);
        if (n > EGRC_MAX_STOP_TOKENS)
            luaL_argerror(L, arg, lua_pushfstring(L, "field 'stop': at most %d stop tokens", EGRC_MAX_STOP_TOKENS));
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, -1, (lua_Integer)i + 1);
            if (!lua_isinteger(L, -1))
                luaL_argerror(L, arg, lua_pushfstring(L, "field 'stop': element %d is not a token id", (int)i + 1));
            c->stop_tokens[i] = (int32_t)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
        c->n_stop = (int)n;
    } else if (type != LUA_TNIL) {
        luaL_argerror(L, arg, lua_pushfstring(L, "field 'stop': token id or list expected, got %s", luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
}

/* egrc.generate(model, prompts, {temperature=, top_p=, top_k=, max_new_tokens=,
 * stop=, seed=, repeat=G}) -> rollout. prompts is a list of token-id lists;
 * with repeat = G each prompt is sampled G times in a row (a GRPO group). */
static int generate(lua_State *L) {
    lua_settop(L, 3); /* scratch memory is pushed above the arguments */
    egrc_model *m = egrc_check_model(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    egrc_sampling_config cfg;
    sampling_from_table(L, 3, &cfg);
    lua_Integer repeat = egrc_opt_integer(L, 3, "repeat", 1);
    size_t n_prompts = lua_rawlen(L, 2), stride = 0;
    luaL_argcheck(L, n_prompts > 0, 2, "at least one prompt expected");
    luaL_argcheck(L, repeat >= 1 && (lua_Integer)n_prompts * repeat <= (1 << 20), 3, "field 'repeat' out of range");
    for (size_t i = 1; i <= n_prompts; i++) {
        if (lua_rawgeti(L, 2, (lua_Integer)i) != LUA_TTABLE)
            luaL_argerror(L, 2, lua_pushfstring(L, "prompt %d: token list expected, got %s", (int)i, luaL_typename(L, -1)));
        size_t len = lua_rawlen(L, -1);
        if (len == 0) luaL_argerror(L, 2, lua_pushfstring(L, "prompt %d is empty", (int)i));
        /* Checked before the buffers below, which grow with the longest prompt. */
        if (len > (size_t)m->cfg.max_seq)
            luaL_argerror(L, 2,
                          lua_pushfstring(L, "prompt %d has %I tokens, more than the model's context of %d positions",
                                          (int)i, (lua_Integer)len, m->cfg.max_seq));
        if (len > stride) stride = len;
        lua_pop(L, 1);
    }
    const int n = (int)(n_prompts * (size_t)repeat);
    int32_t *prompts = egrc_lua_scratch(L, (size_t)n * stride * sizeof *prompts);
    int *lens = egrc_lua_scratch(L, (size_t)n * sizeof *lens);
    for (size_t i = 0; i < n_prompts; i++) {
        lua_rawgeti(L, 2, (lua_Integer)i + 1);
        size_t count;
        const int32_t *ids = egrc_check_int_list(L, -1, 2, (int)i + 1, &count);
        for (lua_Integer g = 0; g < repeat; g++) {
            size_t row = i * (size_t)repeat + (size_t)g;
            memcpy(prompts + row * stride, ids, count * sizeof *ids);
            lens[row] = (int)count;
        }
        lua_pop(L, 2);
    }
    lua_rollout *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, EGRC_ROLLOUT_MT);
    egrc_error err;
    if (egrc_generate(m, prompts, lens, n, (int)stride, &cfg, &u->r, &err)) return egrc_lua_raise(L, &err);
    return 1;
}

/* The 0-based sequence index of argument arg (1-based in Lua). */
static int check_index(lua_State *L, const egrc_rollout *r, int arg) {
    lua_Integer i = luaL_checkinteger(L, arg);
    if (i < 1 || i > r->n) luaL_argerror(L, arg, lua_pushfstring(L, "index %d is outside 1..%d", (int)i, r->n));
    return (int)i - 1;
}

static int rollout_len(lua_State *L) {
    lua_pushinteger(L, egrc_check_rollout(L, 1)->n);
    return 1;
}

static int rollout_length(lua_State *L) {
    const egrc_rollout *r = egrc_check_rollout(L, 1);
    lua_pushinteger(L, r->length[check_index(L, r, 2)]);
    return 1;
}

static int rollout_prompt_length(lua_State *L) {
    const egrc_rollout *r = egrc_check_rollout(L, 1);
    lua_pushinteger(L, r->prompt_len[check_index(L, r, 2)]);
    return 1;
}

static int rollout_finish(lua_State *L) {
    const egrc_rollout *r = egrc_check_rollout(L, 1);
    lua_pushstring(L, r->finish[check_index(L, r, 2)] == EGRC_FINISH_STOP ? "stop" : "length");
    return 1;
}

static int rollout_tokens(lua_State *L) {
    const egrc_rollout *r = egrc_check_rollout(L, 1);
    int i = check_index(L, r, 2);
    egrc_push_int_list(L, egrc_rollout_completion(r, i), (size_t)r->length[i]);
    return 1;
}

static int rollout_prompt(lua_State *L) {
    const egrc_rollout *r = egrc_check_rollout(L, 1);
    int i = check_index(L, r, 2);
    egrc_push_int_list(L, r->tokens + (size_t)i * r->stride, (size_t)r->prompt_len[i]);
    return 1;
}

static int rollout_logprobs(lua_State *L) {
    const egrc_rollout *r = egrc_check_rollout(L, 1);
    int i = check_index(L, r, 2);
    egrc_push_float_list(L, r->logprob + (size_t)i * r->max_new, (size_t)r->length[i]);
    return 1;
}

static int rollout_entropies(lua_State *L) {
    const egrc_rollout *r = egrc_check_rollout(L, 1);
    int i = check_index(L, r, 2);
    egrc_push_float_list(L, r->entropy + (size_t)i * r->max_new, (size_t)r->length[i]);
    return 1;
}

static int rollout_lengths(lua_State *L) {
    const egrc_rollout *r = egrc_check_rollout(L, 1);
    lua_createtable(L, r->n, 0);
    for (int i = 0; i < r->n; i++) {
        lua_pushinteger(L, r->length[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* rollout:texts(tokenizer, [keep_special]) -> the completions as text (special
 * tokens such as the final end-of-text dropped unless keep_special). */
static int rollout_texts(lua_State *L) {
    const egrc_rollout *r = egrc_check_rollout(L, 1);
    egrc_tokenizer *tok = egrc_check_tokenizer(L, 2);
    int keep = lua_toboolean(L, 3);
    lua_createtable(L, r->n, 0);
    for (int i = 0; i < r->n; i++) {
        egrc_error err;
        char *text = egrc_tokenizer_decode(tok, egrc_rollout_completion(r, i), (size_t)r->length[i], keep, &err);
        if (!text) return egrc_lua_raise(L, &err);
        lua_pushstring(L, text);
        free(text);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int rollout_stats(lua_State *L) {
    const egrc_rollout *r = egrc_check_rollout(L, 1);
    long tokens = 0, clipped = 0;
    double entropy = 0.0;
    for (int i = 0; i < r->n; i++) {
        tokens += r->length[i];
        clipped += r->finish[i] == EGRC_FINISH_LENGTH;
        for (int j = 0; j < r->length[i]; j++) entropy += r->entropy[(size_t)i * r->max_new + j];
    }
    const double seconds = r->prefill_seconds + r->decode_seconds;
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, r->n);
    lua_setfield(L, -2, "sequences");
    lua_pushinteger(L, tokens);
    lua_setfield(L, -2, "tokens");
    lua_pushnumber(L, (double)tokens / r->n);
    lua_setfield(L, -2, "mean_length");
    lua_pushnumber(L, tokens ? entropy / (double)tokens : 0.0);
    lua_setfield(L, -2, "mean_entropy");
    lua_pushnumber(L, (double)clipped / r->n);
    lua_setfield(L, -2, "clipped");
    lua_pushnumber(L, r->prefill_seconds);
    lua_setfield(L, -2, "prefill_seconds");
    lua_pushnumber(L, r->decode_seconds);
    lua_setfield(L, -2, "decode_seconds");
    lua_pushnumber(L, seconds > 0 ? (double)tokens / seconds : 0.0);
    lua_setfield(L, -2, "tokens_per_second");
    return 1;
}

/* egrc.analyze(model, rollout, adv_acc, adv_comp, [{bins=, high_fraction=,
 * top_tokens=, micro_batch=, gradients=}]) -> result table, text table */
static int analyze(lua_State *L) {
    lua_settop(L, 5);
    egrc_model *m = egrc_check_model(L, 1);
    const egrc_rollout *r = egrc_check_rollout(L, 2);
    const float *adv_acc = egrc_check_float_list(L, 3, (size_t)r->n);
    const float *adv_comp = egrc_check_float_list(L, 4, (size_t)r->n);
    egrc_analyze_config c = egrc_analyze_defaults();
    egrc_check_options(L, 5, (const char *const[]){"bins", "high_fraction", "top_tokens", "micro_batch", "gradients", NULL});
    c.bins = (int)egrc_opt_integer(L, 5, "bins", c.bins);
    c.high_fraction = (float)egrc_opt_number(L, 5, "high_fraction", c.high_fraction);
    c.top_tokens = (int)egrc_opt_integer(L, 5, "top_tokens", c.top_tokens);
    c.micro_batch = (int)egrc_opt_integer(L, 5, "micro_batch", c.micro_batch);
    c.gradients = egrc_opt_bool(L, 5, "gradients", c.gradients);
    egrc_analysis a;
    egrc_error err;
    if (egrc_analyze(m, r, adv_acc, adv_comp, &c, &a, &err)) return egrc_lua_raise(L, &err);
    char *json = egrc_analysis_to_json(&a);
    char *text = NULL;
    size_t text_len = 0;
    FILE *f = open_memstream(&text, &text_len);
    if (f) {
        egrc_analysis_print(&a, f);
        fclose(f);
    }
    egrc_analysis_free(&a);
    int ok = json && text && egrc_json_push(L, json, strlen(json)) == 0;
    if (ok) lua_pushlstring(L, text, text_len);
    free(json);
    free(text);
    if (!ok) return luaL_error(L, "analyze: out of memory");
    return 2;
}

void egrc_open_generate(lua_State *L) {
    luaL_newmetatable(L, EGRC_ROLLOUT_MT);
    luaL_setfuncs(L, ((const luaL_Reg[]){{"__gc", rollout_gc}, {"__len", rollout_len}, {NULL, NULL}}), 0);
    luaL_newlib(L, ((const luaL_Reg[]){{"length", rollout_length},
                                       {"prompt_length", rollout_prompt_length},
                                       {"finish", rollout_finish},
                                       {"tokens", rollout_tokens},
                                       {"prompt", rollout_prompt},
                                       {"logprobs", rollout_logprobs},
                                       {"entropies", rollout_entropies},
                                       {"lengths", rollout_lengths},
                                       {"texts", rollout_texts},
                                       {"stats", rollout_stats},
                                       {"free", rollout_gc},
                                       {NULL, NULL}}));
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_setfuncs(L, ((const luaL_Reg[]){{"generate", generate}, {"analyze", analyze}, {NULL, NULL}}), 0);
}
