/* Backends, models and tokenizers as Lua userdata.
 *
 * A model keeps its backend alive through a user value, so the backend is
 * closed only after the last model on it is collected. Every constructor
 * pushes its (empty) userdata before calling into the core, so an error
 * raised half-way leaves nothing unowned. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lua_internal.h"
#include "nn/model_hf.h"

typedef struct lua_backend {
    egrc_backend *be;
} lua_backend;

static const char default_backend_key[] = "egrc.default_backend";

static egrc_backend *check_backend(lua_State *L, int arg) {
    lua_backend *b = luaL_checkudata(L, arg, EGRC_BACKEND_MT);
    luaL_argcheck(L, b->be != NULL, arg, "backend is closed");
    return b->be;
}

static int backend_gc(lua_State *L) {
    lua_backend *b = luaL_checkudata(L, 1, EGRC_BACKEND_MT);
    if (b->be) egrc_backend_close(b->be);
    b->be = NULL;
    return 0;
}

/* Pushes a newly opened backend. */
static void push_backend(lua_State *L, const char *name, int device) {
    lua_backend *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->be = NULL;
    luaL_setmetatable(L, EGRC_BACKEND_MT);
    egrc_error err;
    b->be = egrc_backend_open(name, device, &err);
    if (!b->be) egrc_lua_raise(L, &err);
}

static int backend_open(lua_State *L) {
    const char *name = luaL_optstring(L, 1, "cpu");
    lua_Integer device = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, device >= 0 && device < 1024, 2, "device must be in 0..1023");
    push_backend(L, name, (int)device);
    return 1;
}

/* The backend models use when none is named: the run's (--backend,
 * settings.backend) once the driver has set it, else the CPU, opened on
 * first use. Only pushes, so C callers keep their stack. */
static int backend_default(lua_State *L) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, default_backend_key) == LUA_TUSERDATA) return 1;
    lua_pop(L, 1);
    push_backend(L, "cpu", 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, default_backend_key);
    return 1;
}

static int backend_set_default(lua_State *L) {
    check_backend(L, 1);
    lua_settop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, default_backend_key);
    return 0;
}

static int backend_name(lua_State *L) {
    lua_pushstring(L, check_backend(L, 1)->ops->name);
    return 1;
}

static int backend_info(lua_State *L) {
    egrc_backend *be = check_backend(L, 1);
    egrc_device_info info;
    egrc_error err;
    if (be->ops->device_info(be->device, &info, &err)) return egrc_lua_raise(L, &err);
    lua_createtable(L, 0, 5);
    lua_pushstring(L, be->ops->name);
    lua_setfield(L, -2, "backend");
    lua_pushinteger(L, be->device);
    lua_setfield(L, -2, "device");
    lua_pushstring(L, info.name);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, (lua_Integer)info.memory_bytes);
    lua_setfield(L, -2, "memory_bytes");
    lua_pushinteger(L, info.compute_units);
    lua_setfield(L, -2, "compute_units");
    return 1;
}

static int backend_tostring(lua_State *L) {
    egrc_backend *be = check_backend(L, 1);
    lua_pushfstring(L, "egrc.backend (%s:%d)", be->ops->name, be->device);
    return 1;
}

/* ---- models ---- */

typedef struct egrc_lua_model {
    egrc_model *m;
} egrc_lua_model;

egrc_model *egrc_check_model(lua_State *L, int arg) {
    egrc_lua_model *u = luaL_checkudata(L, arg, EGRC_MODEL_MT);
    luaL_argcheck(L, u->m != NULL, arg, "model was not created");
    return u->m;
}

static int model_gc(lua_State *L) {
    egrc_lua_model *u = luaL_checkudata(L, 1, EGRC_MODEL_MT);
    egrc_model_free(u->m);
    u->m = NULL;
    return 0;
}

/* Pushes an empty model userdata holding the backend named by option
 * `backend` of the table at opts (or the default); returns it and leaves
 * the backend in *be. */
static egrc_lua_model *new_model(lua_State *L, int opts, egrc_backend **be) {
    if (!lua_isnoneornil(L, opts)) lua_getfield(L, opts, "backend");
    else lua_pushnil(L);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        backend_default(L);
    } else if (!luaL_testudata(L, -1, EGRC_BACKEND_MT)) {
        luaL_argerror(L, opts, lua_pushfstring(L, "field 'backend': egrc.backend expected, got %s", luaL_typename(L, -1)));
    }
    *be = check_backend(L, -1);
    egrc_lua_model *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->m = NULL;
    luaL_setmetatable(L, EGRC_MODEL_MT);
    lua_rotate(L, -2, 1);   /* model, backend */
    lua_setiuservalue(L, -2, 1);
    return u;
}

static const char *const arch_names[] = {"gpt2", "llama", "qwen2", NULL};
static const char *const config_keys[] = {"arch", "vocab_size", "n_layer", "n_head", "n_kv_head", "d_model",
                                          "head_dim", "d_ff", "max_seq", "norm_eps", "rope_theta", "qkv_bias",
                                          "attn_out_bias", "mlp_bias", "tied_embeddings", "bos_token_id",
                                          "eos_token_id", "backend", "seed", NULL};

/* Overrides the fields of cfg present in the table at arg. */
static void config_from_table(lua_State *L, int arg, egrc_model_config *c) {
    egrc_check_options(L, arg, config_keys);
    c->arch = (egrc_arch)egrc_opt_enum(L, arg, "arch", egrc_arch_name(c->arch), arch_names);
    int *ints[] = {&c->vocab_size, &c->n_layer, &c->n_head, &c->n_kv_head, &c->d_model, &c->head_dim,
                   &c->d_ff, &c->max_seq, &c->bos_token_id, &c->eos_token_id};
    const char *int_keys[] = {"vocab_size", "n_layer", "n_head", "n_kv_head", "d_model", "head_dim",
                              "d_ff", "max_seq", "bos_token_id", "eos_token_id"};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        lua_Integer v = egrc_opt_integer(L, arg, int_keys[i], *ints[i]);
        if (v < -1 || v > (1 << 30))
            luaL_argerror(L, arg, lua_pushfstring(L, "field '%s': %d is out of range", int_keys[i], (int)v));
        *ints[i] = (int)v;
    }
    c->norm_eps = (float)egrc_opt_number(L, arg, "norm_eps", c->norm_eps);
    c->rope_theta = (float)egrc_opt_number(L, arg, "rope_theta", c->rope_theta);
    c->qkv_bias = egrc_opt_bool(L, arg, "qkv_bias", c->qkv_bias);
    c->attn_out_bias = egrc_opt_bool(L, arg, "attn_out_bias", c->attn_out_bias);
    c->mlp_bias = egrc_opt_bool(L, arg, "mlp_bias", c->mlp_bias);
    c->tied_embeddings = egrc_opt_bool(L, arg, "tied_embeddings", c->tied_embeddings);
}

/* egrc.model.create(preset | config, [options]): a randomly initialised model.
 * A config table names arch and sizes (unset fields take the arch's usual
 * values); options override single fields of a preset (vocab_size, max_seq...). */
static int model_create(lua_State *L) {
    egrc_model_config cfg;
    egrc_error err;
    int opts = 2;
    if (lua_type(L, 1) == LUA_TSTRING) {
        if (egrc_config_preset(lua_tostring(L, 1), &cfg, &err)) return luaL_argerror(L, 1, err.msg);
    } else {
        luaL_argexpected(L, lua_istable(L, 1), 1, "preset name or config table");
        opts = 1;
        static const char *const tiny[] = {"gpt2-tiny", "llama-tiny", "qwen2-tiny"};
        egrc_config_preset(tiny[egrc_opt_enum(L, 1, "arch", "gpt2", arch_names)], &cfg, NULL);
        /* Sizes given without n_kv_head or head_dim mean plain multi-head attention. */
        cfg.n_head = (int)egrc_opt_integer(L, 1, "n_head", cfg.n_head);
        cfg.d_model = (int)egrc_opt_integer(L, 1, "d_model", cfg.d_model);
        cfg.n_kv_head = cfg.n_head;
        cfg.head_dim = cfg.n_head > 0 ? cfg.d_model / cfg.n_head : 0;
    }
    config_from_table(L, opts, &cfg);
    if (egrc_config_validate(&cfg, "model config", &err)) return luaL_argerror(L, opts, err.msg);
    lua_Integer seed = egrc_opt_integer(L, opts, "seed", 0);
    egrc_backend *be;
    egrc_lua_model *u = new_model(L, opts, &be);
    u->m = egrc_model_create(be, &cfg, &err);
    if (!u->m) return egrc_lua_raise(L, &err);
    egrc_model_init_random(u->m, (uint64_t)seed);
    return 1;
}

/* egrc.model.load(dir | preset, [options]): a Hugging Face folder (config.json
 * + model.safetensors), or a preset with random weights. */
static int model_load(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    egrc_check_options(L, 2, (const char *const[]){"backend", "seed", NULL});
    lua_Integer seed = egrc_opt_integer(L, 2, "seed", 0);
    egrc_backend *be;
    egrc_lua_model *u = new_model(L, 2, &be);
    egrc_error err;
    struct stat sb;
    if (strchr(name, '/') || stat(name, &sb) == 0) egrc_lua_check_readable(L, name); /* a folder, not a preset */
    u->m = strchr(name, '/') ? egrc_model_load_hf(be, name, &err) : egrc_model_open(be, name, (uint64_t)seed, &err);
    if (!u->m) return egrc_lua_raise(L, &err);
    return 1;
}

/* model:save(dir [, {dtype = "bf16" | "f16" | "f32"}]): a Hugging Face
 * folder; without a dtype the weights keep the dtype they were loaded in. */
static int model_save(lua_State *L) {
    egrc_model *m = egrc_check_model(L, 1);
    const char *dir = luaL_checkstring(L, 2);
    egrc_check_options(L, 3, (const char *const[]){"dtype", NULL});
    static const char *const names[] = {"f32", "bf16", "f16", NULL};
    static const egrc_dtype dtypes[] = {EGRC_DTYPE_F32, EGRC_DTYPE_BF16, EGRC_DTYPE_F16};
    const char *name = egrc_opt_string(L, 3, "dtype", NULL);
    const egrc_dtype *dtype = NULL;
    for (int i = 0; name && names[i] && !dtype; i++)
        if (strcmp(name, names[i]) == 0) dtype = &dtypes[i];
    if (name && !dtype) return luaL_error(L, "model:save: dtype must be \"f32\", \"bf16\" or \"f16\", got \"%s\"", name);
    egrc_lua_check_writable(L, dir);
    egrc_error err;
    if (egrc_model_save_hf(m, dir, dtype, &err)) return egrc_lua_raise(L, &err);
    return 0;
}

static int model_num_params(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)egrc_check_model(L, 1)->n_params);
    return 1;
}

static int model_config(lua_State *L) {
    const egrc_model_config *c = &egrc_check_model(L, 1)->cfg;
    lua_createtable(L, 0, 17);
    lua_pushstring(L, egrc_arch_name(c->arch));
    lua_setfield(L, -2, "arch");
    const int ints[] = {c->vocab_size, c->n_layer, c->n_head, c->n_kv_head, c->d_model, c->head_dim,
                        c->d_ff, c->max_seq, c->bos_token_id, c->eos_token_id};
    const char *int_keys[] = {"vocab_size", "n_layer", "n_head", "n_kv_head", "d_model", "head_dim",
                              "d_ff", "max_seq", "bos_token_id", "eos_token_id"};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        lua_pushinteger(L, ints[i]);
        lua_setfield(L, -2, int_keys[i]);
    }
    lua_pushnumber(L, c->norm_eps);
    lua_setfield(L, -2, "norm_eps");
    lua_pushnumber(L, c->rope_theta);
    lua_setfield(L, -2, "rope_theta");
    const int bools[] = {c->qkv_bias, c->attn_out_bias, c->mlp_bias, c->tied_embeddings};
    const char *bool_keys[] = {"qkv_bias", "attn_out_bias", "mlp_bias", "tied_embeddings"};
    for (size_t i = 0; i < 4; i++) {
        lua_pushboolean(L, bools[i]);
        lua_setfield(L, -2, bool_keys[i]);
    }
    return 1;
}

/* model:clone(): an independent copy (same backend, same weights; no
 * optimizer state), e.g. the frozen reference of a KL penalty. */
static int model_clone(lua_State *L) {
    egrc_model *src = egrc_check_model(L, 1);
    float *host = egrc_lua_scratch(L, src->n_params * sizeof(float));
    egrc_error err;
    if (egrc_backend_download(src->be, host, src->params, src->n_params * sizeof(float), &err))
        return egrc_lua_raise(L, &err);
    egrc_lua_model *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->m = NULL;
    luaL_setmetatable(L, EGRC_MODEL_MT);
    lua_getiuservalue(L, 1, 1);
    lua_setiuservalue(L, -2, 1);
    u->m = egrc_model_create(src->be, &src->cfg, &err);
    if (!u->m) return egrc_lua_raise(L, &err);
    egrc_model_set_params(u->m, host);
    u->m->source_dir = src->source_dir ? strdup(src->source_dir) : NULL; /* a clone saves as its original */
    u->m->source_dtype = src->source_dtype;
    return 1;
}

static int model_backend(lua_State *L) {
    egrc_check_model(L, 1);
    lua_getiuservalue(L, 1, 1);
    return 1;
}

static int model_tostring(lua_State *L) {
    egrc_model *m = egrc_check_model(L, 1);
    lua_pushfstring(L, "egrc.model (%s, %d layers, %f M parameters)", egrc_arch_name(m->cfg.arch), m->cfg.n_layer,
                    (lua_Number)m->n_params / 1e6);
    return 1;
}

static int model_presets(lua_State *L) {
    lua_newtable(L);
    int i = 0;
    for (const char *const *p = egrc_config_preset_names(); *p; p++) {
        lua_pushstring(L, *p);
        lua_rawseti(L, -2, ++i);
    }
    return 1;
}

/* ---- tokenizers ---- */

typedef struct lua_tokenizer {
    egrc_tokenizer *tok;
} lua_tokenizer;

egrc_tokenizer *egrc_check_tokenizer(lua_State *L, int arg) {
    lua_tokenizer *t = luaL_checkudata(L, arg, EGRC_TOKENIZER_MT);
    luaL_argcheck(L, t->tok != NULL, arg, "tokenizer was not loaded");
    return t->tok;
}

void egrc_push_tokenizer(lua_State *L, egrc_tokenizer *tok) {
    lua_tokenizer *t = lua_newuserdatauv(L, sizeof *t, 0);
    t->tok = tok;
    luaL_setmetatable(L, EGRC_TOKENIZER_MT);
}

static int tokenizer_gc(lua_State *L) {
    lua_tokenizer *t = luaL_checkudata(L, 1, EGRC_TOKENIZER_MT);
    egrc_tokenizer_free(t->tok);
    t->tok = NULL;
    return 0;
}

static int tokenizer_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    egrc_lua_check_readable(L, path);
    egrc_push_tokenizer(L, NULL);
    lua_tokenizer *t = lua_touserdata(L, -1);
    egrc_error err;
    t->tok = egrc_tokenizer_load(path, &err);
    if (!t->tok) return egrc_lua_raise(L, &err);
    return 1;
}

static int tokenizer_encode(lua_State *L) {
    egrc_tokenizer *tok = egrc_check_tokenizer(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    int32_t *ids;
    size_t count;
    egrc_error err;
    lua_createtable(L, 0, 0); /* allocate before the ids, so nothing can leak them */
    if (egrc_tokenizer_encode(tok, text, len, &ids, &count, &err)) return egrc_lua_raise(L, &err);
    for (size_t i = 0; i < count; i++) {
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    free(ids);
    return 1;
}

static int tokenizer_decode(lua_State *L) {
    egrc_tokenizer *tok = egrc_check_tokenizer(L, 1);
    int keep_special = lua_toboolean(L, 3);
    size_t count;
    const int32_t *ids = egrc_check_int_list(L, 2, 2, 0, &count);
    egrc_error err;
    char *text = egrc_tokenizer_decode(tok, ids, count, keep_special, &err);
    if (!text) return egrc_lua_raise(L, &err);
    lua_pushstring(L, text);
    free(text);
    return 1;
}

static int tokenizer_token_id(lua_State *L) {
    int32_t id = egrc_tokenizer_token_id(egrc_check_tokenizer(L, 1), luaL_checkstring(L, 2));
    if (id < 0) lua_pushnil(L);
    else lua_pushinteger(L, id);
    return 1;
}

static int tokenizer_vocab_size(lua_State *L) {
    lua_pushinteger(L, egrc_tokenizer_vocab_size(egrc_check_tokenizer(L, 1)));
    return 1;
}

static int tokenizer_is_special(lua_State *L) {
    egrc_tokenizer *tok = egrc_check_tokenizer(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    lua_pushboolean(L, id >= 0 && id < egrc_tokenizer_vocab_size(tok) && egrc_tokenizer_is_special(tok, (int32_t)id));
    return 1;
}

static int tokenizer_tostring(lua_State *L) {
    lua_pushfstring(L, "egrc.tokenizer (%d ids)", (int)egrc_tokenizer_vocab_size(egrc_check_tokenizer(L, 1)));
    return 1;
}

/* Creates a metatable whose __index is the methods table. */
static void new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods) {
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

void egrc_open_model(lua_State *L) {
    new_class(L, EGRC_BACKEND_MT, (const luaL_Reg[]){{"__gc", backend_gc}, {"__tostring", backend_tostring}, {NULL, NULL}},
              (const luaL_Reg[]){{"name", backend_name}, {"info", backend_info}, {NULL, NULL}});
    new_class(L, EGRC_MODEL_MT, (const luaL_Reg[]){{"__gc", model_gc}, {"__tostring", model_tostring}, {NULL, NULL}},
              (const luaL_Reg[]){{"save", model_save},
                                 {"num_params", model_num_params},
                                 {"config", model_config},
                                 {"clone", model_clone},
                                 {"backend", model_backend},
                                 {NULL, NULL}});
    new_class(L, EGRC_TOKENIZER_MT,
              (const luaL_Reg[]){{"__gc", tokenizer_gc}, {"__tostring", tokenizer_tostring}, {NULL, NULL}},
              (const luaL_Reg[]){{"encode", tokenizer_encode},
                                 {"decode", tokenizer_decode},
                                 {"token_id", tokenizer_token_id},
                                 {"vocab_size", tokenizer_vocab_size},
                                 {"is_special", tokenizer_is_special},
                                 {NULL, NULL}});
    lua_pushcfunction(L, backend_open);
    lua_setfield(L, -2, "backend");
    lua_pushcfunction(L, backend_default);
    lua_setfield(L, -2, "default_backend");
    lua_pushcfunction(L, backend_set_default);
    lua_setfield(L, -2, "set_default_backend");
    luaL_newlib(L, ((const luaL_Reg[]){{"create", model_create}, {"load", model_load}, {"presets", model_presets},
                                       {NULL, NULL}}));
    lua_setfield(L, -2, "model");
    luaL_newlib(L, ((const luaL_Reg[]){{"load", tokenizer_load}, {NULL, NULL}}));
    lua_setfield(L, -2, "tokenizer");
}
