/* Kernels of the per-token layers: conversions between fp32 and the
 * activation type, embeddings, LayerNorm/RMSNorm, bias handling, rotary
 * embeddings, activations and residual adds. Semantics are those of
 * backends/cpu/cpu_layers.c, which these are tested against.
 *
 * Determinism: nothing here uses floating-point atomics. Sums over rows
 * (weight and bias gradients) are split into a fixed number of row chunks
 * that depends only on the shape, each chunk summed in row order, then the
 * chunks summed in order; embedding gradients sort the rows by token first. */
#define EGRC_GPU_WANT_SORT /* the embedding gradient sorts rows by id */
#include "common.cuh"

/* ---------------- conversions ---------------- */

template <typename T>
__global__ void to_act_kernel(T *dst, const float *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        act_store(dst + i, src[i]);
}

template <typename T>
__global__ void to_f32_kernel(float *dst, const T *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = act_load(src + i);
}

cudaError_t egrc_gpu_to_act(cudaStream_t stream, egrc_gpu_dtype act, void *dst, const float *src, size_t n) {
    if (n == 0) return cudaSuccess;
    if (act == EGRC_GPU_F32) return cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, stream);
    to_act_kernel<egrc_bf16><<<grid_for(n, 256), 256, 0, stream>>>((egrc_bf16 *)dst, src, n);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_to_f32(cudaStream_t stream, egrc_gpu_dtype act, float *dst, const void *src, size_t n) {
    if (n == 0) return cudaSuccess;
    if (act == EGRC_GPU_F32) return cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, stream);
    to_f32_kernel<egrc_bf16><<<grid_for(n, 256), 256, 0, stream>>>(dst, (const egrc_bf16 *)src, n);
    return cudaGetLastError();
}

/* ---------------- embeddings ---------------- */

template <typename T>
__global__ void embedding_forward_kernel(T *out, const int32_t *tokens, const int32_t *positions, const T *wte,
                                         const T *wpe, int N, int C) {
    const size_t total = (size_t)N * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t n = i / C, c = i % C;
        float x = act_load(wte + (size_t)tokens[n] * C + c);
        if (wpe) x += act_load(wpe + (size_t)positions[n] * C + c);
        act_store(out + i, x);
    }
}

template <typename T>
static cudaError_t embedding_forward_launch(cudaStream_t stream, void *out, const int32_t *tokens,
                                            const int32_t *positions, const void *wte, const void *wpe, int N, int C) {
    const unsigned block = 256;
    embedding_forward_kernel<T><<<grid_for((size_t)N * C, block), block, 0, stream>>>(
        (T *)out, tokens, positions, (const T *)wte, (const T *)wpe, N, C);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_embedding_forward(cudaStream_t stream, egrc_gpu_dtype act, void *out, const int32_t *tokens,
                                       const int32_t *positions, const void *wte, const void *wpe, int N, int C) {
    return ACT_DISPATCH(act, embedding_forward_launch, stream, out, tokens, positions, wte, wpe, N, C);
}

/* The embedding gradient is a scatter-add where rows may share a token. To
 * stay deterministic without atomics, the rows are sorted by id (a stable
 * radix sort keeps equal ids in row order); then the first row of each run of
 * equal ids sums the whole run, in order, into that id's gradient row. */
static size_t align256(size_t bytes) { return (bytes + 255) / 256 * 256; }

static size_t sort_temp_bytes(int N) {
    size_t temp = 0;
    /* A failed size query leaves temp at 0; the sort itself then fails and says why. */
    (void)egrc_radix_sort_pairs(nullptr, temp, (const int32_t *)nullptr, (int32_t *)nullptr, (const int32_t *)nullptr,
                                (int32_t *)nullptr, N);
    return temp;
}

size_t egrc_gpu_embedding_backward_scratch(int N) {
    return 3 * align256((size_t)N * sizeof(int32_t)) + align256(sort_temp_bytes(N));
}

__global__ void iota_kernel(int32_t *out, int N) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < N; i += gridDim.x * blockDim.x) out[i] = i;
}

template <typename T>
__global__ void embedding_runs_kernel(float *dtable, const T *dout, const int32_t *ids, const int32_t *rows, int N,
                                      int C) {
    const int start = blockIdx.x;
    if (start > 0 && ids[start] == ids[start - 1]) return; /* not the first row of its run */
    const int32_t id = ids[start];
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float sum = 0.0f;
        for (int j = start; j < N && ids[j] == id; j++) sum += act_load(dout + (size_t)rows[j] * C + c);
        dtable[(size_t)id * C + c] += sum;
    }
}

template <typename T>
static cudaError_t embedding_runs_launch(cudaStream_t stream, float *dtable, const void *dout, const int32_t *ids,
                                         const int32_t *rows, int N, int C) {
    embedding_runs_kernel<T><<<N, 256, 0, stream>>>(dtable, (const T *)dout, ids, rows, N, C);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_embedding_backward(cudaStream_t stream, egrc_gpu_dtype act, void *scratch, float *dwte,
                                        float *dwpe, const void *dout, const int32_t *tokens,
                                        const int32_t *positions, int N, int C) {
    if (N <= 0 || C <= 0) return cudaSuccess; /* an empty grid is a launch error */
    const size_t ints = align256((size_t)N * sizeof(int32_t));
    int32_t *order = (int32_t *)scratch;
    int32_t *sorted_ids = (int32_t *)((char *)scratch + ints);
    int32_t *sorted_rows = (int32_t *)((char *)scratch + 2 * ints);
    void *temp = (char *)scratch + 3 * ints;
    size_t temp_bytes = sort_temp_bytes(N);
    iota_kernel<<<grid_for((size_t)N, 256), 256, 0, stream>>>(order, N);
    const int32_t *tables_ids[2] = {tokens, positions};
    float *tables[2] = {dwte, dwpe};
    for (int t = 0; t < 2; t++) {
        if (!tables[t]) continue;
        cudaError_t err =
            egrc_radix_sort_pairs(temp, temp_bytes, tables_ids[t], sorted_ids, order, sorted_rows, N, 0, 32, stream);
        if (err == cudaSuccess) err = ACT_DISPATCH(act, embedding_runs_launch, stream, tables[t], dout, sorted_ids,
                                                   sorted_rows, N, C);
        if (err != cudaSuccess) return err;
    }
    return cudaGetLastError();
}

/* ---------------- norms ---------------- */

/* One warp per row. Row statistics accumulate in double, as on the CPU:
 * these feed every later op, and the cost is negligible next to the loads. */
#define NORM_ROWS_PER_BLOCK 8

template <typename T>
__global__ void layernorm_forward_kernel(T *out, float *mean, float *rstd, const T *inp, const T *w, const T *b, int N,
                                         int C, float eps) {
    const int n = blockIdx.x * NORM_ROWS_PER_BLOCK + threadIdx.x / WARP, lane = threadIdx.x % WARP;
    if (n >= N) return;
    const T *x = inp + (size_t)n * C;
    double sum = 0.0;
    for (int c = lane; c < C; c += WARP) sum += act_load(x + c);
    const float m = (float)(warp_sum(sum) / C);
    double var = 0.0;
    for (int c = lane; c < C; c += WARP) {
        const float d = act_load(x + c) - m;
        var += (double)d * d;
    }
    const float s = (float)(1.0 / sqrt(warp_sum(var) / C + eps));
    T *y = out + (size_t)n * C;
    for (int c = lane; c < C; c += WARP)
        act_store(y + c, (act_load(x + c) - m) * s * act_load(w + c) + (b ? act_load(b + c) : 0.0f));
    if (lane == 0) {
        mean[n] = m;
        rstd[n] = s;
    }
}

template <typename T>
__global__ void rmsnorm_forward_kernel(T *out, float *rstd, const T *inp, const T *w, int N, int C, float eps) {
    const int n = blockIdx.x * NORM_ROWS_PER_BLOCK + threadIdx.x / WARP, lane = threadIdx.x % WARP;
    if (n >= N) return;
    const T *x = inp + (size_t)n * C;
    double sum_sq = 0.0;
    for (int c = lane; c < C; c += WARP) {
        const double v = act_load(x + c);
        sum_sq += v * v;
    }
    const float s = (float)(1.0 / sqrt(warp_sum(sum_sq) / C + eps));
    T *y = out + (size_t)n * C;
    for (int c = lane; c < C; c += WARP) act_store(y + c, act_load(w + c) * (act_load(x + c) * s));
    if (lane == 0) rstd[n] = s;
}

template <typename T>
static cudaError_t layernorm_forward_launch(cudaStream_t stream, void *out, float *mean, float *rstd,
                                            const void *inp, const void *w, const void *b, int N, int C, float eps) {
    layernorm_forward_kernel<T><<<ceil_div(N, NORM_ROWS_PER_BLOCK), NORM_ROWS_PER_BLOCK * WARP, 0, stream>>>(
        (T *)out, mean, rstd, (const T *)inp, (const T *)w, (const T *)b, N, C, eps);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_layernorm_forward(cudaStream_t stream, egrc_gpu_dtype act, void *out, float *mean, float *rstd,
                                       const void *inp, const void *w, const void *b, int N, int C, float eps) {
    if (N <= 0) return cudaSuccess;
    return ACT_DISPATCH(act, layernorm_forward_launch, stream, out, mean, rstd, inp, w, b, N, C, eps);
}

template <typename T>
static cudaError_t rmsnorm_forward_launch(cudaStream_t stream, void *out, float *rstd, const void *inp, const void *w,
                                          int N, int C, float eps) {
    rmsnorm_forward_kernel<T><<<ceil_div(N, NORM_ROWS_PER_BLOCK), NORM_ROWS_PER_BLOCK * WARP, 0, stream>>>(
        (T *)out, rstd, (const T *)inp, (const T *)w, N, C, eps);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_rmsnorm_forward(cudaStream_t stream, egrc_gpu_dtype act, void *out, float *rstd, const void *inp,
                                     const void *w, int N, int C, float eps) {
    if (N <= 0) return cudaSuccess;
    return ACT_DISPATCH(act, rmsnorm_forward_launch, stream, out, rstd, inp, w, N, C, eps);
}

/* dinp += the norm's input gradient; one warp per row. mean == NULL: RMSNorm. */
template <typename T>
__global__ void norm_backward_rows_kernel(T *dinp, const T *dout, const T *inp, const T *w, const float *mean,
                                          const float *rstd, int N, int C) {
    const int n = blockIdx.x * NORM_ROWS_PER_BLOCK + threadIdx.x / WARP, lane = threadIdx.x % WARP;
    if (n >= N) return;
    const T *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
    T *dx = dinp + (size_t)n * C;
    const float m = mean ? mean[n] : 0.0f, s = rstd[n];
    double sum_dnorm = 0.0, sum_dnorm_norm = 0.0;
    for (int c = lane; c < C; c += WARP) {
        const float norm = (act_load(x + c) - m) * s, dnorm = act_load(g + c) * act_load(w + c);
        sum_dnorm += dnorm;
        sum_dnorm_norm += (double)dnorm * norm;
    }
    const float mean_dnorm = mean ? (float)(warp_sum(sum_dnorm) / C) : 0.0f;
    const float mean_dnorm_norm = (float)(warp_sum(sum_dnorm_norm) / C);
    for (int c = lane; c < C; c += WARP) {
        const float norm = (act_load(x + c) - m) * s;
        const float dnorm = act_load(g + c) * act_load(w + c);
        act_store(dx + c, act_load(dx + c) + (dnorm - mean_dnorm - norm * mean_dnorm_norm) * s);
    }
}

/* Column sums over rows in chunks: chunk p covers rows [p*rows, (p+1)*rows).
 * The chunk count depends only on N, so results do not depend on the GPU. */
#define COLUMN_THREADS 256
#define COLUMN_MAX_CHUNKS 256

static int column_chunk_rows(int N) {
    int rows = ceil_div(N, COLUMN_MAX_CHUNKS);
    return rows < 32 ? 32 : rows;
}

size_t egrc_gpu_column_sums_scratch(int N, int C) {
    return 2 * (size_t)ceil_div(N, column_chunk_rows(N)) * (size_t)C * sizeof(float);
}

/* What is summed per column: dw += g*(x-mean)*rstd and db += g (LayerNorm),
 * dw += g*x*rstd (RMSNorm), db += g (bias). */
enum column_mode { COLUMN_LAYERNORM, COLUMN_RMSNORM, COLUMN_BIAS };

template <int MODE, typename T>
__global__ void column_partials_kernel(float *partial_w, float *partial_b, const T *dout, const T *inp,
                                       const float *mean, const float *rstd, int N, int C, int chunk_rows) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const int n0 = blockIdx.y * chunk_rows, n1 = min(N, n0 + chunk_rows);
    float sum_w = 0.0f, sum_b = 0.0f;
    for (int n = n0; n < n1; n++) {
        const size_t i = (size_t)n * C + c;
        const float g = act_load(dout + i);
        if (MODE == COLUMN_LAYERNORM) sum_w += g * (act_load(inp + i) - mean[n]) * rstd[n];
        if (MODE == COLUMN_RMSNORM) sum_w += g * act_load(inp + i) * rstd[n];
        if (MODE != COLUMN_RMSNORM) sum_b += g;
    }
    if (MODE != COLUMN_BIAS) partial_w[(size_t)blockIdx.y * C + c] = sum_w;
    if (MODE != COLUMN_RMSNORM) partial_b[(size_t)blockIdx.y * C + c] = sum_b;
}

__global__ void column_finish_kernel(float *dw, float *db, const float *partial_w, const float *partial_b, int chunks,
                                     int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    if (dw) {
        float sum = 0.0f;
        for (int p = 0; p < chunks; p++) sum += partial_w[(size_t)p * C + c];
        dw[c] += sum;
    }
    if (db) {
        float sum = 0.0f;
        for (int p = 0; p < chunks; p++) sum += partial_b[(size_t)p * C + c];
        db[c] += sum;
    }
}

template <int MODE, typename T>
static void column_sums(cudaStream_t stream, void *scratch, float *dw, float *db, const T *dout, const T *inp,
                        const float *mean, const float *rstd, int N, int C) {
    const int chunk_rows = column_chunk_rows(N), chunks = ceil_div(N, chunk_rows);
    float *partial_w = (float *)scratch, *partial_b = partial_w + (size_t)chunks * C;
    const dim3 grid(ceil_div(C, COLUMN_THREADS), chunks);
    column_partials_kernel<MODE, T>
        <<<grid, COLUMN_THREADS, 0, stream>>>(partial_w, partial_b, dout, inp, mean, rstd, N, C, chunk_rows);
    column_finish_kernel<<<ceil_div(C, COLUMN_THREADS), COLUMN_THREADS, 0, stream>>>(dw, db, partial_w, partial_b,
                                                                                     chunks, C);
}

template <typename T>
static cudaError_t norm_backward_launch(cudaStream_t stream, void *scratch, void *dinp, float *dw, float *db,
                                        const void *dout, const void *inp, const void *w, const float *mean,
                                        const float *rstd, int N, int C) {
    norm_backward_rows_kernel<T><<<ceil_div(N, NORM_ROWS_PER_BLOCK), NORM_ROWS_PER_BLOCK * WARP, 0, stream>>>(
        (T *)dinp, (const T *)dout, (const T *)inp, (const T *)w, mean, rstd, N, C);
    if (mean)
        column_sums<COLUMN_LAYERNORM, T>(stream, scratch, dw, db, (const T *)dout, (const T *)inp, mean, rstd, N, C);
    else
        column_sums<COLUMN_RMSNORM, T>(stream, scratch, dw, NULL, (const T *)dout, (const T *)inp, NULL, rstd, N, C);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_norm_backward(cudaStream_t stream, egrc_gpu_dtype act, void *scratch, void *dinp, float *dw,
                                   float *db, const void *dout, const void *inp, const void *w, const float *mean,
                                   const float *rstd, int N, int C) {
    if (N <= 0 || C <= 0) return cudaSuccess; /* an empty grid is a launch error */
    return ACT_DISPATCH(act, norm_backward_launch, stream, scratch, dinp, dw, db, dout, inp, w, mean, rstd, N, C);
}

template <typename T>
static cudaError_t bias_backward_launch(cudaStream_t stream, void *scratch, float *dbias, const void *dout, int N,
                                        int OC) {
    column_sums<COLUMN_BIAS, T>(stream, scratch, NULL, dbias, (const T *)dout, NULL, NULL, NULL, N, OC);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_bias_backward(cudaStream_t stream, egrc_gpu_dtype act, void *scratch, float *dbias,
                                   const void *dout, int N, int OC) {
    if (N <= 0 || OC <= 0) return cudaSuccess;
    return ACT_DISPATCH(act, bias_backward_launch, stream, scratch, dbias, dout, N, OC);
}

template <typename T>
__global__ void bias_add_kernel(T *out, const T *bias, int N, int OC) {
    const size_t total = (size_t)N * OC;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        act_store(out + i, act_load(out + i) + act_load(bias + i % OC));
}

template <typename T>
static cudaError_t bias_add_launch(cudaStream_t stream, void *out, const void *bias, int N, int OC) {
    bias_add_kernel<T><<<grid_for((size_t)N * OC, 256), 256, 0, stream>>>((T *)out, (const T *)bias, N, OC);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_bias_add(cudaStream_t stream, egrc_gpu_dtype act, void *out, const void *bias, int N, int OC) {
    return ACT_DISPATCH(act, bias_add_launch, stream, out, bias, N, OC);
}

/* ---------------- rotary embeddings ---------------- */

/* One block per row: the row's cos/sin table is built once in shared memory
 * (D/2 <= 512, checked at model load), then every q and k head rotates. */
template <typename T>
__global__ void rope_kernel(T *qkv, const int32_t *positions, const float *inv_freq, int H, int KV, int D, float sign) {
    __shared__ float cos_table[512], sin_table[512];
    const int n = blockIdx.x, half = D / 2;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float s, c;
        sincosf((float)positions[n] * inv_freq[i], &s, &c);
        cos_table[i] = c;
        sin_table[i] = sign * s;
    }
    __syncthreads();
    T *row = qkv + (size_t)n * (H + 2 * KV) * D;
    for (int j = threadIdx.x; j < (H + KV) * half; j += blockDim.x) {
        const int h = j / half, i = j % half; /* q heads then k heads; v is left alone */
        T *x = row + (size_t)h * D;
        const float a = act_load(x + i), b = act_load(x + i + half);
        act_store(x + i, a * cos_table[i] - b * sin_table[i]);
        act_store(x + i + half, b * cos_table[i] + a * sin_table[i]);
    }
}

template <typename T>
static cudaError_t rope_launch(cudaStream_t stream, void *qkv, const int32_t *positions, const float *inv_freq, int N,
                               int H, int KV, int D, float sign) {
    rope_kernel<T><<<N, 128, 0, stream>>>((T *)qkv, positions, inv_freq, H, KV, D, sign);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_rope(cudaStream_t stream, egrc_gpu_dtype act, void *qkv, const int32_t *positions,
                          const float *inv_freq, int N, int H, int KV, int D, float sign) {
    if (N <= 0) return cudaSuccess;
    return ACT_DISPATCH(act, rope_launch, stream, qkv, positions, inv_freq, N, H, KV, D, sign);
}

/* ---------------- activations and residuals ---------------- */

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */

template <typename T>
__global__ void gelu_forward_kernel(T *out, const T *inp, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float x = act_load(inp + i);
        act_store(out + i, 0.5f * x * (1.0f + tanhf(GELU_SCALE * (x + 0.044715f * x * x * x))));
    }
}

template <typename T>
__global__ void gelu_backward_kernel(T *dinp, const T *inp, const T *dout, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float x = act_load(inp + i);
        const float t = tanhf(GELU_SCALE * (x + 0.044715f * x * x * x));
        const float sech2 = 1.0f - t * t;
        const float local = 0.5f * (1.0f + t) + 0.5f * x * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        act_store(dinp + i, local * act_load(dout + i));
    }
}

template <typename T>
static cudaError_t gelu_forward_launch(cudaStream_t stream, void *out, const void *inp, size_t n) {
    gelu_forward_kernel<T><<<grid_for(n, 256), 256, 0, stream>>>((T *)out, (const T *)inp, n);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_gelu_forward(cudaStream_t stream, egrc_gpu_dtype act, void *out, const void *inp, size_t n) {
    return ACT_DISPATCH(act, gelu_forward_launch, stream, out, inp, n);
}

template <typename T>
static cudaError_t gelu_backward_launch(cudaStream_t stream, void *dinp, const void *inp, const void *dout, size_t n) {
    gelu_backward_kernel<T><<<grid_for(n, 256), 256, 0, stream>>>((T *)dinp, (const T *)inp, (const T *)dout, n);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_gelu_backward(cudaStream_t stream, egrc_gpu_dtype act, void *dinp, const void *inp,
                                   const void *dout, size_t n) {
    return ACT_DISPATCH(act, gelu_backward_launch, stream, dinp, inp, dout, n);
}

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

template <typename T>
__global__ void swiglu_forward_kernel(T *out, const T *gate_up, int N, int hidden) {
    const size_t total = (size_t)N * hidden;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t n = i / hidden, j = i % hidden;
        const T *gate = gate_up + n * 2 * hidden;
        const float g = act_load(gate + j);
        act_store(out + i, g * sigmoid(g) * act_load(gate + hidden + j));
    }
}

template <typename T>
__global__ void swiglu_backward_kernel(T *dgate_up, const T *dout, const T *gate_up, int N, int hidden) {
    const size_t total = (size_t)N * hidden;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t n = i / hidden, j = i % hidden;
        const T *gate = gate_up + n * 2 * hidden;
        T *dgate = dgate_up + n * 2 * hidden;
        const float g = act_load(gate + j), up = act_load(gate + hidden + j), d = act_load(dout + i);
        const float sig = sigmoid(g);
        act_store(dgate + hidden + j, d * (g * sig));
        act_store(dgate + j, d * up * sig * (1.0f + g * (1.0f - sig)));
    }
}

template <typename T>
static cudaError_t swiglu_forward_launch(cudaStream_t stream, void *out, const void *gate_up, int N, int hidden) {
    swiglu_forward_kernel<T>
        <<<grid_for((size_t)N * hidden, 256), 256, 0, stream>>>((T *)out, (const T *)gate_up, N, hidden);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_swiglu_forward(cudaStream_t stream, egrc_gpu_dtype act, void *out, const void *gate_up, int N,
                                    int hidden) {
    return ACT_DISPATCH(act, swiglu_forward_launch, stream, out, gate_up, N, hidden);
}

template <typename T>
static cudaError_t swiglu_backward_launch(cudaStream_t stream, void *dgate_up, const void *dout, const void *gate_up,
                                          int N, int hidden) {
    swiglu_backward_kernel<T><<<grid_for((size_t)N * hidden, 256), 256, 0, stream>>>(
        (T *)dgate_up, (const T *)dout, (const T *)gate_up, N, hidden);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_swiglu_backward(cudaStream_t stream, egrc_gpu_dtype act, void *dgate_up, const void *dout,
                                     const void *gate_up, int N, int hidden) {
    return ACT_DISPATCH(act, swiglu_backward_launch, stream, dgate_up, dout, gate_up, N, hidden);
}

template <typename T>
__global__ void add_kernel(T *dst, const T *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        act_store(dst + i, act_load(dst + i) + act_load(src + i));
}

template <typename T>
static cudaError_t add_launch(cudaStream_t stream, void *dst, const void *src, size_t n) {
    add_kernel<T><<<grid_for(n, 256), 256, 0, stream>>>((T *)dst, (const T *)src, n);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_add(cudaStream_t stream, egrc_gpu_dtype act, void *dst, const void *src, size_t n) {
    return ACT_DISPATCH(act, add_launch, stream, dst, src, n);
}
