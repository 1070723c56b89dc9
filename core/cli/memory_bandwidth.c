#include "memory_bandwidth.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>

/* 1 GiB: well past the last-level cache of any CPU egrc runs on. */
#define READ_BYTES ((size_t)1 << 30)
#define PASSES 3

/* the folds land here, so the compiler cannot drop the reads */
static volatile uint64_t read_sink;

double egrc_host_read_gbps(void) {
    const size_t words = READ_BYTES / sizeof(uint64_t);
    uint64_t *buffer = malloc(READ_BYTES);
    if (!buffer) return -1.0;
    /* each thread touches the pages it will read (first touch places them near it) */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < words; i++) buffer[i] = i;
    double best = 0.0;
    for (int pass = 0; pass < PASSES; pass++) {
        uint64_t folded = 0;
        double start = omp_get_wtime();
        /* an integer xor: vectorised and exact, so the loop is bound by memory, not by a sum's latency */
#pragma omp parallel for schedule(static) reduction(^ : folded)
        for (size_t i = 0; i < words; i++) folded ^= buffer[i];
        double seconds = omp_get_wtime() - start;
        read_sink ^= folded;
        if (seconds > 0.0 && (double)READ_BYTES / seconds > best) best = (double)READ_BYTES / seconds;
    }
    free(buffer);
    return best / 1e9;
}
