/* Causal self-attention with grouped-query heads (training and prefill), its
 * backward, and single-position attention over a KV cache (decoding).
 *
 * A flash-style design in fp32 on the SIMT cores (bf16 training attention on
 * sm_80+ runs on tensor cores instead: attention_tc.cu, dispatched below): the
 * forward streams key/value tiles through shared memory with an online
 * softmax and keeps only one log-sum-exp per row; the backward recomputes the
 * probabilities from it. Lane j of a warp owns key j of a tile of WARP keys
 * when scores are computed, and dimensions d = lane + c*WARP when values are
 * accumulated, so a row's running output lives in DC = ceil(D/WARP)
 * registers per lane (DC <= 8: head sizes up to 8*WARP). Each warp carries
 * ATT_ROWS rows at once so every key element read from shared memory serves
 * several rows. A block has up to ATT_MAX_WARPS warps, fewer where the
 * device's shared memory per block cannot hold their rows (wide heads in
 * the 64 KiB of an AMD block); a head too wide for even one warp's block is
 * refused by the glue (egrc_gpu_attention_max_head_dim).
 *
 * Storage: the kernels are templated on the activation type E (fp32 or
 * bf16; T is a sequence length here). Elements are widened to fp32 as they
 * are staged in shared memory or registers, and outputs are rounded to E
 * once, when stored; log-sum-exps and deltas are fp32.
 *
 * Backward (as FlashAttention-2): delta = rowsum(dO * O) first, then dQ in
 * query-row blocks and dK/dV in key-row blocks. Each output element is
 * written by exactly one thread after a fixed-order loop: deterministic, no
 * atomics, and the GQA sum over a group's query heads happens in registers. */
#include "common.cuh"

#define ATT_ROWS 4 /* rows per warp */
#define ATT_MAX_WARPS 8
#define ATT_TILE WARP /* keys (forward, dQ) or queries (dK/dV) per tile */

static int head_registers(int D) {
    const int dc = ceil_div(D, WARP);
    return dc <= 1 ? 1 : dc <= 2 ? 2 : dc <= 4 ? 4 : 8;
}

/* Dynamic shared memory of a block of `warps` warps, per kernel: the block's
 * own rows (ATT_ROWS per warp) plus the tiles it streams through. */
enum att_kernel { ATT_FORWARD, ATT_DQ, ATT_DKV };

static size_t att_shared_bytes(enum att_kernel kernel, int warps, int D) {
    const size_t rows = (size_t)warps * ATT_ROWS, tile = ATT_TILE;
    switch (kernel) {
    case ATT_FORWARD: return (rows * D + tile * (D + 1) + tile * D) * sizeof(float);   /* Qs, Ks, Vs */
    case ATT_DQ: return (2 * rows * D + 2 * tile * (D + 1)) * sizeof(float);           /* Qs, dOs, Ks, Vs */
    default: return (2 * rows * D + 2 * tile * (D + 1) + 2 * tile) * sizeof(float);    /* Ks, Vs, Qs, dOs, Ls, Ds */
    }
}

/* The most warps, up to `warps`, whose block fits the device's shared memory
 * per block (`shared_limit`): all 8 on NVIDIA GPUs, fewer for wide heads in
 * the 64 KiB of an AMD block. 0: none fits (the glue checks the head size
 * against egrc_gpu_attention_max_head_dim first). */
static int fit_warps(enum att_kernel kernel, int warps, int D, size_t shared_limit) {
    while (warps > 0 && att_shared_bytes(kernel, warps, D) > shared_limit) warps /= 2;
    return warps;
}

int egrc_gpu_attention_max_head_dim(size_t shared_limit) {
    int D = EGRC_GPU_MAX_HEAD_DIM;
    while (D > 0 && (fit_warps(ATT_FORWARD, 1, D, shared_limit) == 0 || fit_warps(ATT_DQ, 1, D, shared_limit) == 0 ||
                     fit_warps(ATT_DKV, 1, D, shared_limit) == 0))
        D--;
    return D;
}

/* ---------------- forward and decode ---------------- */

/* The query rows of one block and the keys they attend to. Row r reads q at
 * q + r*q_stride, may see keys [0, limit0 + r*limit_step] (and < keys), and
 * writes out + r*out_stride and, when lse is given, lse[r]. */
template <typename E>
struct row_block {
    const E *q, *k, *v;
    E *out;
    float *lse;
    size_t q_stride, out_stride, kv_stride;
    int rows, keys, limit0, limit_step;
};

template <int DC, typename E>
__device__ void attend_rows(const row_block<E> &a, int D, float scale) {
    extern __shared__ float smem[];
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    const int block_rows = (blockDim.x / WARP) * ATT_ROWS;
    float *Qs = smem;                    /* [block_rows][D], read as broadcasts */
    float *Ks = Qs + block_rows * D;     /* [ATT_TILE][D+1], lane j reads row j: padded against bank conflicts */
    float *Vs = Ks + ATT_TILE * (D + 1); /* [ATT_TILE][D], lanes read along a row */
    for (int i = threadIdx.x; i < block_rows * D; i += blockDim.x) {
        const int r = i / D, d = i % D;
        Qs[i] = r < a.rows ? act_load(a.q + r * a.q_stride + d) : 0.0f;
    }
    float m[ATT_ROWS], l[ATT_ROWS], acc[ATT_ROWS][DC];
    for (int r = 0; r < ATT_ROWS; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
        for (int c = 0; c < DC; c++) acc[r][c] = 0.0f;
    }
    const int last_key = min(a.keys - 1, a.limit0 + (a.rows - 1) * a.limit_step);
    for (int k0 = 0; k0 <= last_key; k0 += ATT_TILE) {
        __syncthreads(); /* Qs is written, and the previous tile is consumed */
        for (int i = threadIdx.x; i < ATT_TILE * D; i += blockDim.x) {
            const int j = i / D, d = i % D, key = k0 + j;
            const bool ok = key < a.keys;
            Ks[j * (D + 1) + d] = ok ? act_load(a.k + key * a.kv_stride + d) : 0.0f;
            Vs[j * D + d] = ok ? act_load(a.v + key * a.kv_stride + d) : 0.0f;
        }
        __syncthreads();
        float s[ATT_ROWS];
        for (int r = 0; r < ATT_ROWS; r++) s[r] = 0.0f;
        for (int d = 0; d < D; d++) {
            const float kd = Ks[lane * (D + 1) + d];
            for (int r = 0; r < ATT_ROWS; r++) s[r] += Qs[(warp * ATT_ROWS + r) * D + d] * kd;
        }
        float p[ATT_ROWS];
        for (int r = 0; r < ATT_ROWS; r++) {
            const int row = warp * ATT_ROWS + r, key = k0 + lane;
            const bool ok = row < a.rows && key < a.keys && key <= a.limit0 + row * a.limit_step;
            const float score = ok ? s[r] * scale : -INFINITY;
            const float tile_max = warp_max(score); /* the same in every lane */
            p[r] = 0.0f;
            if (tile_max == -INFINITY) continue; /* nothing visible to this row in this tile */
            const float m_new = fmaxf(m[r], tile_max);
            const float rescale = expf(m[r] - m_new); /* 0 on the row's first tile */
            p[r] = ok ? expf(score - m_new) : 0.0f;
            l[r] = l[r] * rescale + warp_sum(p[r]);
            for (int c = 0; c < DC; c++) acc[r][c] *= rescale;
            m[r] = m_new;
        }
        const int tile_keys = min(ATT_TILE, last_key + 1 - k0);
        for (int j = 0; j < tile_keys; j++) {
            float v[DC];
            for (int c = 0; c < DC; c++) {
                const int d = lane + c * WARP;
                v[c] = d < D ? Vs[j * D + d] : 0.0f;
            }
            for (int r = 0; r < ATT_ROWS; r++) {
                const float pj = egrc_shfl(p[r], j);
                for (int c = 0; c < DC; c++) acc[r][c] += pj * v[c];
            }
        }
    }
    for (int r = 0; r < ATT_ROWS; r++) {
        const int row = warp * ATT_ROWS + r;
        if (row >= a.rows) break;
        const float inv = 1.0f / l[r];
        for (int c = 0; c < DC; c++) {
            const int d = lane + c * WARP;
            if (d < D) act_store(a.out + row * a.out_stride + d, acc[r][c] * inv);
        }
        if (a.lse && lane == 0) a.lse[row] = m[r] + logf(l[r]);
    }
}

/* grid (query blocks, H, B): a block's rows are positions t0.. of head h. */
template <int DC, typename E>
__global__ void attention_forward_kernel(E *out, float *lse, const E *qkv, int T, int H, int KV, int D) {
    const int block_rows = (blockDim.x / WARP) * ATT_ROWS;
    const int t0 = (gridDim.x - 1 - blockIdx.x) * block_rows; /* the longest rows start first */
    const int h = blockIdx.y, b = blockIdx.z, kv_head = h / (H / KV);
    const size_t row = (size_t)(H + 2 * KV) * D;
    const E *seq = qkv + (size_t)b * T * row;
    row_block<E> a;
    a.q = seq + t0 * row + (size_t)h * D;
    a.k = seq + (size_t)(H + kv_head) * D;
    a.v = seq + (size_t)(H + KV + kv_head) * D;
    a.out = out + ((size_t)b * T + t0) * H * D + (size_t)h * D;
    a.lse = lse + ((size_t)b * H + h) * T + t0;
    a.q_stride = row;
    a.out_stride = (size_t)H * D;
    a.kv_stride = row;
    a.rows = min(block_rows, T - t0);
    a.keys = T;
    a.limit0 = t0;
    a.limit_step = 1;
    attend_rows<DC, E>(a, D, 1.0f / sqrtf((float)D));
}

/* grid (N, KV, head blocks): a block's rows are query heads of one kv group. */
template <int DC, typename E>
__global__ void attention_decode_kernel(E *out, const E *qkv, const E *k_cache, const E *v_cache,
                                        const int32_t *slots, const int32_t *lens, int H, int KV, int D, int cap) {
    const int block_rows = (blockDim.x / WARP) * ATT_ROWS;
    const int i = blockIdx.x, kv_head = blockIdx.y, group = H / KV;
    const int h0 = kv_head * group + blockIdx.z * block_rows;
    const size_t width = (size_t)KV * D;
    const size_t base = ((size_t)slots[i] * cap) * width + (size_t)kv_head * D;
    row_block<E> a;
    a.q = qkv + (size_t)i * (H + 2 * KV) * D + (size_t)h0 * D;
    a.k = k_cache + base;
    a.v = v_cache + base;
    a.out = out + (size_t)i * H * D + (size_t)h0 * D;
    a.lse = NULL;
    a.q_stride = D;
    a.out_stride = D;
    a.kv_stride = width;
    a.rows = min(block_rows, group - (int)blockIdx.z * block_rows);
    a.keys = lens[i];
    a.limit0 = lens[i] - 1;
    a.limit_step = 0;
    attend_rows<DC, E>(a, D, 1.0f / sqrtf((float)D));
}

size_t egrc_gpu_attention_lse_bytes(int B, int T, int H) { return (size_t)B * H * T * sizeof(float); }

template <int DC, typename E>
static cudaError_t forward_launch(cudaStream_t stream, size_t shared_limit, E *out, float *lse, const E *qkv, int B,
                                  int T, int H, int KV, int D) {
    const int warps = fit_warps(ATT_FORWARD, ATT_MAX_WARPS, D, shared_limit), block_rows = warps * ATT_ROWS;
    if (warps == 0) return cudaErrorInvalidValue;
    const size_t shared = att_shared_bytes(ATT_FORWARD, warps, D);
    cudaError_t err = egrc_allow_dynamic_shared(attention_forward_kernel<DC, E>, shared);
    if (err != cudaSuccess) return err;
    const dim3 grid(ceil_div(T, block_rows), H, B);
    attention_forward_kernel<DC, E><<<grid, warps * WARP, shared, stream>>>(out, lse, qkv, T, H, KV, D);
    return cudaGetLastError();
}

template <typename E>
static cudaError_t forward_dispatch(cudaStream_t stream, size_t shared_limit, void *out, float *lse, const void *qkv,
                                    int B, int T, int H, int KV, int D) {
    E *o = (E *)out;
    const E *x = (const E *)qkv;
    switch (head_registers(D)) {
    case 1: return forward_launch<1, E>(stream, shared_limit, o, lse, x, B, T, H, KV, D);
    case 2: return forward_launch<2, E>(stream, shared_limit, o, lse, x, B, T, H, KV, D);
    case 4: return forward_launch<4, E>(stream, shared_limit, o, lse, x, B, T, H, KV, D);
    default: return forward_launch<8, E>(stream, shared_limit, o, lse, x, B, T, H, KV, D);
    }
}

cudaError_t egrc_gpu_attention_forward(cudaStream_t stream, egrc_gpu_dtype act, size_t shared_limit, void *out,
                                       float *lse, const void *qkv, int B, int T, int H, int KV, int D) {
    if (B <= 0 || T <= 0) return cudaSuccess; /* an empty grid is a launch error */
    if (egrc_gpu_attention_tc_applies(act, shared_limit, D, (uintptr_t)out | (uintptr_t)qkv))
        return egrc_gpu_attention_tc_forward(stream, out, lse, qkv, B, T, H, KV, D); /* tensor cores */
    return ACT_DISPATCH(act, forward_dispatch, stream, shared_limit, out, lse, qkv, B, T, H, KV, D);
}

template <int DC, typename E>
static cudaError_t decode_launch(cudaStream_t stream, size_t shared_limit, E *out, const E *qkv, const E *k_cache,
                                 const E *v_cache, const int32_t *slots, const int32_t *lens, int N, int H, int KV,
                                 int D, int cap) {
    /* Only as many warps as the group has query heads (GQA groups are small). */
    const int group = H / KV;
    const int warps = fit_warps(ATT_FORWARD, min(ATT_MAX_WARPS, ceil_div(group, ATT_ROWS)), D, shared_limit);
    if (warps == 0) return cudaErrorInvalidValue;
    const int block_rows = warps * ATT_ROWS;
    const size_t shared = att_shared_bytes(ATT_FORWARD, warps, D);
    cudaError_t err = egrc_allow_dynamic_shared(attention_decode_kernel<DC, E>, shared);
    if (err != cudaSuccess) return err;
    const dim3 grid(N, KV, ceil_div(group, block_rows));
    attention_decode_kernel<DC, E>
        <<<grid, warps * WARP, shared, stream>>>(out, qkv, k_cache, v_cache, slots, lens, H, KV, D, cap);
    return cudaGetLastError();
}

template <typename E>
static cudaError_t decode_dispatch(cudaStream_t stream, size_t shared_limit, void *out, const void *qkv,
                                   const void *k_cache, const void *v_cache, const int32_t *slots,
                                   const int32_t *lens, int N, int H, int KV, int D, int cap) {
    E *o = (E *)out;
    const E *x = (const E *)qkv, *k = (const E *)k_cache, *v = (const E *)v_cache;
    switch (head_registers(D)) {
    case 1: return decode_launch<1, E>(stream, shared_limit, o, x, k, v, slots, lens, N, H, KV, D, cap);
    case 2: return decode_launch<2, E>(stream, shared_limit, o, x, k, v, slots, lens, N, H, KV, D, cap);
    case 4: return decode_launch<4, E>(stream, shared_limit, o, x, k, v, slots, lens, N, H, KV, D, cap);
    default: return decode_launch<8, E>(stream, shared_limit, o, x, k, v, slots, lens, N, H, KV, D, cap);
    }
}

cudaError_t egrc_gpu_attention_decode(cudaStream_t stream, egrc_gpu_dtype act, size_t shared_limit, void *out,
                                      const void *qkv, const void *k_cache, const void *v_cache,
                                      const int32_t *slots, const int32_t *lens, int N, int H, int KV, int D,
                                      int cap) {
    if (N <= 0) return cudaSuccess;
    return ACT_DISPATCH(act, decode_dispatch, stream, shared_limit, out, qkv, k_cache, v_cache, slots, lens, N, H, KV,
                        D, cap);
}

template <typename E>
__global__ void kv_cache_write_kernel(E *k_cache, E *v_cache, const E *qkv, const int32_t *slots,
                                      const int32_t *positions, int N, int H, int KV, int D, int cap) {
    const size_t width = (size_t)KV * D, row = (size_t)(H + 2 * KV) * D, total = (size_t)N * width;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        const size_t i = idx / width, e = idx % width;
        if (positions[i] < 0) continue; /* padding */
        const E *src = qkv + i * row;
        const size_t dst = ((size_t)slots[i] * cap + (size_t)positions[i]) * width + e;
        k_cache[dst] = src[(size_t)H * D + e];
        v_cache[dst] = src[(size_t)(H + KV) * D + e];
    }
}

template <typename E>
static cudaError_t kv_cache_write_launch(cudaStream_t stream, void *k_cache, void *v_cache, const void *qkv,
                                         const int32_t *slots, const int32_t *positions, int N, int H, int KV, int D,
                                         int cap) {
    kv_cache_write_kernel<E><<<grid_for((size_t)N * KV * D, 256), 256, 0, stream>>>(
        (E *)k_cache, (E *)v_cache, (const E *)qkv, slots, positions, N, H, KV, D, cap);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_kv_cache_write(cudaStream_t stream, egrc_gpu_dtype act, void *k_cache, void *v_cache,
                                    const void *qkv, const int32_t *slots, const int32_t *positions, int N, int H,
                                    int KV, int D, int cap) {
    return ACT_DISPATCH(act, kv_cache_write_launch, stream, k_cache, v_cache, qkv, slots, positions, N, H, KV, D, cap);
}

/* ---------------- backward ---------------- */

/* delta[(b*H+h)*T + t] = dot(dout, out) over the head's D values; a warp per row. */
template <typename E>
__global__ void attention_delta_kernel(float *delta, const E *dout, const E *out, int B, int T, int H, int D) {
    const int warps = blockDim.x / WARP, lane = threadIdx.x % WARP;
    const size_t r = (size_t)blockIdx.x * warps + threadIdx.x / WARP; /* (b*T + t)*H + h */
    if (r >= (size_t)B * T * H) return;
    const size_t bt = r / H, h = r % H, b = bt / T, t = bt % T;
    const E *g = dout + r * D, *o = out + r * D;
    float sum = 0.0f;
    for (int d = lane; d < D; d += WARP) sum += act_load(g + d) * act_load(o + d);
    sum = warp_sum(sum);
    if (lane == 0) delta[(b * H + h) * T + t] = sum;
}

/* dQ: grid (query blocks, H, B), rows as in the forward; lane j owns key j of a tile. */
template <int DC, typename E>
__global__ void attention_dq_kernel(E *dqkv, const E *dout, const E *qkv, const float *lse, const float *delta, int T,
                                    int H, int KV, int D) {
    extern __shared__ float smem[];
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    const int block_rows = (blockDim.x / WARP) * ATT_ROWS;
    const int t0 = (gridDim.x - 1 - blockIdx.x) * block_rows;
    const int h = blockIdx.y, b = blockIdx.z, kv_head = h / (H / KV), rows = min(block_rows, T - t0);
    const size_t row = (size_t)(H + 2 * KV) * D, HD = (size_t)H * D;
    const E *seq = qkv + (size_t)b * T * row;
    const E *k = seq + (size_t)(H + kv_head) * D, *v = seq + (size_t)(H + KV + kv_head) * D;
    const float scale = 1.0f / sqrtf((float)D);
    float *Qs = smem;                     /* [block_rows][D] */
    float *dOs = Qs + block_rows * D;     /* [block_rows][D] */
    float *Ks = dOs + block_rows * D;     /* [ATT_TILE][D+1] */
    float *Vs = Ks + ATT_TILE * (D + 1);  /* [ATT_TILE][D+1] */
    for (int i = threadIdx.x; i < block_rows * D; i += blockDim.x) {
        const int r = i / D, d = i % D;
        const bool ok = r < rows;
        Qs[i] = ok ? act_load(seq + (size_t)(t0 + r) * row + (size_t)h * D + d) : 0.0f;
        dOs[i] = ok ? act_load(dout + ((size_t)b * T + t0 + r) * HD + (size_t)h * D + d) : 0.0f;
    }
    float row_lse[ATT_ROWS], row_delta[ATT_ROWS], acc[ATT_ROWS][DC];
    for (int r = 0; r < ATT_ROWS; r++) {
        const int t = t0 + warp * ATT_ROWS + r;
        const bool ok = warp * ATT_ROWS + r < rows;
        row_lse[r] = ok ? lse[((size_t)b * H + h) * T + t] : 0.0f;
        row_delta[r] = ok ? delta[((size_t)b * H + h) * T + t] : 0.0f;
        for (int c = 0; c < DC; c++) acc[r][c] = 0.0f;
    }
    const int last_key = t0 + rows - 1;
    for (int k0 = 0; k0 <= last_key; k0 += ATT_TILE) {
        __syncthreads();
        for (int i = threadIdx.x; i < ATT_TILE * D; i += blockDim.x) {
            const int j = i / D, d = i % D, key = k0 + j;
            const bool ok = key < T;
            Ks[j * (D + 1) + d] = ok ? act_load(k + key * row + d) : 0.0f;
            Vs[j * (D + 1) + d] = ok ? act_load(v + key * row + d) : 0.0f;
        }
        __syncthreads();
        float s[ATT_ROWS], dp[ATT_ROWS];
        for (int r = 0; r < ATT_ROWS; r++) s[r] = dp[r] = 0.0f;
        for (int d = 0; d < D; d++) {
            const float kd = Ks[lane * (D + 1) + d], vd = Vs[lane * (D + 1) + d];
            for (int r = 0; r < ATT_ROWS; r++) {
                s[r] += Qs[(warp * ATT_ROWS + r) * D + d] * kd;
                dp[r] += dOs[(warp * ATT_ROWS + r) * D + d] * vd;
            }
        }
        float ds[ATT_ROWS];
        for (int r = 0; r < ATT_ROWS; r++) {
            const int rr = warp * ATT_ROWS + r, key = k0 + lane;
            const bool ok = rr < rows && key <= t0 + rr;
            const float p = ok ? expf(s[r] * scale - row_lse[r]) : 0.0f;
            ds[r] = p * (dp[r] - row_delta[r]) * scale;
        }
        const int tile_keys = min(ATT_TILE, last_key + 1 - k0);
        for (int j = 0; j < tile_keys; j++) {
            float kj[DC];
            for (int c = 0; c < DC; c++) {
                const int d = lane + c * WARP;
                kj[c] = d < D ? Ks[j * (D + 1) + d] : 0.0f;
            }
            for (int r = 0; r < ATT_ROWS; r++) {
                const float dsj = egrc_shfl(ds[r], j);
                for (int c = 0; c < DC; c++) acc[r][c] += dsj * kj[c];
            }
        }
    }
    for (int r = 0; r < ATT_ROWS; r++) {
        const int rr = warp * ATT_ROWS + r;
        if (rr >= rows) break;
        E *dq = dqkv + ((size_t)b * T + t0 + rr) * row + (size_t)h * D;
        for (int c = 0; c < DC; c++) {
            const int d = lane + c * WARP;
            if (d < D) act_store(dq + d, acc[r][c]);
        }
    }
}

/* dK, dV: grid (key blocks, KV, B); warp rows are keys, lane j owns query j of
 * a tile. The loop runs over the group's query heads, then the query tiles
 * from the block's first key on (earlier queries cannot see these keys). */
template <int DC, typename E>
__global__ void attention_dkv_kernel(E *dqkv, const E *dout, const E *qkv, const float *lse, const float *delta,
                                     int T, int H, int KV, int D) {
    extern __shared__ float smem[];
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    const int block_keys = (blockDim.x / WARP) * ATT_ROWS;
    const int s0 = blockIdx.x * block_keys, kv_head = blockIdx.y, b = blockIdx.z, group = H / KV;
    const int keys = min(block_keys, T - s0);
    const size_t row = (size_t)(H + 2 * KV) * D, HD = (size_t)H * D;
    const E *seq = qkv + (size_t)b * T * row;
    const float scale = 1.0f / sqrtf((float)D);
    float *Ks = smem;                      /* [block_keys][D], read as broadcasts */
    float *Vs = Ks + block_keys * D;       /* [block_keys][D] */
    float *Qs = Vs + block_keys * D;       /* [ATT_TILE][D+1] */
    float *dOs = Qs + ATT_TILE * (D + 1);  /* [ATT_TILE][D+1] */
    float *Ls = dOs + ATT_TILE * (D + 1);  /* [ATT_TILE] log-sum-exps */
    float *Ds = Ls + ATT_TILE;             /* [ATT_TILE] deltas */
    for (int i = threadIdx.x; i < block_keys * D; i += blockDim.x) {
        const int r = i / D, d = i % D;
        const bool ok = r < keys;
        const E *key_row = seq + (size_t)(s0 + r) * row;
        Ks[i] = ok ? act_load(key_row + (size_t)(H + kv_head) * D + d) : 0.0f;
        Vs[i] = ok ? act_load(key_row + (size_t)(H + KV + kv_head) * D + d) : 0.0f;
    }
    float dk[ATT_ROWS][DC], dv[ATT_ROWS][DC];
    for (int r = 0; r < ATT_ROWS; r++)
        for (int c = 0; c < DC; c++) dk[r][c] = dv[r][c] = 0.0f;
    for (int h = kv_head * group; h < (kv_head + 1) * group; h++) {
        const float *head_lse = lse + ((size_t)b * H + h) * T, *head_delta = delta + ((size_t)b * H + h) * T;
        for (int q0 = s0; q0 < T; q0 += ATT_TILE) {
            __syncthreads(); /* Ks/Vs are written, and the previous tile is consumed */
            for (int i = threadIdx.x; i < ATT_TILE * D; i += blockDim.x) {
                const int j = i / D, d = i % D, t = q0 + j;
                const bool ok = t < T;
                Qs[j * (D + 1) + d] = ok ? act_load(seq + (size_t)t * row + (size_t)h * D + d) : 0.0f;
                dOs[j * (D + 1) + d] = ok ? act_load(dout + ((size_t)b * T + t) * HD + (size_t)h * D + d) : 0.0f;
            }
            for (int j = threadIdx.x; j < ATT_TILE; j += blockDim.x) {
                const bool ok = q0 + j < T;
                Ls[j] = ok ? head_lse[q0 + j] : 0.0f;
                Ds[j] = ok ? head_delta[q0 + j] : 0.0f;
            }
            __syncthreads();
            float s[ATT_ROWS], dp[ATT_ROWS];
            for (int r = 0; r < ATT_ROWS; r++) s[r] = dp[r] = 0.0f;
            for (int d = 0; d < D; d++) {
                const float qd = Qs[lane * (D + 1) + d], od = dOs[lane * (D + 1) + d];
                for (int r = 0; r < ATT_ROWS; r++) {
                    s[r] += qd * Ks[(warp * ATT_ROWS + r) * D + d];
                    dp[r] += od * Vs[(warp * ATT_ROWS + r) * D + d];
                }
            }
            float p[ATT_ROWS], ds[ATT_ROWS];
            const int t = q0 + lane;
            for (int r = 0; r < ATT_ROWS; r++) {
                const int kr = warp * ATT_ROWS + r;
                const bool ok = t < T && kr < keys && s0 + kr <= t;
                p[r] = ok ? expf(s[r] * scale - Ls[lane]) : 0.0f;
                ds[r] = p[r] * (dp[r] - Ds[lane]) * scale;
            }
            const int tile_queries = min(ATT_TILE, T - q0);
            for (int j = 0; j < tile_queries; j++) {
                float oj[DC], qj[DC];
                for (int c = 0; c < DC; c++) {
                    const int d = lane + c * WARP;
                    oj[c] = d < D ? dOs[j * (D + 1) + d] : 0.0f;
                    qj[c] = d < D ? Qs[j * (D + 1) + d] : 0.0f;
                }
                for (int r = 0; r < ATT_ROWS; r++) {
                    const float pj = egrc_shfl(p[r], j), dsj = egrc_shfl(ds[r], j);
                    for (int c = 0; c < DC; c++) {
                        dv[r][c] += pj * oj[c];
                        dk[r][c] += dsj * qj[c];
                    }
                }
            }
        }
    }
    for (int r = 0; r < ATT_ROWS; r++) {
        const int kr = warp * ATT_ROWS + r;
        if (kr >= keys) break;
        E *key_row = dqkv + ((size_t)b * T + s0 + kr) * row;
        for (int c = 0; c < DC; c++) {
            const int d = lane + c * WARP;
            if (d >= D) continue;
            act_store(key_row + (size_t)(H + kv_head) * D + d, dk[r][c]);
            act_store(key_row + (size_t)(H + KV + kv_head) * D + d, dv[r][c]);
        }
    }
}

size_t egrc_gpu_attention_backward_scratch(int B, int T, int H) { return (size_t)B * H * T * sizeof(float); }

template <int DC, typename E>
static cudaError_t backward_launch(cudaStream_t stream, size_t shared_limit, float *delta, E *dqkv, const E *dout,
                                   const E *qkv, const E *out, const float *lse, int B, int T, int H, int KV, int D) {
    const int warps_dq = fit_warps(ATT_DQ, ATT_MAX_WARPS, D, shared_limit);
    const int warps_dkv = fit_warps(ATT_DKV, ATT_MAX_WARPS, D, shared_limit);
    if (warps_dq == 0 || warps_dkv == 0) return cudaErrorInvalidValue;
    const int warps = ATT_MAX_WARPS;
    const size_t rows = (size_t)B * T * H;
    attention_delta_kernel<E><<<(unsigned)((rows + warps - 1) / warps), warps * WARP, 0, stream>>>(
        delta, dout, out, B, T, H, D);
    const size_t shared_dq = att_shared_bytes(ATT_DQ, warps_dq, D);
    const size_t shared_dkv = att_shared_bytes(ATT_DKV, warps_dkv, D);
    cudaError_t err = egrc_allow_dynamic_shared(attention_dq_kernel<DC, E>, shared_dq);
    if (err == cudaSuccess) err = egrc_allow_dynamic_shared(attention_dkv_kernel<DC, E>, shared_dkv);
    if (err != cudaSuccess) return err;
    const dim3 grid(ceil_div(T, warps_dq * ATT_ROWS), H, B), grid_kv(ceil_div(T, warps_dkv * ATT_ROWS), KV, B);
    attention_dq_kernel<DC, E>
        <<<grid, warps_dq * WARP, shared_dq, stream>>>(dqkv, dout, qkv, lse, delta, T, H, KV, D);
    attention_dkv_kernel<DC, E>
        <<<grid_kv, warps_dkv * WARP, shared_dkv, stream>>>(dqkv, dout, qkv, lse, delta, T, H, KV, D);
    return cudaGetLastError();
}

template <typename E>
static cudaError_t backward_dispatch(cudaStream_t stream, size_t shared_limit, void *scratch, void *dqkv,
                                     const void *dout, const void *qkv, const void *out, const float *lse, int B,
                                     int T, int H, int KV, int D) {
    float *delta = (float *)scratch;
    E *dx = (E *)dqkv;
    const E *g = (const E *)dout, *x = (const E *)qkv, *o = (const E *)out;
    switch (head_registers(D)) {
    case 1: return backward_launch<1, E>(stream, shared_limit, delta, dx, g, x, o, lse, B, T, H, KV, D);
    case 2: return backward_launch<2, E>(stream, shared_limit, delta, dx, g, x, o, lse, B, T, H, KV, D);
    case 4: return backward_launch<4, E>(stream, shared_limit, delta, dx, g, x, o, lse, B, T, H, KV, D);
    default: return backward_launch<8, E>(stream, shared_limit, delta, dx, g, x, o, lse, B, T, H, KV, D);
    }
}

cudaError_t egrc_gpu_attention_backward(cudaStream_t stream, egrc_gpu_dtype act, size_t shared_limit, void *scratch,
                                        void *dqkv, const void *dout, const void *qkv, const void *out,
                                        const float *lse, int B, int T, int H, int KV, int D) {
    if (B <= 0 || T <= 0) return cudaSuccess;
    if (egrc_gpu_attention_tc_applies(act, shared_limit, D,
                                      (uintptr_t)dqkv | (uintptr_t)dout | (uintptr_t)qkv | (uintptr_t)out))
        return egrc_gpu_attention_tc_backward(stream, scratch, dqkv, dout, qkv, out, lse, B, T, H, KV, D);
    return ACT_DISPATCH(act, backward_dispatch, stream, shared_limit, scratch, dqkv, dout, qkv, out, lse, B, T, H, KV,
                        D);
}
