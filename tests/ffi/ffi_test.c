/* A small shared library for the egrc.ffi tests (tests/lua/ffi_test.lua):
 * one function per supported type, strings in and out, pointers, float
 * arrays read and written, and a counter with state. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ffi_test.h"

double ffi_scale(double x, float y) { return x * (double)y; }
float ffi_half(float x) { return x / 2.0f; }
int8_t ffi_i8(int8_t x) { return (int8_t)-x; }
int16_t ffi_i16(int16_t x) { return (int16_t)(x * 2); }
int32_t ffi_i32(int32_t a, int32_t b) { return a - b; }
int64_t ffi_i64(int64_t a, int64_t b) { return a * b; }
uint8_t ffi_u8(uint8_t x) { return (uint8_t)(x + 1); }
uint16_t ffi_u16(uint16_t x) { return (uint16_t)(x + 1); }
uint32_t ffi_u32(uint32_t x) { return x + 1; }
uint64_t ffi_u64(uint64_t x) { return x + 1; }
int ffi_int(int a, long b) { return a + (int)b; }
long ffi_long(long x) { return -x; }
size_t ffi_strlen(const char *s) { return strlen(s); }
bool ffi_not(bool x) { return !x; }

const char *ffi_greet(const char *name) {
    static char buf[128];
    snprintf(buf, sizeof buf, "hello, %s", name);
    return buf;
}

const char *ffi_null_string(void) { return NULL; }
void *ffi_identity(void *p) { return p; }
int ffi_is_null(void *p) { return p == NULL; }

float ffi_sum(const float *x, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += x[i];
    return s;
}

void ffi_double_all(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] *= 2.0f;
}

static int counter;
void ffi_count(void) { counter++; }
int ffi_counter(void) { return counter; }

int ffi_many(int a, int b, int c, int d, int e, int f, int g, int h, double x, double y) {
    return a + b + c + d + e + f + g + h + (int)(x + y);
}
