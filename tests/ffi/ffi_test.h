/* The functions of the egrc.ffi test library (see ffi_test.c). */
#ifndef EGRC_FFI_TEST_H
#define EGRC_FFI_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

double ffi_scale(double x, float y);
float ffi_half(float x);
int8_t ffi_i8(int8_t x);
int16_t ffi_i16(int16_t x);
int32_t ffi_i32(int32_t a, int32_t b);
int64_t ffi_i64(int64_t a, int64_t b);
uint8_t ffi_u8(uint8_t x);
uint16_t ffi_u16(uint16_t x);
uint32_t ffi_u32(uint32_t x);
uint64_t ffi_u64(uint64_t x);
int ffi_int(int a, long b);
long ffi_long(long x);
size_t ffi_strlen(const char *s);
bool ffi_not(bool x);
const char *ffi_greet(const char *name);
const char *ffi_null_string(void);
void *ffi_identity(void *p);
int ffi_is_null(void *p);
float ffi_sum(const float *x, int n);
void ffi_double_all(float *x, int n);
void ffi_count(void);
int ffi_counter(void);
int ffi_many(int a, int b, int c, int d, int e, int f, int g, int h, double x, double y);

#endif
