/* The CUDA backend's model ops: each enqueues the kernels of kernels/cuda on
 * the backend's stream, hands them scratch where they reduce, and turns a
 * launch error into a fatal message naming the op. Also the ops table and
 * the plugin's one exported symbol. */
#include <math.h>

#include "cuda_backend.h"

static cudaStream_t stream_of(egrc_backend *be) { return cuda_state_of(be)->stream; }

static void cuda_to_act(egrc_backend *be, void *dst, const float *src, size_t n) {
    /* fp32 activations: a device-to-device copy */
    if (n) cuda_check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, stream_of(be)), "to_act");
}

static void cuda_to_f32(egrc_backend *be, float *dst, const void *src, size_t n) {
    if (n) cuda_check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, stream_of(be)), "to_f32");
}

static void cuda_embedding_forward(egrc_backend *be, void *out, const int32_t *tokens, const int32_t *positions,
                                   const void *wte, const void *wpe, int N, int C) {
    cuda_check(egrc_gpu_embedding_forward(stream_of(be), out, tokens, positions, wte, wpe, N, C), "embedding_forward");
}

static void cuda_embedding_backward(egrc_backend *be, float *dwte, float *dwpe, const void *dout,
                                    const int32_t *tokens, const int32_t *positions, int N, int C) {
    cuda_state *st = cuda_state_of(be);
    void *scratch = cuda_scratch(st, egrc_gpu_embedding_backward_scratch(N));
    cuda_check(egrc_gpu_embedding_backward(st->stream, scratch, dwte, dwpe, dout, tokens, positions, N, C),
               "embedding_backward");
}

static void cuda_layernorm_forward(egrc_backend *be, void *out, float *mean, float *rstd, const void *inp,
                                   const void *w, const void *b, int N, int C, float eps) {
    cuda_check(egrc_gpu_layernorm_forward(stream_of(be), out, mean, rstd, inp, w, b, N, C, eps), "layernorm_forward");
}

static void cuda_layernorm_backward(egrc_backend *be, void *dinp, float *dw, float *db, const void *dout,
                                    const void *inp, const void *w, const float *mean, const float *rstd, int N,
                                    int C) {
    cuda_state *st = cuda_state_of(be);
    void *scratch = cuda_scratch(st, egrc_gpu_column_sums_scratch(N, C));
    cuda_check(egrc_gpu_norm_backward(st->stream, scratch, dinp, dw, db, dout, inp, w, mean, rstd, N, C),
               "layernorm_backward");
}

static void cuda_rmsnorm_forward(egrc_backend *be, void *out, float *rstd, const void *inp, const void *w, int N,
                                 int C, float eps) {
    cuda_check(egrc_gpu_rmsnorm_forward(stream_of(be), out, rstd, inp, w, N, C, eps), "rmsnorm_forward");
}

static void cuda_rmsnorm_backward(egrc_backend *be, void *dinp, float *dw, const void *dout, const void *inp,
                                  const void *w, const float *rstd, int N, int C) {
    cuda_state *st = cuda_state_of(be);
    void *scratch = cuda_scratch(st, egrc_gpu_column_sums_scratch(N, C));
    cuda_check(egrc_gpu_norm_backward(st->stream, scratch, dinp, dw, NULL, dout, inp, w, NULL, rstd, N, C),
               "rmsnorm_backward");
}

/* The inverse frequencies theta^(-2i/D), computed exactly as the CPU backend
 * does (fp32 powf of this libm) so that long positions rotate identically;
 * uploaded only when (theta, D) changes. */
static const float *rope_frequencies(cuda_state *st, int D, float theta) {
    if (st->rope_dim == D && st->rope_theta == theta) return st->rope_freq;
    /* The previous upload may still be reading rope_host. */
    cuda_check(cudaStreamSynchronize(st->stream), "an op queued before rope");
    const int half = D / 2;
    for (int i = 0; i < half; i++) st->rope_host[i] = 1.0f / powf(theta, (float)(2 * i) / (float)D);
    cuda_check(cudaMemcpyAsync(st->rope_freq, st->rope_host, (size_t)half * sizeof(float), cudaMemcpyHostToDevice,
                               st->stream),
               "rope table upload");
    st->rope_dim = D;
    st->rope_theta = theta;
    return st->rope_freq;
}

static void cuda_rope_forward(egrc_backend *be, void *qkv, const int32_t *positions, int N, int H, int KV, int D,
                              float theta) {
    cuda_state *st = cuda_state_of(be);
    const float *freq = rope_frequencies(st, D, theta);
    cuda_check(egrc_gpu_rope(st->stream, qkv, positions, freq, N, H, KV, D, 1.0f), "rope_forward");
}

static void cuda_rope_backward(egrc_backend *be, void *dqkv, const int32_t *positions, int N, int H, int KV, int D,
                               float theta) {
    cuda_state *st = cuda_state_of(be);
    const float *freq = rope_frequencies(st, D, theta);
    cuda_check(egrc_gpu_rope(st->stream, dqkv, positions, freq, N, H, KV, D, -1.0f), "rope_backward");
}

static void check_head_dim(int D, const char *op) {
    if (D > EGRC_GPU_MAX_HEAD_DIM)
        cuda_fatal("%s: head size %d is larger than the %d this version's attention kernels support", op, D,
                   EGRC_GPU_MAX_HEAD_DIM);
}

static size_t cuda_attention_scratch_bytes(egrc_backend *be, int B, int T, int H) {
    (void)be;
    return egrc_gpu_attention_lse_bytes(B, T, H);
}

static void cuda_attention_forward(egrc_backend *be, void *out, void *scratch, const void *qkv, int B, int T, int H,
                                   int KV, int D) {
    check_head_dim(D, "attention_forward");
    cuda_check(egrc_gpu_attention_forward(stream_of(be), out, (float *)scratch, qkv, B, T, H, KV, D),
               "attention_forward");
}

static void cuda_attention_backward(egrc_backend *be, void *dqkv, const void *dout, const void *qkv, const void *out,
                                    const void *scratch, int B, int T, int H, int KV, int D) {
    cuda_state *st = cuda_state_of(be);
    check_head_dim(D, "attention_backward");
    void *delta = cuda_scratch(st, egrc_gpu_attention_backward_scratch(B, T, H));
    cuda_check(egrc_gpu_attention_backward(st->stream, delta, dqkv, dout, qkv, out, (const float *)scratch, B, T, H,
                                           KV, D),
               "attention_backward");
}

static void cuda_gelu_forward(egrc_backend *be, void *out, const void *inp, size_t n) {
    cuda_check(egrc_gpu_gelu_forward(stream_of(be), out, inp, n), "gelu_forward");
}

static void cuda_gelu_backward(egrc_backend *be, void *dinp, const void *inp, const void *dout, size_t n) {
    cuda_check(egrc_gpu_gelu_backward(stream_of(be), dinp, inp, dout, n), "gelu_backward");
}

static void cuda_swiglu_forward(egrc_backend *be, void *out, const void *gate_up, int N, int hidden) {
    cuda_check(egrc_gpu_swiglu_forward(stream_of(be), out, gate_up, N, hidden), "swiglu_forward");
}

static void cuda_swiglu_backward(egrc_backend *be, void *dgate_up, const void *dout, const void *gate_up, int N,
                                 int hidden) {
    cuda_check(egrc_gpu_swiglu_backward(stream_of(be), dgate_up, dout, gate_up, N, hidden), "swiglu_backward");
}

static void cuda_add(egrc_backend *be, void *dst, const void *src, size_t n) {
    cuda_check(egrc_gpu_add(stream_of(be), dst, src, n), "add");
}

static void cuda_cross_entropy_forward(egrc_backend *be, float *loss, float *lse, float *entropy, const void *logits,
                                       const int32_t *targets, int N, int V) {
    cuda_check(egrc_gpu_cross_entropy_forward(stream_of(be), loss, lse, entropy, logits, targets, N, V),
               "cross_entropy_forward");
}

static void cuda_cross_entropy_backward(egrc_backend *be, void *dlogits, const void *logits, const float *lse,
                                        const float *entropy, const float *dloss, const float *dentropy,
                                        const int32_t *targets, int N, int V) {
    cuda_check(egrc_gpu_cross_entropy_backward(stream_of(be), dlogits, logits, lse, entropy, dloss, dentropy, targets,
                                               N, V),
               "cross_entropy_backward");
}

static void cuda_kv_cache_write(egrc_backend *be, void *k_cache, void *v_cache, const void *qkv, const int32_t *slots,
                                const int32_t *positions, int N, int H, int KV, int D, int cap) {
    cuda_check(egrc_gpu_kv_cache_write(stream_of(be), k_cache, v_cache, qkv, slots, positions, N, H, KV, D, cap),
               "kv_cache_write");
}

static void cuda_attention_decode(egrc_backend *be, void *out, const void *qkv, const void *k_cache,
                                  const void *v_cache, const int32_t *slots, const int32_t *lens, int N, int H, int KV,
                                  int D, int cap) {
    check_head_dim(D, "attention_decode");
    cuda_check(egrc_gpu_attention_decode(stream_of(be), out, qkv, k_cache, v_cache, slots, lens, N, H, KV, D, cap),
               "attention_decode");
}

static void cuda_sum_squares(egrc_backend *be, float *out, const float *x, size_t n) {
    cuda_state *st = cuda_state_of(be);
    void *scratch = cuda_scratch(st, egrc_gpu_sum_squares_scratch());
    cuda_check(egrc_gpu_sum_squares(st->stream, scratch, out, x, n), "sum_squares");
}

static void cuda_adamw(egrc_backend *be, float *params, void *compute_copy, const float *grads, float grad_scale,
                       float *m, float *v, size_t n, float lr, float beta1, float beta2, float eps, float weight_decay,
                       int step) {
    /* The scalar factors in double, exactly as the CPU backend computes them. */
    const float bc2_sqrt = (float)sqrt(1.0 - pow(beta2, step));
    const float step_size = (float)(lr / (1.0 - pow(beta1, step)));
    const float decay = 1.0f - lr * weight_decay;
    cuda_check(egrc_gpu_adamw(stream_of(be), params, compute_copy, grads, grad_scale, m, v, n, beta1, beta2, eps, decay,
                              step_size, bc2_sqrt),
               "adamw");
}

static const egrc_backend_ops cuda_ops = {
    .abi_version = EGRC_BACKEND_ABI_VERSION,
    .name = "cuda",
    .device_count = cuda_device_count,
    .device_info = cuda_device_info,
    .open = cuda_open,
    .close = cuda_close,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .zero = cuda_zero,
    .synchronize = cuda_synchronize,
    .to_act = cuda_to_act,
    .embedding_forward = cuda_embedding_forward,
    .embedding_backward = cuda_embedding_backward,
    .layernorm_forward = cuda_layernorm_forward,
    .layernorm_backward = cuda_layernorm_backward,
    .rmsnorm_forward = cuda_rmsnorm_forward,
    .rmsnorm_backward = cuda_rmsnorm_backward,
    .matmul_forward = cuda_matmul_forward,
    .matmul_backward = cuda_matmul_backward,
    .rope_forward = cuda_rope_forward,
    .rope_backward = cuda_rope_backward,
    .attention_scratch_bytes = cuda_attention_scratch_bytes,
    .attention_forward = cuda_attention_forward,
    .attention_backward = cuda_attention_backward,
    .gelu_forward = cuda_gelu_forward,
    .gelu_backward = cuda_gelu_backward,
    .swiglu_forward = cuda_swiglu_forward,
    .swiglu_backward = cuda_swiglu_backward,
    .add = cuda_add,
    .cross_entropy_forward = cuda_cross_entropy_forward,
    .cross_entropy_backward = cuda_cross_entropy_backward,
    .kv_cache_write = cuda_kv_cache_write,
    .attention_decode = cuda_attention_decode,
    .to_f32 = cuda_to_f32,
    .sum_squares = cuda_sum_squares,
    .adamw = cuda_adamw,
};

const egrc_backend_ops *cuda_backend_ops(void) { return &cuda_ops; }

/* The plugin's only exported symbol (everything else is hidden). */
__attribute__((visibility("default"))) const egrc_backend_ops *egrc_backend_entry(void);

const egrc_backend_ops *egrc_backend_entry(void) { return &cuda_ops; }
