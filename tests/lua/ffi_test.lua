-- egrc.ffi against tests/ffi/ffi_test.c: every type, copy-in/copy-out of
-- float arrays, buffers, and each kind of error.
-- Run as: egrc run tests/lua/ffi_test.lua --set tests=tests/lua --set lib=PATH/libegrc_ffi_test.so
-- [--set case=NAME] runs the named cases only (tests/lua/check.lua).
local egrc = require("egrc")

return {
  settings = { tests = "tests/lua", case = "", lib = "libegrc_ffi_test.so" },

  main = function(run)
    local check = dofile(run.settings.tests .. "/check.lua")
    check.only(run.settings.case)
    local lib = egrc.ffi.load(run.settings.lib)
    local f = function(name, sig) return lib:func(name, sig) end

    local identity = f("ffi_identity", "void*(void*)")
    local sum = f("ffi_sum", "float(const float*, int)")

    check.case("scalar types and strings", function()
      check.eq(f("ffi_scale", "double(double, float)")(1.5, 4), 6.0, "double, float")
      check.eq(f("ffi_half", "float(float)")(3), 1.5, "float return")
      check.eq(f("ffi_i8", "int8_t(int8_t)")(-128 + 1), 127, "int8_t")
      check.eq(f("ffi_i16", "int16_t(int16_t)")(-300), -600, "int16_t")
      check.eq(f("ffi_i32", "int32_t(int32_t, int32_t)")(5, 7), -2, "int32_t")
      check.eq(f("ffi_i64", "int64_t(int64_t, int64_t)")(1 << 40, 3), 3 << 40, "int64_t")
      check.eq(f("ffi_u8", "uint8_t(uint8_t)")(255), 0, "uint8_t wraps in C")
      check.eq(f("ffi_u16", "uint16_t(uint16_t)")(65534), 65535, "uint16_t")
      check.eq(f("ffi_u32", "uint32_t(uint32_t)")(4294967294), 4294967295, "uint32_t")
      check.eq(f("ffi_u64", "uint64_t(uint64_t)")(1 << 62), (1 << 62) + 1, "uint64_t")
      check.eq(f("ffi_int", "int(int, long)")(2, 40), 42, "int, long")
      check.eq(f("ffi_long", "long(long)")(-5), 5, "long")
      check.eq(f("ffi_strlen", "size_t(const char*)")("héllo"), 6, "const char* in, size_t out")
      check.eq(f("ffi_not", "bool(bool)")(false), true, "bool")
      check.eq(f("ffi_greet", "const char*(const char*)")("lua"), "hello, lua", "const char* out")
      check.eq(f("ffi_null_string", "const char*(void)")(), nil, "NULL string is nil")
      check.eq(f("ffi_null_string", "const char*()")(), nil, "empty argument list")
    end)

    check.case("pointers and float arrays", function()
      check.eq(identity(nil), nil, "NULL pointer is nil")
      local buf = egrc.buffer({ 1, 2, 3 })
      check.eq(type(identity(buf)), "userdata", "a buffer passes as void*")
      local p = identity(buf)
      check.eq(identity(p), p, "light userdata round trip")
      check.eq(f("ffi_is_null", "int(void*)")(nil), 1, "nil is NULL")
      check.eq(sum({ 1, 2, 3.5 }, 3), 6.5, "const float* from a table")
      check.eq(sum(buf, 3), 6, "const float* from a buffer")
      local double_all = f("ffi_double_all", "void(float*, int)")
      local t = { 1, 2, 3 }
      check.eq(select("#", double_all(t, 3)), 0, "void returns nothing")
      check.eq(table.concat(t, ","), "2.0,4.0,6.0", "float* copies back into the table")
      local t2 = { 1, 2 }
      f("ffi_double_all", "void(const float*, int)")(t2, 2)
      check.eq(table.concat(t2, ","), "1,2", "const float* does not copy back")
      double_all(buf, 3)
      check.eq(buf[3], 6, "float* writes into a buffer in place")
    end)

    check.case("state and many arguments", function()
      local count, counter = f("ffi_count", "void(void)"), f("ffi_counter", "int(void)")
      count()
      count()
      check.eq(counter(), 2, "C state persists between calls")
      local many = f("ffi_many", "int(int,int,int,int,int,int,int,int,double,double)")
      check.eq(many(1, 2, 3, 4, 5, 6, 7, 8, 0.5, 0.5), 37, "ten arguments (some on the stack)")
      check.ok(tostring(sum):find("ffi_sum: float(const float*, int)", 1, true), "function tostring")
    end)

    check.case("signature errors", function()
      check.raises(function() f("ffi_i64", "int64_t(in64_t)") end,
        "bad signature 'int64_t(in64_t)': unknown type 'in64_t' at position 9", "unknown type")
      check.raises(function() f("ffi_i64", "int64_t int64_t") end, "'(' expected after the return type at position 9",
        "missing (")
      check.raises(function() f("ffi_i64", "int64_t(int64_t") end, "',' or ')' expected at position 16", "missing )")
      check.raises(function() f("ffi_i64", "int64_t(int64_t,)") end, "type expected after ','", "trailing comma")
      check.raises(function() f("ffi_i64", "int64_t(int64_t) x") end, "unexpected text after ')' at position 18",
        "trailing text")
      check.raises(function() f("ffi_greet", "char*(char*)") end, "strings are 'const char*'", "char*")
      check.raises(function() f("ffi_sum", "float*(int)") end, "float* is an argument type only", "float* return")
      check.raises(function() f("ffi_sum", "int(int*)") end, "pointers to int are not supported", "int*")
      check.raises(function() f("ffi_sum", "int(void, int)") end, "'void' is not an argument type", "void argument")
    end)

    check.case("call errors", function()
      check.raises(function() f("no_such_function", "int(void)") end, "no function 'no_such_function'",
        "missing symbol")
      check.raises(function() egrc.ffi.load(run:path("missing.so")) end, "missing.so", "missing library")
      check.raises(function() f("ffi_i32", "int32_t(int32_t, int32_t)")(1) end, "ffi_i32: expected 2 arguments, got 1",
        "argument count")
      check.raises(function() f("ffi_i32", "int32_t(int32_t, int32_t)")(1, "x") end,
        "ffi_i32: argument 2: integer expected for int32_t, got string", "argument type")
      check.raises(function() f("ffi_i32", "int32_t(int32_t, int32_t)")(1, 0.5) end,
        "argument 2: integer expected for int32_t, got 0.5", "fraction for an integer")
      check.raises(function() f("ffi_i8", "int8_t(int8_t)")(300) end, "a value in range expected for int8_t, got 300",
        "out of range")
      check.raises(function() f("ffi_u8", "uint8_t(uint8_t)")(-1) end, "for uint8_t", "negative unsigned")
      check.raises(function() f("ffi_not", "bool(bool)")(1) end, "boolean expected for bool", "bool type")
      check.raises(function() f("ffi_greet", "const char*(const char*)")(5) end, "string expected for const char*",
        "string type")
      check.raises(function() sum({ 1, "x" }, 2) end, "argument 1: element 2 is not a number", "float table element")
      check.raises(function() sum("x", 1) end, "egrc.buffer or table of numbers expected for const float*",
        "float* type")
      check.raises(function() identity(5) end, "light userdata, egrc.buffer or nil expected for void*", "pointer type")
      check.raises(function() lib.func(5, "x", "int()") end, "egrc.ffi.library expected", "bad self")
    end)

    check.done("ffi_test")
  end,
}
