/* The GPU backends' model ops (both plugins): each enqueues the kernels of
 * kernels/cuda on the backend's stream, hands them scratch where they reduce,
 * and latches a launch error as a fault naming the op (gpu_backend.h's
 * Errors); once a fault is latched, each returns at once. Also the ops table
 * and the plugin's one exported symbol. */
#include <math.h>
#include <stddef.h>

#include "gpu_backend.h"

/* The kernels' sampling records are the contract's, field for field. */
_Static_assert(sizeof(egrc_gpu_sample_request) == sizeof(egrc_sample_request) &&
                   offsetof(egrc_gpu_sample_request, top_k) == offsetof(egrc_sample_request, top_k) &&
                   offsetof(egrc_gpu_sample_request, u) == offsetof(egrc_sample_request, u),
               "sample request layouts differ");
_Static_assert(sizeof(egrc_gpu_sample_result) == sizeof(egrc_sample_result) &&
                   offsetof(egrc_gpu_sample_result, sample_entropy) == offsetof(egrc_sample_result, sample_entropy),
               "sample result layouts differ");

static void gpu_to_act(egrc_backend *be, void *dst, const float *src, size_t n) {
    gpu_state *st = gpu_op(be, "to_act");
    if (st) gpu_check(st, egrc_gpu_to_act(st->stream, st->act, dst, src, n));
}

static void gpu_to_f32(egrc_backend *be, float *dst, const void *src, size_t n) {
    gpu_state *st = gpu_op(be, "to_f32");
    if (st) gpu_check(st, egrc_gpu_to_f32(st->stream, st->act, dst, src, n));
}

static void gpu_embedding_forward(egrc_backend *be, void *out, const int32_t *tokens, const int32_t *positions,
                                  const void *wte, const void *wpe, int N, int C) {
    gpu_state *st = gpu_op(be, "embedding_forward");
    if (st) gpu_check(st, egrc_gpu_embedding_forward(st->stream, st->act, out, tokens, positions, wte, wpe, N, C));
}

static void gpu_embedding_backward(egrc_backend *be, float *dwte, float *dwpe, const void *dout,
                                   const int32_t *tokens, const int32_t *positions, int N, int C) {
    gpu_state *st = gpu_op(be, "embedding_backward");
    void *scratch;
    if (st && gpu_scratch(st, egrc_gpu_embedding_backward_scratch(N), &scratch) == 0)
        gpu_check(st, egrc_gpu_embedding_backward(st->stream, st->act, scratch, dwte, dwpe, dout, tokens, positions,
                                                  N, C));
}

static void gpu_layernorm_forward(egrc_backend *be, void *out, float *mean, float *rstd, const void *inp,
                                  const void *w, const void *b, int N, int C, float eps) {
    gpu_state *st = gpu_op(be, "layernorm_forward");
    if (st) gpu_check(st, egrc_gpu_layernorm_forward(st->stream, st->act, out, mean, rstd, inp, w, b, N, C, eps));
}

static void gpu_layernorm_backward(egrc_backend *be, void *dinp, float *dw, float *db, const void *dout,
                                   const void *inp, const void *w, const float *mean, const float *rstd, int N,
                                   int C) {
    gpu_state *st = gpu_op(be, "layernorm_backward");
    void *scratch;
    if (st && gpu_scratch(st, egrc_gpu_column_sums_scratch(N, C), &scratch) == 0)
        gpu_check(st, egrc_gpu_norm_backward(st->stream, st->act, scratch, dinp, dw, db, dout, inp, w, mean, rstd, N,
                                             C));
}

static void gpu_rmsnorm_forward(egrc_backend *be, void *out, float *rstd, const void *inp, const void *w, int N,
                                int C, float eps) {
    gpu_state *st = gpu_op(be, "rmsnorm_forward");
    if (st) gpu_check(st, egrc_gpu_rmsnorm_forward(st->stream, st->act, out, rstd, inp, w, N, C, eps));
}

static void gpu_rmsnorm_backward(egrc_backend *be, void *dinp, float *dw, const void *dout, const void *inp,
                                 const void *w, const float *rstd, int N, int C) {
    gpu_state *st = gpu_op(be, "rmsnorm_backward");
    void *scratch;
    if (st && gpu_scratch(st, egrc_gpu_column_sums_scratch(N, C), &scratch) == 0)
        gpu_check(st, egrc_gpu_norm_backward(st->stream, st->act, scratch, dinp, dw, NULL, dout, inp, w, NULL, rstd,
                                             N, C));
}

/* The inverse frequencies theta^(-2i/D), computed exactly as the CPU backend
 * does (fp32 powf of this libm) so that long positions rotate identically;
 * uploaded only when (theta, D) changes. NULL when that failed (latched). */
static const float *rope_frequencies(gpu_state *st, int D, float theta) {
    if (st->rope_dim == D && st->rope_theta == theta) return st->rope_freq;
    gpu_refuse_while_capturing(st, "a new RoPE table");
    /* The previous upload may still be reading rope_host. */
    const int half = D / 2;
    if (half > (int)(sizeof st->rope_host / sizeof *st->rope_host)) {
        gpu_fault(st, "head size %d is larger than the %d the RoPE table holds", D,
                  2 * (int)(sizeof st->rope_host / sizeof *st->rope_host));
        return NULL;
    }
    if (gpu_wait(st)) return NULL;
    for (int i = 0; i < half; i++) st->rope_host[i] = 1.0f / powf(theta, (float)(2 * i) / (float)D);
    if (gpu_check(st, cudaMemcpyAsync(st->rope_freq, st->rope_host, (size_t)half * sizeof(float),
                                      cudaMemcpyHostToDevice, st->stream)))
        return NULL;
    st->rope_dim = D;
    st->rope_theta = theta;
    st->memory_generation++; /* graphs captured before read the old frequencies */
    return st->rope_freq;
}

static void gpu_rope(egrc_backend *be, const char *op, void *qkv, const int32_t *positions, int N, int H, int KV,
                     int D, float theta, float sign) {
    gpu_state *st = gpu_op(be, op);
    const float *freq = st ? rope_frequencies(st, D, theta) : NULL;
    if (freq) gpu_check(st, egrc_gpu_rope(st->stream, st->act, qkv, positions, freq, N, H, KV, D, sign));
}

static void gpu_rope_forward(egrc_backend *be, void *qkv, const int32_t *positions, int N, int H, int KV, int D,
                             float theta) {
    gpu_rope(be, "rope_forward", qkv, positions, N, H, KV, D, theta, 1.0f);
}

static void gpu_rope_backward(egrc_backend *be, void *dqkv, const int32_t *positions, int N, int H, int KV, int D,
                              float theta) {
    gpu_rope(be, "rope_backward", dqkv, positions, N, H, KV, D, theta, -1.0f);
}

static size_t gpu_attention_scratch_bytes(egrc_backend *be, int B, int T, int H) {
    (void)be;
    return egrc_gpu_attention_lse_bytes(B, T, H);
}

/* Head sizes past the kernels' limit were refused by supports when the model
 * was made (gpu_supports); the launchers' own refusal stays a backstop. */
static void gpu_attention_forward(egrc_backend *be, void *out, void *scratch, const void *qkv, int B, int T, int H,
                                  int KV, int D) {
    gpu_state *st = gpu_op(be, "attention_forward");
    if (st)
        gpu_check(st, egrc_gpu_attention_forward(st->stream, st->act, st->shared_limit, out, (float *)scratch, qkv, B,
                                                 T, H, KV, D));
}

static void gpu_attention_backward(egrc_backend *be, void *dqkv, const void *dout, const void *qkv, const void *out,
                                   const void *scratch, int B, int T, int H, int KV, int D) {
    gpu_state *st = gpu_op(be, "attention_backward");
    void *delta;
    if (st && gpu_scratch(st, egrc_gpu_attention_backward_scratch(B, T, H), &delta) == 0)
        gpu_check(st, egrc_gpu_attention_backward(st->stream, st->act, st->shared_limit, delta, dqkv, dout, qkv, out,
                                                  (const float *)scratch, B, T, H, KV, D));
}

static void gpu_gelu_forward(egrc_backend *be, void *out, const void *inp, size_t n) {
    gpu_state *st = gpu_op(be, "gelu_forward");
    if (st) gpu_check(st, egrc_gpu_gelu_forward(st->stream, st->act, out, inp, n));
}

static void gpu_gelu_backward(egrc_backend *be, void *dinp, const void *inp, const void *dout, size_t n) {
    gpu_state *st = gpu_op(be, "gelu_backward");
    if (st) gpu_check(st, egrc_gpu_gelu_backward(st->stream, st->act, dinp, inp, dout, n));
}

static void gpu_swiglu_forward(egrc_backend *be, void *out, const void *gate_up, int N, int hidden) {
    gpu_state *st = gpu_op(be, "swiglu_forward");
    if (st) gpu_check(st, egrc_gpu_swiglu_forward(st->stream, st->act, out, gate_up, N, hidden));
}

static void gpu_swiglu_backward(egrc_backend *be, void *dgate_up, const void *dout, const void *gate_up, int N,
                                int hidden) {
    gpu_state *st = gpu_op(be, "swiglu_backward");
    if (st) gpu_check(st, egrc_gpu_swiglu_backward(st->stream, st->act, dgate_up, dout, gate_up, N, hidden));
}

static void gpu_add(egrc_backend *be, void *dst, const void *src, size_t n) {
    gpu_state *st = gpu_op(be, "add");
    if (st) gpu_check(st, egrc_gpu_add(st->stream, st->act, dst, src, n));
}

static void gpu_cross_entropy_forward(egrc_backend *be, float *loss, float *lse, float *entropy, const void *logits,
                                      const int32_t *targets, int N, int V) {
    gpu_state *st = gpu_op(be, "cross_entropy_forward");
    if (st)
        gpu_check(st, egrc_gpu_cross_entropy_forward(st->stream, st->act, loss, lse, entropy, logits, targets, N, V));
}

static void gpu_cross_entropy_backward(egrc_backend *be, void *dlogits, const void *logits, const float *lse,
                                       const float *entropy, const float *dloss, const float *dentropy,
                                       const int32_t *targets, int N, int V) {
    gpu_state *st = gpu_op(be, "cross_entropy_backward");
    if (st)
        gpu_check(st, egrc_gpu_cross_entropy_backward(st->stream, st->act, dlogits, logits, lse, entropy, dloss,
                                                      dentropy, targets, N, V));
}

static void gpu_kv_cache_write(egrc_backend *be, void *k_cache, void *v_cache, const void *qkv, const int32_t *slots,
                               const int32_t *positions, int N, int H, int KV, int D, int cap) {
    gpu_state *st = gpu_op(be, "kv_cache_write");
    if (st)
        gpu_check(st, egrc_gpu_kv_cache_write(st->stream, st->act, k_cache, v_cache, qkv, slots, positions, N, H, KV,
                                              D, cap));
}

static void gpu_attention_decode(egrc_backend *be, void *out, const void *qkv, const void *k_cache,
                                 const void *v_cache, const int32_t *slots, const int32_t *lens, int N, int H, int KV,
                                 int D, int cap) {
    gpu_state *st = gpu_op(be, "attention_decode");
    if (st)
        gpu_check(st, egrc_gpu_attention_decode(st->stream, st->act, st->shared_limit, out, qkv, k_cache, v_cache,
                                                slots, lens, N, H, KV, D, cap));
}

static void gpu_sample(egrc_backend *be, egrc_sample_result *out, const void *logits, const egrc_sample_request *req,
                       int N, int V) {
    gpu_state *st = gpu_op(be, "sample");
    void *scratch;
    if (st && gpu_scratch(st, egrc_gpu_sample_scratch(N, V), &scratch) == 0)
        gpu_check(st, egrc_gpu_sample(st->stream, st->act, scratch, (egrc_gpu_sample_result *)out, logits,
                                      (const egrc_gpu_sample_request *)req, N, V));
}

static void gpu_sum_squares(egrc_backend *be, float *out, const float *x, size_t n) {
    gpu_state *st = gpu_op(be, "sum_squares");
    void *scratch;
    if (st && gpu_scratch(st, egrc_gpu_sum_squares_scratch(), &scratch) == 0)
        gpu_check(st, egrc_gpu_sum_squares(st->stream, scratch, out, x, n));
}

static void gpu_adamw(egrc_backend *be, float *params, void *compute_copy, const float *grads, float grad_scale,
                      float *m, float *v, size_t n, float lr, float beta1, float beta2, float eps, float weight_decay,
                      int step) {
    gpu_state *st = gpu_op(be, "adamw");
    if (!st) return;
    /* The scalar factors in double, exactly as the CPU backend computes them. */
    const float bc2_sqrt = (float)sqrt(1.0 - pow(beta2, step));
    const float step_size = (float)(lr / (1.0 - pow(beta1, step)));
    const float decay = 1.0f - lr * weight_decay;
    gpu_check(st, egrc_gpu_adamw(st->stream, st->act, params, compute_copy, grads, grad_scale, m, v, n, beta1, beta2,
                                 eps, decay, step_size, bc2_sqrt));
}

static const egrc_backend_ops gpu_ops_table = {
    .abi_version = EGRC_BACKEND_ABI_VERSION,
    .name = EGRC_GPU_NAME,
    .device_count = gpu_device_count,
    .device_info = gpu_device_info,
    .open = gpu_open,
    .close = gpu_close,
    .supports = gpu_supports,
    .alloc = gpu_alloc,
    .free = gpu_free,
    .upload = gpu_upload,
    .download = gpu_download,
    .zero = gpu_zero,
    .synchronize = gpu_synchronize,
    .latched_error = gpu_latched_error,
    .to_act = gpu_to_act,
    .embedding_forward = gpu_embedding_forward,
    .embedding_backward = gpu_embedding_backward,
    .layernorm_forward = gpu_layernorm_forward,
    .layernorm_backward = gpu_layernorm_backward,
    .rmsnorm_forward = gpu_rmsnorm_forward,
    .rmsnorm_backward = gpu_rmsnorm_backward,
    .matmul_forward = gpu_matmul_forward,
    .matmul_backward = gpu_matmul_backward,
    .rope_forward = gpu_rope_forward,
    .rope_backward = gpu_rope_backward,
    .attention_scratch_bytes = gpu_attention_scratch_bytes,
    .attention_forward = gpu_attention_forward,
    .attention_backward = gpu_attention_backward,
    .gelu_forward = gpu_gelu_forward,
    .gelu_backward = gpu_gelu_backward,
    .swiglu_forward = gpu_swiglu_forward,
    .swiglu_backward = gpu_swiglu_backward,
    .add = gpu_add,
    .cross_entropy_forward = gpu_cross_entropy_forward,
    .cross_entropy_backward = gpu_cross_entropy_backward,
    .kv_cache_write = gpu_kv_cache_write,
    .attention_decode = gpu_attention_decode,
    .to_f32 = gpu_to_f32,
    .sample = gpu_sample,
    .sum_squares = gpu_sum_squares,
    .adamw = gpu_adamw,
    .graph_begin = gpu_graph_begin,
    .graph_end = gpu_graph_end,
    .graph_launch = gpu_graph_launch,
    .graph_free = gpu_graph_free,
};

const egrc_backend_ops *gpu_backend_ops(void) { return &gpu_ops_table; }

/* The plugin's only exported symbol (everything else is hidden). */
__attribute__((visibility("default"))) const egrc_backend_ops *egrc_backend_entry(void);

const egrc_backend_ops *egrc_backend_entry(void) { return &gpu_ops_table; }
