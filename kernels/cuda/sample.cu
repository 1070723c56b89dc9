/* Next-token sampling on the device: the backend op `sample` (backend.h),
 * with the semantics of core/base/sampling.c's host sampler, one block per row.
 *
 * 1. The row's maximum and argmax (lowest id on ties), and the T = 1
 *    statistics (lse, entropy) as cross_entropy_forward computes them. A
 *    greedy row stops here.
 * 2. The tempered weights w_v = (float)exp(((double)x_v - max) / T), in double
 *    as the host computes them so both sides hold the same fp32 weights (and
 *    hence the same order and the same ties), stored in a scratch row.
 * 3. Without truncation the token is the first, in id order, whose running
 *    sum of weights exceeds u times the total: each thread sums a contiguous
 *    slice of ids, a block scan finds the slice, its thread walks it.
 * 4. With truncation the order is w descending, then id ascending, and every
 *    set involved (the top k, the nucleus, the tokens before the drawn one) is
 *    a prefix of that order: all tokens above some weight `level` plus the
 *    lowest-id tokens AT the level up to an id `cut`. Each prefix is found
 *    without sorting, by a radix select over the weights' bit patterns (a
 *    non-negative float orders as its bits): 4 passes of 8 bits, each
 *    building a 256-bin histogram of counts and masses of the candidates
 *    that share the digits found so far, then picking the bin where the
 *    running count (top-k) or mass (top-p, the draw) crosses its target.
 *    Ties at the level are all equal weights, so how many of them a prefix
 *    takes is arithmetic; which ones (the lowest ids) takes one ordered pass
 *    over contiguous slices, as in 3.
 *
 * Masses are summed in fixed point (w * 2^S rounded to an integer, S = 44
 * for vocabularies up to 2^18, so a sum cannot overflow 64 bits): integer
 * sums are exact in any order, so every decision is deterministic and differs
 * from the host's double sums only by the rounding of each weight to 2^-S.
 * Targets are exact integer products: floor(u * mass) for the draw (the first
 * token whose running sum exceeds it), ceil(top_p * mass) for the nucleus
 * (the shortest prefix that reaches it). The draw's log-prob and entropy sum
 * the kept weights in double, as the host does. */
#include "common.cuh"

#define SAMPLE_THREADS 1024
#define SAMPLE_WARPS (SAMPLE_THREADS / WARP)
#define RADIX_BINS 256

typedef unsigned long long u64;

/* A prefix of the order (w desc, id asc): tokens whose weight bits exceed
 * `level`, and those equal to it with id <= cut. level 0, cut >= V: all. */
struct prefix_set {
    uint32_t level;
    int cut;
};

__device__ __forceinline__ bool in_set(prefix_set p, int v, uint32_t bits) {
    return bits > p.level || (bits == p.level && v <= p.cut);
}

struct sample_shared {
    uint32_t count[RADIX_BINS];
    u64 mass[RADIX_BINS];
    u64 scan[SAMPLE_WARPS];
    float red_f[SAMPLE_WARPS];
    int red_i[SAMPLE_WARPS];
    double red_d[SAMPLE_WARPS];
    /* results published by one thread to the block */
    uint32_t digit, tie_count;
    u64 above_count, above_mass;
    int found;
};

__device__ __forceinline__ u64 fixed_mass(float w, double scale) { return (u64)((double)w * scale + 0.5); }

/* The fixed-point weight of a level a select returned: positive, since the
 * select crosses its target there (1 guards a division should it not). */
__device__ __forceinline__ u64 level_mass(uint32_t level, double scale) {
    const u64 q = fixed_mass(__uint_as_float(level), scale);
    return q ? q : 1;
}

/* floor(a * b / 2^64): targets from fractions held as a / 2^64. */
__device__ __forceinline__ u64 mul_hi(u64 a, u64 b) { return __umul64hi(a, b); }

/* A fraction f in [0, 1) as f * 2^64 (exact for a float). */
__device__ __forceinline__ u64 fraction_bits(float f) {
    if (!(f > 0.0f)) return 0;
    if (f >= 1.0f) f = 0x1.fffffep-1f;
    return (u64)((double)f * 18446744073709551616.0);
}

/* Inclusive scan over the 32 lanes of a warp group. */
template <typename T>
__device__ __forceinline__ T warp_inclusive_scan(T v) {
    const int lane = threadIdx.x % WARP;
    for (int offset = 1; offset < WARP; offset *= 2) {
        T other = egrc_shfl(v, lane >= offset ? lane - offset : lane);
        if (lane >= offset) v += other;
    }
    return v;
}

/* Exclusive scan over the block (every thread calls it). */
__device__ u64 block_exclusive_scan(u64 v, sample_shared *sh) {
    const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    const u64 incl = warp_inclusive_scan(v);
    __syncthreads();
    if (lane == WARP - 1) sh->scan[warp] = incl;
    __syncthreads();
    if (warp == 0) {
        u64 t = lane < SAMPLE_WARPS ? sh->scan[lane] : 0;
        t = warp_inclusive_scan(t);
        if (lane < SAMPLE_WARPS) sh->scan[lane] = t;
    }
    __syncthreads();
    return (warp > 0 ? sh->scan[warp - 1] : 0) + incl - v;
}

/* The ids [lo, hi) of this thread's contiguous slice of a row of V. */
__device__ __forceinline__ void slice_of(int V, int *lo, int *hi) {
    const int chunk = (V + SAMPLE_THREADS - 1) / SAMPLE_THREADS, start = (int)threadIdx.x * chunk;
    *lo = start < V ? start : V;
    *hi = *lo + chunk < V ? *lo + chunk : V;
}

/* The id of the r-th (from 0, in id order) token of set p whose weight bits equal `level`. */
__device__ int nth_at_level(const float *w, int V, prefix_set p, uint32_t level, uint32_t r, sample_shared *sh) {
    int lo, hi;
    slice_of(V, &lo, &hi);
    u64 mine = 0;
    for (int v = lo; v < hi; v++) {
        const uint32_t bits = __float_as_uint(w[v]);
        mine += bits == level && in_set(p, v, bits);
    }
    if (threadIdx.x == 0) sh->found = -1;
    const u64 before = block_exclusive_scan(mine, sh); /* syncs, so found = -1 is visible */
    if (before <= r && r < before + mine) {
        u64 seen = before;
        for (int v = lo; v < hi; v++) {
            const uint32_t bits = __float_as_uint(w[v]);
            if (bits == level && in_set(p, v, bits) && seen++ == r) {
                sh->found = v;
                break;
            }
        }
    }
    __syncthreads();
    const int id = sh->found;
    __syncthreads();
    return id;
}

/* Result of a radix select: the weight bits of the crossing level, what lies
 * strictly above it (count, fixed-point mass) and the count at it. */
struct level_select {
    uint32_t level, ties;
    u64 above_count, above_mass;
};

/* The level of set p at which the running count (by_count) or fixed-point
 * mass, accumulated in the order w descending, first reaches `target`
 * (target >= 1 and at most the set's total). */
__device__ level_select select_level(const float *w, int V, prefix_set p, bool by_count, u64 target, double scale,
                                     sample_shared *sh) {
    uint32_t prefix = 0, mask = 0;
    u64 base_count = 0, base_mass = 0;
    uint32_t ties = 0;
    const int lane = threadIdx.x % WARP;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < RADIX_BINS; b += blockDim.x) {
            sh->count[b] = 0;
            sh->mass[b] = 0;
        }
        if (threadIdx.x == 0) {
            sh->digit = 0;
            sh->tie_count = 0;
            sh->above_count = base_count;
            sh->above_mass = base_mass;
        }
        __syncthreads();
        for (int v = threadIdx.x; v < V; v += blockDim.x) {
            const float wv = w[v];
            const uint32_t bits = __float_as_uint(wv);
            if ((bits & mask) != prefix || !in_set(p, v, bits)) continue;
            const uint32_t d = (bits >> shift) & (RADIX_BINS - 1);
            atomicAdd(&sh->count[d], 1u);
            const u64 q = fixed_mass(wv, scale);
            if (q) atomicAdd(&sh->mass[d], q);
        }
        __syncthreads();
        if (threadIdx.x < WARP) {
            /* lane l holds bins 255 - 8l ... 248 - 8l (descending weights) */
            const int per_lane = RADIX_BINS / WARP;
            u64 seg_count = 0, seg_mass = 0;
            for (int j = 0; j < per_lane; j++) {
                const int b = RADIX_BINS - 1 - (lane * per_lane + j);
                seg_count += sh->count[b];
                seg_mass += sh->mass[b];
            }
            const u64 incl_count = warp_inclusive_scan(seg_count), incl_mass = warp_inclusive_scan(seg_mass);
            u64 run_count = base_count + incl_count - seg_count, run_mass = base_mass + incl_mass - seg_mass;
            const u64 start = by_count ? run_count : run_mass, end = by_count ? base_count + incl_count
                                                                              : base_mass + incl_mass;
            if (start < target && target <= end) {
                for (int j = 0; j < per_lane; j++) {
                    const int b = RADIX_BINS - 1 - (lane * per_lane + j);
                    const u64 next = by_count ? run_count + sh->count[b] : run_mass + sh->mass[b];
                    if (next >= target) {
                        sh->digit = (uint32_t)b;
                        sh->tie_count = sh->count[b];
                        sh->above_count = run_count;
                        sh->above_mass = run_mass;
                        break;
                    }
                    run_count += sh->count[b];
                    run_mass += sh->mass[b];
                }
            }
        }
        __syncthreads();
        prefix |= sh->digit << shift;
        mask |= (uint32_t)(RADIX_BINS - 1) << shift;
        base_count = sh->above_count;
        base_mass = sh->above_mass;
        ties = sh->tie_count;
        __syncthreads();
    }
    level_select s = {prefix, ties, base_count, base_mass};
    return s;
}

template <typename T>
__global__ void __launch_bounds__(SAMPLE_THREADS)
    sample_kernel(egrc_gpu_sample_result *out, float *weights, const T *logits, const egrc_gpu_sample_request *req,
                  int V, double scale) {
    __shared__ sample_shared sh;
    const int row = blockIdx.x;
    const T *x = logits + (size_t)row * V;
    float *w = weights + (size_t)row * V;
    const egrc_gpu_sample_request rq = req[row];

    /* 1. max and argmax (lowest id on ties: each thread visits ids in increasing order) */
    float best = -INFINITY;
    int best_id = 0x7fffffff;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float xv = act_load(x + v);
        if (xv > best || best_id == 0x7fffffff) best = xv, best_id = v;
    }
    for (int offset = WARP / 2; offset > 0; offset /= 2) {
        const float ob = egrc_shfl_xor(best, offset);
        const int oi = egrc_shfl_xor(best_id, offset);
        if (ob > best || (ob == best && oi < best_id)) best = ob, best_id = oi;
    }
    const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    if (lane == 0) {
        sh.red_f[warp] = best;
        sh.red_i[warp] = best_id;
    }
    __syncthreads();
    if (warp == 0) {
        best = lane < SAMPLE_WARPS ? sh.red_f[lane] : -INFINITY;
        best_id = lane < SAMPLE_WARPS ? sh.red_i[lane] : 0x7fffffff;
        for (int offset = WARP / 2; offset > 0; offset /= 2) {
            const float ob = egrc_shfl_xor(best, offset);
            const int oi = egrc_shfl_xor(best_id, offset);
            if (ob > best || (ob == best && oi < best_id)) best = ob, best_id = oi;
        }
        if (lane == 0) {
            sh.red_f[0] = best;
            sh.red_i[0] = best_id;
        }
    }
    __syncthreads();
    const float max_logit = sh.red_f[0];
    const int argmax = sh.red_i[0];
    __syncthreads();

    /* T = 1 statistics, as cross_entropy_forward */
    float thread_exp = 0.0f, thread_exp_x = 0.0f;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float xv = act_load(x + v), e = expf(xv - max_logit);
        thread_exp += e;
        thread_exp_x += e * xv;
    }
    const double sum_exp = block_sum((double)thread_exp, sh.red_d);
    const double sum_exp_x = block_sum((double)thread_exp_x, sh.red_d);
    const double row_lse = max_logit + log(sum_exp);
    const float lse = (float)row_lse, entropy = (float)(row_lse - sum_exp_x / sum_exp);

    if (!(rq.temperature > EGRC_GPU_SAMPLE_GREEDY_TEMPERATURE)) {
        if (threadIdx.x == 0) {
            egrc_gpu_sample_result r = {argmax, act_load(x + argmax) - lse, entropy, 0.0f, 0.0f};
            out[row] = r;
        }
        return;
    }

    /* 2. tempered weights */
    const double inv_t = 1.0 / rq.temperature, max_d = max_logit;
    u64 thread_q = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float wv = (float)exp(((double)act_load(x + v) - max_d) * inv_t);
        w[v] = wv;
        thread_q += fixed_mass(wv, scale);
    }
    const u64 total_q = block_sum(thread_q, sh.scan); /* integers: exact in any order */

    const u64 u_bits = fraction_bits(rq.u);
    const int need_k = rq.top_k > 0 && rq.top_k < V ? rq.top_k : 0;
    const bool truncate = need_k > 0 || rq.top_p < 1.0f;
    prefix_set kept = {0u, V};
    int token;
    if (!truncate) {
        /* 3. first id whose running sum exceeds floor(u * total) */
        const u64 target = mul_hi(u_bits, total_q);
        int lo, hi;
        slice_of(V, &lo, &hi);
        u64 mine = 0;
        for (int v = lo; v < hi; v++) mine += fixed_mass(w[v], scale);
        if (threadIdx.x == 0) sh.found = argmax;
        const u64 before = block_exclusive_scan(mine, &sh);
        if (before <= target && target < before + mine) {
            u64 run = before;
            for (int v = lo; v < hi; v++) {
                run += fixed_mass(w[v], scale);
                if (run > target) {
                    sh.found = v;
                    break;
                }
            }
        }
        __syncthreads();
        token = sh.found;
        __syncthreads();
    } else {
        /* 4. top-k: the first need_k of the order */
        u64 kept_q = total_q;
        if (need_k > 0) {
            const level_select s = select_level(w, V, kept, true, (u64)need_k, scale, &sh);
            const uint32_t take = (uint32_t)(need_k - (int)s.above_count);
            kept.level = s.level;
            kept.cut = take >= s.ties ? V : nth_at_level(w, V, kept, s.level, take - 1, &sh);
            kept_q = s.above_mass + (u64)take * fixed_mass(__uint_as_float(s.level), scale);
        }
        /* top-p: the shortest prefix of the top k reaching ceil(top_p * their mass) */
        if (rq.top_p < 1.0f) {
            const u64 p_bits = fraction_bits(rq.top_p);
            const u64 need = mul_hi(p_bits, kept_q) + (p_bits * kept_q != 0);
            const level_select s = select_level(w, V, kept, false, need, scale, &sh);
            const u64 q = level_mass(s.level, scale);
            const u64 take = (need - s.above_mass + q - 1) / q;
            const prefix_set top_k_set = kept;
            kept.level = s.level;
            if (take < s.ties) kept.cut = nth_at_level(w, V, top_k_set, s.level, (uint32_t)take - 1, &sh);
            else kept.cut = s.level == top_k_set.level ? top_k_set.cut : V;
            kept_q = s.above_mass + take * q;
        }
        /* the draw: the first of the kept, in order, whose running sum exceeds floor(u * kept) */
        const u64 target = mul_hi(u_bits, kept_q);
        const level_select s = select_level(w, V, kept, false, target + 1, scale, &sh);
        const u64 q = level_mass(s.level, scale);
        token = nth_at_level(w, V, kept, s.level, (uint32_t)((target - s.above_mass) / q), &sh);
    }

    /* log-prob and entropy of the kept distribution, summed in double */
    double thread_w = 0.0, thread_wlogw = 0.0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float wv = w[v];
        if (!(wv > 0.0f) || !in_set(kept, v, __float_as_uint(wv))) continue;
        thread_w += wv;
        thread_wlogw += (double)wv * ((double)act_load(x + v) - max_d) * inv_t; /* the host's order */
    }
    const double kept_mass = block_sum(thread_w, sh.red_d);
    const double sum_w_logw = block_sum(thread_wlogw, sh.red_d);
    if (threadIdx.x == 0) {
        const double log_mass = log(kept_mass);
        const float xt = act_load(x + token);
        egrc_gpu_sample_result r = {token, xt - lse, entropy, (float)(((double)xt - max_d) * inv_t - log_mass),
                                    (float)(log_mass - sum_w_logw / kept_mass)};
        out[row] = r;
    }
}

size_t egrc_gpu_sample_scratch(int N, int V) { return (size_t)(N > 0 ? N : 0) * (size_t)(V > 0 ? V : 0) * sizeof(float); }

template <typename T>
static cudaError_t sample_launch(cudaStream_t stream, void *scratch, egrc_gpu_sample_result *out, const void *logits,
                                 const egrc_gpu_sample_request *req, int N, int V) {
    /* 2^S with S = 44 while V <= 2^18, smaller beyond, so V * 2^S < 2^63 */
    int bits = 0;
    while (bits < 40 && (1 << bits) < V) bits++;
    const int S = bits <= 18 ? 44 : 62 - bits;
    const double scale = ldexp(1.0, S);
    sample_kernel<T><<<N, SAMPLE_THREADS, 0, stream>>>(out, (float *)scratch, (const T *)logits, req, V, scale);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_sample(cudaStream_t stream, egrc_gpu_dtype act, void *scratch, egrc_gpu_sample_result *out,
                            const void *logits, const egrc_gpu_sample_request *req, int N, int V) {
    if (N <= 0 || V <= 0) return cudaSuccess;
    return ACT_DISPATCH(act, sample_launch, stream, scratch, out, logits, req, N, V);
}
