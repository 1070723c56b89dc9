/* Training from Lua: a trainer (a model, its AdamW configuration and the
 * step counter) that takes SFT steps on masked token rows and GRPO steps on
 * rollouts, and saves/loads checkpoints; and the deterministic RNG recipes
 * draw data with (its state travels in checkpoints). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/checkpoint.h"
#include "rl/grpo.h"
#include "lua_internal.h"

/* ---- rng ---- */

egrc_rng *egrc_check_rng(lua_State *L, int arg) { return luaL_checkudata(L, arg, EGRC_RNG_MT); }

static int rng_new(lua_State *L) {
    lua_Integer seed = luaL_optinteger(L, 1, 0);
    egrc_rng *r = lua_newuserdatauv(L, sizeof *r, 0);
    egrc_rng_seed(r, (uint64_t)seed);
    luaL_setmetatable(L, EGRC_RNG_MT);
    return 1;
}

static int rng_uniform(lua_State *L) {
    lua_pushnumber(L, egrc_rng_uniform(egrc_check_rng(L, 1)));
    return 1;
}

static int rng_normal(lua_State *L) {
    lua_pushnumber(L, egrc_rng_normal(egrc_check_rng(L, 1)));
    return 1;
}

/* rng:integer(lo, hi): uniform in [lo, hi], like math.random(lo, hi). */
static int rng_integer(lua_State *L) {
    egrc_rng *r = egrc_check_rng(L, 1);
    lua_Integer lo = luaL_checkinteger(L, 2), hi = luaL_checkinteger(L, 3);
    luaL_argcheck(L, lo <= hi && hi - lo < (lua_Integer)UINT32_MAX, 3, "interval is empty or too large");
    lua_pushinteger(L, lo + (lua_Integer)egrc_rng_below(r, (uint32_t)(hi - lo + 1)));
    return 1;
}

/* The four state words as hex strings (JSON numbers cannot hold 64 bits). */
static int rng_state(lua_State *L) {
    egrc_rng *r = egrc_check_rng(L, 1);
    lua_createtable(L, 4, 0);
    for (int i = 0; i < 4; i++) {
        char hex[20];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)r->s[i]);
        lua_pushstring(L, hex);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int rng_set_state(lua_State *L) {
    egrc_rng *r = egrc_check_rng(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    egrc_rng next;
    for (int i = 0; i < 4; i++) {
        lua_rawgeti(L, 2, i + 1);
        const char *hex = lua_tostring(L, -1);
        char *end = NULL;
        next.s[i] = hex ? strtoull(hex, &end, 16) : 0;
        luaL_argcheck(L, hex && *hex && !*end, 2, "state must be the four hex strings rng:state() gives");
        lua_pop(L, 1);
    }
    *r = next;
    return 0;
}

/* ---- trainer ---- */

typedef struct lua_trainer {
    egrc_optim_config optim;
    int step; /* optimizer steps taken (0-based index of the next one) */
} lua_trainer;

static lua_trainer *check_trainer(lua_State *L, int arg) { return luaL_checkudata(L, arg, EGRC_TRAINER_MT); }

/* The trainer's model (its user value), checked. */
static egrc_model *trainer_model(lua_State *L, int arg) {
    check_trainer(L, arg);
    lua_getiuservalue(L, arg, 1);
    egrc_model *m = egrc_check_model(L, -1);
    lua_pop(L, 1);
    return m;
}

static const char *const optim_keys[] = {"lr", "min_lr", "warmup", "steps", "beta1", "beta2",
                                         "eps", "weight_decay", "grad_clip", NULL};

static void optim_from_table(lua_State *L, int arg, egrc_optim_config *c) {
    egrc_check_options(L, arg, optim_keys);
    c->lr = (float)egrc_opt_number(L, arg, "lr", c->lr);
    c->min_lr = (float)egrc_opt_number(L, arg, "min_lr", c->min_lr);
    c->warmup_steps = (int)egrc_opt_integer(L, arg, "warmup", c->warmup_steps);
    c->total_steps = (int)egrc_opt_integer(L, arg, "steps", c->total_steps);
    c->beta1 = (float)egrc_opt_number(L, arg, "beta1", c->beta1);
    c->beta2 = (float)egrc_opt_number(L, arg, "beta2", c->beta2);
    c->eps = (float)egrc_opt_number(L, arg, "eps", c->eps);
    c->weight_decay = (float)egrc_opt_number(L, arg, "weight_decay", c->weight_decay);
    c->grad_clip = (float)egrc_opt_number(L, arg, "grad_clip", c->grad_clip);
    if (!(c->lr >= 0) || c->total_steps < 1 || c->warmup_steps < 0)
        luaL_argerror(L, arg, "lr must be >= 0, steps >= 1 and warmup >= 0");
}

/* egrc.trainer(model, {lr=, min_lr=, warmup=, steps=, ...}): AdamW with a
 * warmup + cosine schedule over `steps` optimizer steps (train.h defaults).
 * The moments live in the model: a new trainer starts them from zero. */
static int trainer_new(lua_State *L) {
    egrc_model_reset_optimizer(egrc_check_model(L, 1));
    lua_Integer steps = egrc_opt_integer(L, 2, "steps", 1000);
    lua_trainer *t = lua_newuserdatauv(L, sizeof *t, 1);
    t->optim = egrc_optim_defaults((int)steps);
    t->step = 0;
    optim_from_table(L, 2, &t->optim);
    luaL_setmetatable(L, EGRC_TRAINER_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    return 1;
}

static int trainer_set(lua_State *L) {
    optim_from_table(L, 2, &check_trainer(L, 1)->optim);
    return 0;
}

static int trainer_step(lua_State *L) {
    lua_pushinteger(L, check_trainer(L, 1)->step);
    return 1;
}

static int trainer_lr(lua_State *L) {
    lua_trainer *t = check_trainer(L, 1);
    lua_pushnumber(L, egrc_lr_at(&t->optim, t->step));
    return 1;
}

static int trainer_get_model(lua_State *L) {
    trainer_model(L, 1);
    lua_getiuservalue(L, 1, 1);
    return 1;
}

/* Lays out token rows (arg) and their loss masks (mask_arg; absent: every
 * token after the first is a target) as a right-padded batch: row b's
 * inputs are its tokens but the last, and the target at t is token t+1 when
 * mask[t+1] is set, else -1. Returns B and T; the arrays live in scratch
 * userdata pushed on the stack. */
static void build_batch(lua_State *L, int arg, int mask_arg, int32_t **tokens, int32_t **targets, int *B, int *T) {
    luaL_checktype(L, arg, LUA_TTABLE);
    int has_mask = !lua_isnoneornil(L, mask_arg);
    if (has_mask) luaL_checktype(L, mask_arg, LUA_TTABLE);
    size_t rows = lua_rawlen(L, arg), width = 0;
    luaL_argcheck(L, rows > 0 && rows < (1u << 20), arg, "a non-empty list of token rows expected");
    if (has_mask)
        luaL_argcheck(L, lua_rawlen(L, mask_arg) == rows, mask_arg, "one mask row per token row expected");
    for (size_t b = 1; b <= rows; b++) {
        if (lua_rawgeti(L, arg, (lua_Integer)b) != LUA_TTABLE)
            luaL_argerror(L, arg, lua_pushfstring(L, "row %d: table expected, got %s", (int)b, luaL_typename(L, -1)));
        size_t n = lua_rawlen(L, -1);
        if (n < 2) luaL_argerror(L, arg, lua_pushfstring(L, "row %d has %d tokens (at least 2 needed)", (int)b, (int)n));
        if (n - 1 > width) width = n - 1;
        lua_pop(L, 1);
    }
    int32_t *tok = egrc_lua_scratch(L, rows * width * sizeof *tok);
    int32_t *tgt = egrc_lua_scratch(L, rows * width * sizeof *tgt);
    int valid = 0;
    for (size_t b = 0; b < rows; b++) {
        lua_rawgeti(L, arg, (lua_Integer)b + 1);
        size_t count = lua_rawlen(L, -1);
        int32_t *ids = tgt + b * width; /* the row's ids, before its targets overwrite them */
        for (size_t t = 0; t < count; t++) {
            lua_rawgeti(L, -1, (lua_Integer)t + 1);
            int ok;
            lua_Integer id = lua_tointegerx(L, -1, &ok);
            if (!ok || id < 0 || id > INT32_MAX)
                luaL_argerror(L, arg, lua_pushfstring(L, "row %d, element %d: token id expected, got %s", (int)b + 1,
                                                      (int)t + 1, luaL_tolstring(L, -1, NULL)));
            lua_pop(L, 1);
            if (t > 0) ids[t - 1] = (int32_t)id; /* the targets: tokens 1..n-1 */
            else tok[b * width] = (int32_t)id;
        }
        if (has_mask) lua_rawgeti(L, mask_arg, (lua_Integer)b + 1);
        if (has_mask && (!lua_istable(L, -1) || lua_rawlen(L, -1) != count))
            luaL_argerror(L, mask_arg, lua_pushfstring(L, "row %d: a mask as long as its %d tokens expected", (int)b + 1,
                                                       (int)count));
        /* Inputs are tokens 0..n-2, targets tokens 1..n-1 (already in place). */
        for (size_t t = 1; t < width; t++) tok[b * width + t] = t + 1 < count ? ids[t - 1] : 0;
        for (size_t t = 0; t < width; t++) {
            int target = t + 1 < count;
            if (target && has_mask) {
                lua_rawgeti(L, -1, (lua_Integer)t + 2);
                target = lua_isnumber(L, -1) ? lua_tonumber(L, -1) != 0 : lua_toboolean(L, -1);
                lua_pop(L, 1);
            }
            if (!target) ids[t] = -1;
            valid += target;
        }
        lua_pop(L, has_mask ? 2 : 1);
    }
    if (!valid) luaL_argerror(L, has_mask ? mask_arg : arg, "the mask selects no target tokens");
    *tokens = tok;
    *targets = tgt;
    *B = (int)rows;
    *T = (int)width;
}

/* trainer:sft_step(tokens, [mask], [{micro_batches=k, loss_weight=w}]) -> loss, grad_norm */
static int trainer_sft_step(lua_State *L) {
    lua_trainer *t = check_trainer(L, 1);
    egrc_model *m = trainer_model(L, 1);
    egrc_check_options(L, 4, (const char *const[]){"micro_batches", "loss_weight", NULL});
    int k = (int)egrc_opt_integer(L, 4, "micro_batches", 1);
    float weight = (float)egrc_opt_number(L, 4, "loss_weight", 1.0);
    if (!(weight >= 0.0f) || weight > 1e6f) return luaL_argerror(L, 4, "loss_weight must be in [0, 1e6]");
    int32_t *tokens, *targets;
    int B, T;
    build_batch(L, 2, 3, &tokens, &targets, &B, &T);
    if (k < 1 || B % k)
        return luaL_argerror(L, 4, lua_pushfstring(L, "micro_batches %d must divide the %d rows", k, B));
    float loss, norm;
    egrc_error err;
    if (egrc_train_step(m, &t->optim, t->step, tokens, targets, k, B / k, T, weight, &loss, &norm, &err))
        return egrc_lua_raise(L, &err);
    t->step++;
    lua_pushnumber(L, loss);
    lua_pushnumber(L, norm);
    return 2;
}

/* trainer:loss(tokens, [mask]) -> mean loss over the targets, no update */
static int trainer_loss(lua_State *L) {
    egrc_model *m = trainer_model(L, 1);
    int32_t *tokens, *targets;
    int B, T;
    build_batch(L, 2, 3, &tokens, &targets, &B, &T);
    float loss;
    egrc_error err;
    if (egrc_model_forward(m, tokens, targets, B, T, &loss, &err)) return egrc_lua_raise(L, &err);
    lua_pushnumber(L, loss);
    return 1;
}

/* ---- GRPO ---- */

static const char *const grpo_keys[] = {"advantage", "group", "beta", "length_weight", "positive_only",
                                        "filter_zero_variance", "clip_low", "clip_high", "aggregation", "kl_coef",
                                        "entropy_coef", "epochs", "mini_batch", "micro_batch", NULL};
static const char *const adv_names[] = {"grpo", "dr_grpo", "absolute", "decomposed", NULL};
static const char *const agg_names[] = {"seq_mean_token_mean", "seq_mean_token_sum", "token_mean", NULL};

static void grpo_from_table(lua_State *L, int arg, egrc_grpo_config *c) {
    *c = egrc_grpo_defaults();
    egrc_check_options(L, arg, grpo_keys);
    egrc_adv_config *a = &c->adv;
    a->mode = (egrc_adv_mode)egrc_opt_enum(L, arg, "advantage", adv_names[a->mode], adv_names);
    a->group_size = (int)egrc_opt_integer(L, arg, "group", a->group_size);
    a->beta = (float)egrc_opt_number(L, arg, "beta", a->beta);
    a->length_weight = (float)egrc_opt_number(L, arg, "length_weight", a->length_weight);
    a->positive_only = egrc_opt_bool(L, arg, "positive_only", a->positive_only);
    a->filter_zero_variance = egrc_opt_bool(L, arg, "filter_zero_variance", a->filter_zero_variance);
    c->clip_low = (float)egrc_opt_number(L, arg, "clip_low", c->clip_low);
    c->clip_high = (float)egrc_opt_number(L, arg, "clip_high", c->clip_high);
    c->agg = (egrc_loss_agg)egrc_opt_enum(L, arg, "aggregation", agg_names[c->agg], agg_names);
    c->kl_coef = (float)egrc_opt_number(L, arg, "kl_coef", c->kl_coef);
    c->entropy_coef = (float)egrc_opt_number(L, arg, "entropy_coef", c->entropy_coef);
    c->epochs = (int)egrc_opt_integer(L, arg, "epochs", c->epochs);
    c->mini_batch = (int)egrc_opt_integer(L, arg, "mini_batch", c->mini_batch);
    c->micro_batch = (int)egrc_opt_integer(L, arg, "micro_batch", c->micro_batch);
    luaL_argcheck(L, a->group_size >= 1, arg, "field 'group' must be at least 1");
}

/* Rewards (arg) and, for the decomposed advantage, length rewards (arg+1)
 * for n samples. */
static void check_rewards(lua_State *L, int arg, int n, const egrc_grpo_config *c, const float **reward,
                          const float **length_reward) {
    *reward = egrc_check_float_list(L, arg, (size_t)n);
    *length_reward = NULL;
    if (c->adv.mode == EGRC_ADV_DECOMPOSED) {
        luaL_argexpected(L, lua_istable(L, arg + 1), arg + 1, "length rewards (the decomposed advantage needs them)");
        *length_reward = egrc_check_float_list(L, arg + 1, (size_t)n);
    }
    if (n % c->adv.group_size)
        luaL_argerror(L, arg, lua_pushfstring(L, "%d samples do not split into groups of %d", n, c->adv.group_size));
}

/* egrc.advantages(rewards, length_rewards|nil, cfg) -> advantages, keep, zero_variance_groups */
static int advantages(lua_State *L) {
    lua_settop(L, 3); /* scratch memory is pushed above the arguments */
    egrc_grpo_config c;
    grpo_from_table(L, 3, &c);
    int n = (int)luaL_len(L, 1);
    const float *reward, *length_reward;
    check_rewards(L, 1, n, &c, &reward, &length_reward);
    float *adv = egrc_lua_scratch(L, (size_t)n * sizeof *adv);
    unsigned char *keep = egrc_lua_scratch(L, (size_t)n);
    int zero_var;
    egrc_error err;
    if (egrc_advantages(&c.adv, reward, length_reward, n, adv, keep, &zero_var, &err)) return egrc_lua_raise(L, &err);
    egrc_push_float_list(L, adv, (size_t)n);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushboolean(L, keep[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushinteger(L, zero_var);
    return 3;
}

static void set_number(lua_State *L, const char *key, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, key);
}

/* trainer:grpo_step(rollout, rewards, [length_rewards], [cfg], [ref]) -> stats */
static int trainer_grpo_step(lua_State *L) {
    lua_settop(L, 6);
    lua_trainer *t = check_trainer(L, 1);
    egrc_model *m = trainer_model(L, 1);
    const egrc_rollout *r = egrc_check_rollout(L, 2);
    egrc_grpo_config c;
    grpo_from_table(L, 5, &c);
    c.optim = t->optim;
    egrc_model *ref = lua_isnoneornil(L, 6) ? NULL : egrc_check_model(L, 6);
    const float *reward, *length_reward;
    check_rewards(L, 3, r->n, &c, &reward, &length_reward);
    egrc_grpo_stats s;
    egrc_error err;
    if (egrc_grpo_step(m, ref, &c, r, reward, length_reward, &t->step, &s, &err)) return egrc_lua_raise(L, &err);
    lua_createtable(L, 0, 12);
    set_number(L, "loss", s.loss);
    set_number(L, "ratio_mean", s.ratio_mean);
    set_number(L, "clip_fraction", s.clip_fraction);
    set_number(L, "kl", s.kl);
    set_number(L, "entropy", s.entropy);
    set_number(L, "reward_mean", s.reward_mean);
    set_number(L, "advantage_mean", s.advantage_mean);
    set_number(L, "grad_norm", s.grad_norm);
    lua_pushinteger(L, s.zero_variance_groups);
    lua_setfield(L, -2, "zero_variance_groups");
    lua_pushinteger(L, s.filtered_sequences);
    lua_setfield(L, -2, "filtered_sequences");
    lua_pushinteger(L, s.optimizer_steps);
    lua_setfield(L, -2, "optimizer_steps");
    return 1;
}

/* ---- checkpoints ---- */

/* trainer:save(path, [rng]): weights, AdamW moments, the step, the RNG. */
static int trainer_save(lua_State *L) {
    lua_trainer *t = check_trainer(L, 1);
    egrc_model *m = trainer_model(L, 1);
    const char *path = luaL_checkstring(L, 2);
    egrc_rng zero = {{0, 0, 0, 0}};
    const egrc_rng *rng = lua_isnoneornil(L, 3) ? &zero : egrc_check_rng(L, 3);
    egrc_lua_check_writable(L, path);
    egrc_error err;
    if (egrc_checkpoint_save(path, m, t->step, rng, &err)) return egrc_lua_raise(L, &err);
    return 0;
}

/* trainer:load(path, [rng]) -> step: restores what save wrote. */
static int trainer_load(lua_State *L) {
    lua_trainer *t = check_trainer(L, 1);
    egrc_model *m = trainer_model(L, 1);
    const char *path = luaL_checkstring(L, 2);
    egrc_lua_check_readable(L, path);
    egrc_rng scratch, *rng = lua_isnoneornil(L, 3) ? &scratch : egrc_check_rng(L, 3);
    egrc_error err;
    int step;
    if (egrc_checkpoint_load(path, m, &step, rng, &err)) return egrc_lua_raise(L, &err);
    t->step = step;
    lua_pushinteger(L, step);
    return 1;
}

static int trainer_tostring(lua_State *L) {
    lua_trainer *t = check_trainer(L, 1);
    lua_pushfstring(L, "egrc.trainer (step %d, lr %f)", t->step, (lua_Number)egrc_lr_at(&t->optim, t->step));
    return 1;
}

void egrc_open_train(lua_State *L) {
    luaL_newmetatable(L, EGRC_RNG_MT);
    luaL_newlib(L, ((const luaL_Reg[]){{"uniform", rng_uniform},
                                       {"normal", rng_normal},
                                       {"integer", rng_integer},
                                       {"state", rng_state},
                                       {"set_state", rng_set_state},
                                       {NULL, NULL}}));
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newmetatable(L, EGRC_TRAINER_MT);
    lua_pushcfunction(L, trainer_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, ((const luaL_Reg[]){{"sft_step", trainer_sft_step},
                                       {"loss", trainer_loss},
                                       {"grpo_step", trainer_grpo_step},
                                       {"save", trainer_save},
                                       {"load", trainer_load},
                                       {"set", trainer_set},
                                       {"step", trainer_step},
                                       {"lr", trainer_lr},
                                       {"model", trainer_get_model},
                                       {NULL, NULL}}));
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_setfuncs(L, ((const luaL_Reg[]){{"rng", rng_new}, {"trainer", trainer_new}, {"advantages", advantages},
                                         {NULL, NULL}}),
                  0);
}
