/* The memory-read bandwidth a decode step is held to, measured in the same
 * run as the step (like the GEMM figure of `egrc bench train`), so that a
 * rollout's weight-read rate reads as a fraction of what this machine's
 * memory gives at this moment, noisy neighbours included. */
#ifndef EGRC_MEMORY_BANDWIDTH_H
#define EGRC_MEMORY_BANDWIDTH_H

/* GB/s (1e9 bytes) of reading a buffer far larger than the caches with all
 * OpenMP threads, the best of a few passes; -1 when the buffer cannot be
 * allocated. Host memory: the CPU backend's bound. */
double egrc_host_read_gbps(void);

#endif
