/* Deterministic random numbers: xoshiro256** seeded through splitmix64.
 * The whole state is four words, so checkpoints save and restore it exactly
 * and a resumed run draws the same numbers as an uninterrupted one. */
#ifndef EGRC_RNG_H
#define EGRC_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct egrc_rng {
    uint64_t s[4];
} egrc_rng;

static inline uint64_t egrc_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline void egrc_rng_seed(egrc_rng *rng, uint64_t seed) {
    for (int i = 0; i < 4; i++) rng->s[i] = egrc_splitmix64(&seed);
}

static inline uint64_t egrc_rng_next(egrc_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t rotated = s[1] * 5;
    uint64_t result = ((rotated << 7) | (rotated >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

/* Uniform in [0, 1) with 24 bits, exactly representable as float. */
static inline float egrc_rng_uniform(egrc_rng *rng) { return (float)(egrc_rng_next(rng) >> 40) * (1.0f / 16777216.0f); }

/* Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; bias < 2^-32 for n < 2^32). */
static inline uint32_t egrc_rng_below(egrc_rng *rng, uint32_t n) {
    return (uint32_t)(((egrc_rng_next(rng) >> 32) * (uint64_t)n) >> 32);
}

/* Two independent standard normals by Box-Muller. */
static inline void egrc_rng_normal_pair(egrc_rng *rng, float out[2]) {
    double u1 = ((double)(egrc_rng_next(rng) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(egrc_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
    double radius = sqrt(-2.0 * log(u1)), angle = 6.283185307179586 * u2;
    out[0] = (float)(radius * cos(angle));
    out[1] = (float)(radius * sin(angle));
}

/* One standard normal (the pair's second value is dropped). */
static inline float egrc_rng_normal(egrc_rng *rng) {
    float z[2];
    egrc_rng_normal_pair(rng, z);
    return z[0];
}

#endif
