/* egrc.ffi: calling C functions of a shared library from a recipe through
 * libffi, with a signature written as a C prototype without names:
 *
 *   local lib = egrc.ffi.load("./librewards.so")
 *   local f = lib:func("score", "double(const char*, int64_t, float*)")
 *
 * Types: void, bool, int8_t..int64_t, uint8_t..uint64_t, int, long, size_t,
 * float, double; pointers: void* (a light userdata, nil for NULL, or an
 * egrc.buffer), const char* (a Lua string in, a copied Lua string out),
 * float* (an egrc.buffer, passed as is, or a table of numbers copied in
 * before the call and back out after it) and const float* (copied in only).
 * float* is an argument type only. Every mistake is a Lua error that says
 * where: the position in the signature, the missing symbol (dlerror's text),
 * the argument count, or the argument number and the expected type. */
#include <dlfcn.h>
#include <ffi.h>
#include <stdbool.h>
#include <string.h>

#include "lua_internal.h"

#define MAX_ARGS 16

typedef enum {
    T_VOID, T_BOOL, T_I8, T_I16, T_I32, T_I64, T_U8, T_U16, T_U32, T_U64, T_INT, T_LONG, T_SIZE,
    T_FLOAT, T_DOUBLE, T_PTR, T_STRING, T_FLOATS, T_CONST_FLOATS
} ctype;

static const struct {
    const char *name;
    ctype type;
} base_types[] = {{"void", T_VOID},     {"bool", T_BOOL},     {"int8_t", T_I8},   {"int16_t", T_I16},
                  {"int32_t", T_I32},   {"int64_t", T_I64},   {"uint8_t", T_U8},  {"uint16_t", T_U16},
                  {"uint32_t", T_U32},  {"uint64_t", T_U64},  {"int", T_INT},     {"long", T_LONG},
                  {"size_t", T_SIZE},   {"float", T_FLOAT},   {"double", T_DOUBLE}, {"char", T_VOID}};

static const char *const type_names[] = {"void", "bool", "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t",
                                         "uint16_t", "uint32_t", "uint64_t", "int", "long", "size_t", "float",
                                         "double", "void*", "const char*", "float*", "const float*"};

static ffi_type *ffi_type_of(ctype t) {
    switch (t) {
    case T_VOID: return &ffi_type_void;
    case T_BOOL: return sizeof(bool) == 1 ? &ffi_type_uint8 : &ffi_type_uint32;
    case T_I8: return &ffi_type_sint8;
    case T_I16: return &ffi_type_sint16;
    case T_I32: return &ffi_type_sint32;
    case T_I64: return &ffi_type_sint64;
    case T_U8: return &ffi_type_uint8;
    case T_U16: return &ffi_type_uint16;
    case T_U32: return &ffi_type_uint32;
    case T_U64: return &ffi_type_uint64;
    case T_INT: return &ffi_type_sint;
    case T_LONG: return &ffi_type_slong;
    case T_SIZE: return sizeof(size_t) == 8 ? &ffi_type_uint64 : &ffi_type_uint32;
    case T_FLOAT: return &ffi_type_float;
    case T_DOUBLE: return &ffi_type_double;
    default: return &ffi_type_pointer;
    }
}

/* ---- signature parsing ---- */

typedef struct parser {
    lua_State *L;
    const char *sig, *p;
} parser;

static void skip_space(parser *ps) {
    while (*ps->p == ' ' || *ps->p == '\t') ps->p++;
}

static int parse_error(parser *ps, const char *at, const char *what) {
    return luaL_error(ps->L, "bad signature '%s': %s at position %d", ps->sig, what, (int)(at - ps->sig) + 1);
}

/* One identifier, or NULL-length at a non-identifier character. */
static size_t word(parser *ps) {
    size_t n = 0;
    while ((ps->p[n] >= 'a' && ps->p[n] <= 'z') || (ps->p[n] >= 'A' && ps->p[n] <= 'Z') ||
           (ps->p[n] >= '0' && ps->p[n] <= '9') || ps->p[n] == '_')
        n++;
    return n;
}

/* type := ['const'] base ['*'] */
static ctype parse_type(parser *ps, int is_return) {
    skip_space(ps);
    const char *start = ps->p;
    size_t n = word(ps);
    int is_const = n == 5 && strncmp(ps->p, "const", 5) == 0;
    if (is_const) {
        ps->p += 5;
        skip_space(ps);
        n = word(ps);
    }
    const char *name = ps->p;
    if (n == 0) parse_error(ps, name, *name ? lua_pushfstring(ps->L, "type expected, got '%c'", *name) : "type expected, got the end");
    int found = -1;
    for (size_t i = 0; i < sizeof base_types / sizeof base_types[0]; i++)
        if (strlen(base_types[i].name) == n && strncmp(base_types[i].name, name, n) == 0) found = (int)i;
    if (found < 0) parse_error(ps, name, lua_pushfstring(ps->L, "unknown type '%s'", lua_pushlstring(ps->L, name, n)));
    ps->p += n;
    skip_space(ps);
    int pointer = *ps->p == '*';
    if (pointer) ps->p++;
    const char *base = base_types[found].name;
    if (pointer) {
        if (strcmp(base, "char") == 0) {
            if (!is_const) parse_error(ps, start, "strings are 'const char*' (egrc never lets C write into a Lua string)");
            return T_STRING;
        }
        if (strcmp(base, "void") == 0) return T_PTR;
        if (strcmp(base, "float") == 0) {
            if (is_return) parse_error(ps, start, "float* is an argument type only (return void* instead)");
            return is_const ? T_CONST_FLOATS : T_FLOATS;
        }
        parse_error(ps, start, lua_pushfstring(ps->L, "pointers to %s are not supported (use void*, const char* or float*)", base));
    }
    if (strcmp(base, "char") == 0) parse_error(ps, start, "'char' is only supported as 'const char*'");
    return base_types[found].type;
}

typedef struct ffi_func {
    void *fn;
    ffi_cif cif;
    ffi_type *arg_types[MAX_ARGS];
    ctype ret, args[MAX_ARGS];
    int nargs;
    char name[64];
} ffi_func;

/* sig := type '(' [ 'void' | type {',' type} ] ')' */
static void parse_signature(lua_State *L, const char *sig, ffi_func *f) {
    parser ps = {L, sig, sig};
    f->ret = parse_type(&ps, 1);
    skip_space(&ps);
    if (*ps.p != '(') parse_error(&ps, ps.p, "'(' expected after the return type");
    ps.p++;
    skip_space(&ps);
    f->nargs = 0;
    const char *after_void = ps.p + 4;
    if (strncmp(ps.p, "void", 4) == 0 && (*after_void == ')' || *after_void == ' ')) {
        ps.p = after_void;
        skip_space(&ps);
    } else {
        while (*ps.p != ')') {
            const char *at = ps.p;
            if (f->nargs == MAX_ARGS) parse_error(&ps, at, lua_pushfstring(L, "more than %d arguments", MAX_ARGS));
            ctype t = parse_type(&ps, 0);
            if (t == T_VOID) parse_error(&ps, at, "'void' is not an argument type");
            f->args[f->nargs++] = t;
            skip_space(&ps);
            if (*ps.p == ',') {
                ps.p++;
                skip_space(&ps);
                if (*ps.p == ')') parse_error(&ps, ps.p, "type expected after ','");
            } else if (*ps.p != ')') {
                parse_error(&ps, ps.p, "',' or ')' expected");
            }
        }
    }
    if (*ps.p != ')') parse_error(&ps, ps.p, "')' expected");
    ps.p++;
    skip_space(&ps);
    if (*ps.p) parse_error(&ps, ps.p, "unexpected text after ')'");
}

/* ---- libraries and functions ---- */

typedef struct ffi_lib {
    void *handle;
} ffi_lib;

static int lib_gc(lua_State *L) {
    ffi_lib *lib = luaL_checkudata(L, 1, EGRC_FFI_LIB_MT);
    if (lib->handle) dlclose(lib->handle);
    lib->handle = NULL;
    return 0;
}

static int ffi_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    ffi_lib *lib = lua_newuserdatauv(L, sizeof *lib, 0);
    lib->handle = NULL;
    luaL_setmetatable(L, EGRC_FFI_LIB_MT);
    lib->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle) return luaL_error(L, "egrc.ffi.load: %s", dlerror());
    return 1;
}

/* lib:func(name, signature) -> a callable */
static int lib_func(lua_State *L) {
    ffi_lib *lib = luaL_checkudata(L, 1, EGRC_FFI_LIB_MT);
    const char *name = luaL_checkstring(L, 2), *sig = luaL_checkstring(L, 3);
    ffi_func *f = lua_newuserdatauv(L, sizeof *f, 2);
    memset(f, 0, sizeof *f);
    parse_signature(L, sig, f);
    dlerror();
    f->fn = dlsym(lib->handle, name);
    if (!f->fn) {
        const char *why = dlerror();
        return luaL_error(L, "egrc.ffi: no function '%s' in the library (%s)", name, why ? why : "NULL symbol");
    }
    for (int i = 0; i < f->nargs; i++) f->arg_types[i] = ffi_type_of(f->args[i]);
    if (ffi_prep_cif(&f->cif, FFI_DEFAULT_ABI, (unsigned)f->nargs, ffi_type_of(f->ret), f->arg_types) != FFI_OK)
        return luaL_error(L, "egrc.ffi: libffi cannot call '%s' with signature '%s'", name, sig);
    snprintf(f->name, sizeof f->name, "%s", name);
    luaL_setmetatable(L, EGRC_FFI_FUNC_MT);
    lua_pushvalue(L, 1); /* the library stays open while the function lives */
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, 3);
    lua_setiuservalue(L, -2, 2);
    return 1;
}

typedef union cvalue {
    int8_t i8;
    int16_t i16;
    int32_t i32;
    int64_t i64;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    int i;
    long l;
    size_t z;
    bool b;
    float f;
    double d;
    const void *p;
    ffi_arg ret_u;
    ffi_sarg ret_s;
} cvalue;

static int arg_error(lua_State *L, const ffi_func *f, int k, const char *what) {
    return luaL_error(L, "%s: argument %d: %s expected for %s, got %s", f->name, k, what, type_names[f->args[k - 1]],
                      lua_type(L, k + 1) == LUA_TNUMBER ? lua_tostring(L, k + 1) : luaL_typename(L, k + 1));
}

/* Converts Lua argument k (stack slot k+1: slot 1 is the function) into v;
 * a table passed as float* is copied into scratch memory (*floats). */
static void to_c(lua_State *L, const ffi_func *f, int k, cvalue *v, float **floats) {
    const int idx = k + 1;
    const ctype t = f->args[k - 1];
    *floats = NULL;
    if (t >= T_I8 && t <= T_SIZE) {
        static const lua_Integer lo[] = {INT8_MIN, INT16_MIN, INT32_MIN, INT64_MIN, 0, 0, 0, 0, INT32_MIN, INT64_MIN, 0};
        static const lua_Integer hi[] = {INT8_MAX, INT16_MAX, INT32_MAX, INT64_MAX, UINT8_MAX, UINT16_MAX, UINT32_MAX,
                                         INT64_MAX, INT32_MAX, INT64_MAX, INT64_MAX};
        int ok;
        lua_Integer x = lua_tointegerx(L, idx, &ok);
        if (!ok || lua_type(L, idx) != LUA_TNUMBER) arg_error(L, f, k, "integer");
        if (x < lo[t - T_I8] || x > hi[t - T_I8]) arg_error(L, f, k, "a value in range");
        switch (t) {
        case T_I8: v->i8 = (int8_t)x; break;
        case T_I16: v->i16 = (int16_t)x; break;
        case T_I32: v->i32 = (int32_t)x; break;
        case T_I64: v->i64 = x; break;
        case T_U8: v->u8 = (uint8_t)x; break;
        case T_U16: v->u16 = (uint16_t)x; break;
        case T_U32: v->u32 = (uint32_t)x; break;
        case T_U64: v->u64 = (uint64_t)x; break;
        case T_INT: v->i = (int)x; break;
        case T_LONG: v->l = (long)x; break;
        default: v->z = (size_t)x; break;
        }
        return;
    }
    size_t n;
    switch (t) {
    case T_BOOL:
        if (!lua_isboolean(L, idx)) arg_error(L, f, k, "boolean");
        v->b = lua_toboolean(L, idx);
        return;
    case T_FLOAT:
    case T_DOUBLE:
        if (lua_type(L, idx) != LUA_TNUMBER) arg_error(L, f, k, "number");
        if (t == T_FLOAT) v->f = (float)lua_tonumber(L, idx);
        else v->d = lua_tonumber(L, idx);
        return;
    case T_STRING:
        if (lua_type(L, idx) != LUA_TSTRING) arg_error(L, f, k, "string");
        v->p = lua_tostring(L, idx);
        return;
    case T_PTR:
        if (lua_isnil(L, idx)) v->p = NULL;
        else if (lua_islightuserdata(L, idx)) v->p = lua_touserdata(L, idx);
        else if (!(v->p = egrc_test_buffer(L, idx, &n))) arg_error(L, f, k, "light userdata, egrc.buffer or nil");
        return;
    default: /* float*, const float* */
        if ((v->p = egrc_test_buffer(L, idx, &n))) return;
        if (!lua_istable(L, idx)) arg_error(L, f, k, "egrc.buffer or table of numbers");
        n = lua_rawlen(L, idx);
        *floats = egrc_lua_scratch(L, n * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            if (lua_rawgeti(L, idx, (lua_Integer)i + 1) != LUA_TNUMBER)
                luaL_error(L, "%s: argument %d: element %d is not a number", f->name, k, (int)i + 1);
            (*floats)[i] = (float)lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        v->p = *floats;
        return;
    }
}

static void push_result(lua_State *L, ctype t, const cvalue *r) {
    switch (t) {
    case T_BOOL: lua_pushboolean(L, (int)r->ret_u & 0xff); break;
    case T_I8:
    case T_I16:
    case T_I32:
    case T_INT: lua_pushinteger(L, (lua_Integer)r->ret_s); break;
    case T_U8:
    case T_U16:
    case T_U32: lua_pushinteger(L, (lua_Integer)r->ret_u); break;
    case T_I64: lua_pushinteger(L, r->i64); break;
    case T_LONG: lua_pushinteger(L, r->l); break;
    case T_U64: lua_pushinteger(L, (lua_Integer)r->u64); break;
    case T_SIZE: lua_pushinteger(L, (lua_Integer)r->z); break;
    case T_FLOAT: lua_pushnumber(L, r->f); break;
    case T_DOUBLE: lua_pushnumber(L, r->d); break;
    case T_STRING:
        if (r->p) lua_pushstring(L, r->p);
        else lua_pushnil(L);
        break;
    case T_PTR:
        if (r->p) lua_pushlightuserdata(L, (void *)r->p);
        else lua_pushnil(L);
        break;
    default: break;
    }
}

static int func_call(lua_State *L) {
    ffi_func *f = luaL_checkudata(L, 1, EGRC_FFI_FUNC_MT);
    int given = lua_gettop(L) - 1;
    if (given != f->nargs)
        return luaL_error(L, "%s: expected %d argument%s, got %d", f->name, f->nargs, f->nargs == 1 ? "" : "s", given);
    cvalue values[MAX_ARGS], result;
    void *pointers[MAX_ARGS];
    float *copies[MAX_ARGS];
    for (int k = 1; k <= f->nargs; k++) {
        to_c(L, f, k, &values[k - 1], &copies[k - 1]);
        pointers[k - 1] = &values[k - 1];
    }
    memset(&result, 0, sizeof result);
    ffi_call(&f->cif, FFI_FN(f->fn), &result, pointers);
    /* copy-out: a table passed as (non-const) float* receives what C wrote */
    for (int k = 1; k <= f->nargs; k++) {
        if (!copies[k - 1] || f->args[k - 1] != T_FLOATS) continue;
        size_t n = lua_rawlen(L, k + 1);
        for (size_t i = 0; i < n; i++) {
            lua_pushnumber(L, copies[k - 1][i]);
            lua_rawseti(L, k + 1, (lua_Integer)i + 1);
        }
    }
    if (f->ret == T_VOID) return 0;
    push_result(L, f->ret, &result);
    return 1;
}

static int func_tostring(lua_State *L) {
    ffi_func *f = luaL_checkudata(L, 1, EGRC_FFI_FUNC_MT);
    lua_getiuservalue(L, 1, 2);
    lua_pushfstring(L, "egrc.ffi function %s: %s", f->name, lua_tostring(L, -1));
    return 1;
}

void egrc_open_ffi(lua_State *L) {
    luaL_newmetatable(L, EGRC_FFI_LIB_MT);
    lua_pushcfunction(L, lib_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, ((const luaL_Reg[]){{"func", lib_func}, {NULL, NULL}}));
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newmetatable(L, EGRC_FFI_FUNC_MT);
    luaL_setfuncs(L, ((const luaL_Reg[]){{"__call", func_call}, {"__tostring", func_tostring}, {NULL, NULL}}), 0);
    lua_pop(L, 1);
    luaL_newlib(L, ((const luaL_Reg[]){{"load", ffi_load}, {NULL, NULL}}));
    lua_setfield(L, -2, "ffi");
}
