/* Kernels of the loss (fused softmax cross-entropy with entropy) and of the
 * optimizer (sum of squares for the gradient norm, AdamW). Semantics are
 * those of backends/cpu/cpu_loss_optim.c. Every reduction is fp32 per
 * thread and double across threads, in a fixed tree: deterministic. */
#include "common.cuh"

/* One block per row; rows are long (the vocabulary), so a wide block. */
#define CE_THREADS 512

template <typename T>
__global__ void cross_entropy_forward_kernel(float *loss, float *lse, float *entropy, const T *logits,
                                             const int32_t *targets, int V) {
    __shared__ float shared_max[CE_THREADS / WARP];
    __shared__ double shared_sum[CE_THREADS / WARP];
    const int n = blockIdx.x;
    const T *x = logits + (size_t)n * V;
    float max_logit = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) max_logit = fmaxf(max_logit, act_load(x + v));
    max_logit = block_max(max_logit, shared_max);
    float thread_exp = 0.0f, thread_exp_x = 0.0f;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float xv = act_load(x + v), e = expf(xv - max_logit);
        thread_exp += e;
        thread_exp_x += e * xv;
    }
    const double sum_exp = block_sum((double)thread_exp, shared_sum);
    const double sum_exp_x = block_sum((double)thread_exp_x, shared_sum);
    if (threadIdx.x == 0) {
        const double row_lse = max_logit + log(sum_exp);
        const int target = targets[n];
        lse[n] = (float)row_lse;
        loss[n] = target >= 0 ? (float)(row_lse - act_load(x + target)) : 0.0f;
        if (entropy) entropy[n] = (float)(row_lse - sum_exp_x / sum_exp);
    }
}

/* dlogits may alias logits: each element is read and then written by the same thread. */
template <typename T>
__global__ void cross_entropy_backward_kernel(T *dlogits, const T *logits, const float *lse, const float *entropy,
                                              const float *dloss, const float *dentropy, const int32_t *targets,
                                              int V) {
    const int n = blockIdx.x, target = targets[n];
    const T *x = logits + (size_t)n * V;
    T *dx = dlogits + (size_t)n * V;
    const float g = target >= 0 ? dloss[n] : 0.0f, row_lse = lse[n];
    const float dh = dentropy ? dentropy[n] : 0.0f, h = dh != 0.0f ? entropy[n] : 0.0f;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float xv = act_load(x + v), p = expf(xv - row_lse);
        /* log p_v = x_v - lse, so dH/dx_v = -p_v (x_v - lse + H) */
        float d = dh != 0.0f ? p * g - dh * p * (xv - row_lse + h) : p * g;
        if (v == target) d -= g;
        act_store(dx + v, d);
    }
}

template <typename T>
static cudaError_t cross_entropy_forward_launch(cudaStream_t stream, float *loss, float *lse, float *entropy,
                                                const void *logits, const int32_t *targets, int N, int V) {
    cross_entropy_forward_kernel<T><<<N, CE_THREADS, 0, stream>>>(loss, lse, entropy, (const T *)logits, targets, V);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_cross_entropy_forward(cudaStream_t stream, egrc_gpu_dtype act, float *loss, float *lse,
                                           float *entropy, const void *logits, const int32_t *targets, int N, int V) {
    if (N <= 0) return cudaSuccess; /* an empty grid is a launch error */
    return ACT_DISPATCH(act, cross_entropy_forward_launch, stream, loss, lse, entropy, logits, targets, N, V);
}

template <typename T>
static cudaError_t cross_entropy_backward_launch(cudaStream_t stream, void *dlogits, const void *logits,
                                                 const float *lse, const float *entropy, const float *dloss,
                                                 const float *dentropy, const int32_t *targets, int N, int V) {
    cross_entropy_backward_kernel<T><<<N, CE_THREADS, 0, stream>>>((T *)dlogits, (const T *)logits, lse, entropy,
                                                                  dloss, dentropy, targets, V);
    return cudaGetLastError();
}

cudaError_t egrc_gpu_cross_entropy_backward(cudaStream_t stream, egrc_gpu_dtype act, void *dlogits,
                                            const void *logits, const float *lse, const float *entropy,
                                            const float *dloss, const float *dentropy, const int32_t *targets, int N,
                                            int V) {
    if (N <= 0) return cudaSuccess;
    return ACT_DISPATCH(act, cross_entropy_backward_launch, stream, dlogits, logits, lse, entropy, dloss, dentropy,
                        targets, N, V);
}

/* sum_squares: a fixed number of blocks, block b summing the b-th contiguous
 * slice in double, then one block summing the partials in a fixed tree. */
#define SUMSQ_BLOCKS 1024
#define SUMSQ_THREADS 256

size_t egrc_gpu_sum_squares_scratch(void) { return SUMSQ_BLOCKS * sizeof(double); }

__global__ void sum_squares_partial_kernel(double *partial, const float *x, size_t n) {
    __shared__ double shared[SUMSQ_THREADS / WARP];
    const size_t begin = n * blockIdx.x / SUMSQ_BLOCKS, end = n * (blockIdx.x + 1) / SUMSQ_BLOCKS;
    double sum = 0.0;
    for (size_t i = begin + threadIdx.x; i < end; i += blockDim.x) sum += (double)x[i] * x[i];
    sum = block_sum(sum, shared);
    if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

__global__ void sum_squares_finish_kernel(float *out, const double *partial) {
    __shared__ double shared[SUMSQ_THREADS / WARP];
    double sum = 0.0;
    for (int i = threadIdx.x; i < SUMSQ_BLOCKS; i += blockDim.x) sum += partial[i];
    sum = block_sum(sum, shared);
    if (threadIdx.x == 0) *out = (float)sum;
}

cudaError_t egrc_gpu_sum_squares(cudaStream_t stream, void *scratch, float *out, const float *x, size_t n) {
    double *partial = (double *)scratch;
    sum_squares_partial_kernel<<<SUMSQ_BLOCKS, SUMSQ_THREADS, 0, stream>>>(partial, x, n);
    sum_squares_finish_kernel<<<1, SUMSQ_THREADS, 0, stream>>>(out, partial);
    return cudaGetLastError();
}

template <typename T>
__global__ void adamw_kernel(float *params, T *compute_copy, const float *grads, float grad_scale, float *m, float *v,
                             size_t n, float beta1, float beta2, float eps, float decay, float step_size,
                             float bc2_sqrt) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float g = grads[i] * grad_scale;
        const float mi = beta1 * m[i] + (1.0f - beta1) * g;
        const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        const float p = params[i] * decay - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
        params[i] = p;
        if (compute_copy) act_store(compute_copy + i, p);
    }
}

template <typename T>
static cudaError_t adamw_launch(cudaStream_t stream, float *params, void *compute_copy, const float *grads,
                                float grad_scale, float *m, float *v, size_t n, float beta1, float beta2, float eps,
                                float decay, float step_size, float bc2_sqrt) {
    adamw_kernel<T><<<grid_for(n, 256), 256, 0, stream>>>(params, (T *)compute_copy, grads, grad_scale, m, v, n, beta1,
                                                          beta2, eps, decay, step_size, bc2_sqrt);
    return cudaGetLastError();
}

/* The master update is fp32 whatever `act` is; `act` is the compute copy's
 * type (a bf16 copy is the master rounded to nearest even). */
cudaError_t egrc_gpu_adamw(cudaStream_t stream, egrc_gpu_dtype act, float *params, void *compute_copy,
                           const float *grads, float grad_scale, float *m, float *v, size_t n, float beta1,
                           float beta2, float eps, float decay, float step_size, float bc2_sqrt) {
    return ACT_DISPATCH(act, adamw_launch, stream, params, compute_copy, grads, grad_scale, m, v, n, beta1, beta2, eps,
                        decay, step_size, bc2_sqrt);
}
