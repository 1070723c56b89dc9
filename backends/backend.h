/* The egrc backend contract.
 *
 * A backend is a table of operations on memory it owns. The core (model,
 * optimizer, trainer) never touches that memory directly and never includes a
 * vendor header: it allocates through the table, moves data with upload /
 * download, and runs every computation as an op. That is what lets the same
 * model code run on the CPU (built in, the reference) and on CUDA, HIP or
 * Level Zero (shared-object plugins, loaded by name).
 *
 * Rules every backend follows, whatever its hardware:
 *  - Pointers passed to ops are DEVICE pointers from ops->alloc. On a GPU the
 *    host cannot dereference them; on the CPU backend they are plain memory.
 *  - Ops are enqueued in order on the backend's single stream and may return
 *    before they finish. `download` and `synchronize` wait; nothing else does.
 *    Host memory handed to `upload` must stay unchanged until the next wait.
 *  - Element types: everything named `float *` is fp32 always (master weights,
 *    gradients, optimizer moments, per-row statistics, losses, entropies,
 *    log-probs). Everything named `void *` is an ACTIVATION or a COMPUTE COPY of
 *    weights, stored in the backend's `act_dtype`: fp32 on the CPU, bf16 on GPU
 *    backends in their default mode. When act_dtype is fp32 the compute copy of
 *    the weights IS the fp32 master (same pointer); otherwise `adamw` refreshes
 *    the compute copy as it updates the master.
 *  - Reductions that feed a loss, an entropy, a log-prob or a norm accumulate
 *    in fp32 (or wider) on every backend.
 *  - Gradient conventions (chosen so the model needs no memsets of activation
 *    gradients): weight/bias gradients are ACCUMULATED (+=), which is what
 *    gradient accumulation needs; the input gradients of matmul, activations,
 *    attention and cross-entropy are OVERWRITTEN (=); the input gradients of
 *    the norms are ACCUMULATED, because a norm's input is the residual stream,
 *    whose gradient already holds the skip connection's share.
 *  - Faults (CUDA's sticky-error model). Ops have no error path of their
 *    own: a failure inside one (a device fault, no memory left for an op's
 *    scratch, a library refusing a call) is LATCHED. From then on the
 *    backend may skip every op (the GPU plugins do: their context is
 *    unusable after most faults), whatever ops compute is undefined, and
 *    `latched_error` reports the fault, with the same message each time,
 *    until the backend is closed. A device finds most faults only at the
 *    next wait, so the core waits through egrc_backend_synchronize and
 *    egrc_backend_download (end of this file), which return the latched
 *    fault, and uses nothing a wait brought back unless it returned 0. The
 *    message names the backend, the op (or, where the device cannot tell,
 *    the ops since the last wait) and the cause. Limits a backend knows
 *    before anything runs (a head size its kernels cannot take) are no
 *    faults: `supports` refuses them when a model is created.
 *
 * Shapes in comments: N rows (N = B*T tokens), C model width, OC output width,
 * V vocabulary, H query heads, KV key/value heads, D head size,
 * QKV = (H + 2*KV)*D (a row of the packed q|k|v projection). All row-major.
 *
 * Plugins: `--backend NAME` loads libegrc-backend-NAME.so and calls its
 * exported `egrc_backend_entry` (EGRC_BACKEND_ENTRY_SYMBOL), which returns the
 * ops table; `abi_version` must equal EGRC_BACKEND_ABI_VERSION and every op
 * not marked OPTIONAL must be set, or the loader refuses the plugin, naming
 * what is wrong. */
#ifndef EGRC_BACKEND_H
#define EGRC_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../core/base/dtype.h"
#include "../core/base/error.h"
#include "../core/base/sampling.h" /* EGRC_GREEDY_TEMPERATURE */

#define EGRC_BACKEND_ABI_VERSION 4
#define EGRC_BACKEND_ENTRY_SYMBOL "egrc_backend_entry"

typedef struct egrc_backend egrc_backend;
typedef struct egrc_backend_ops egrc_backend_ops;
/* A captured sequence of ops (graph_* below), opaque to the core. */
typedef struct egrc_graph egrc_graph;

/* graph_launch's answer when the graph points at backend memory that has
 * since moved (see graph_launch). */
#define EGRC_GRAPH_STALE 1

/* One row's request to the `sample` op (a device array, one per row). */
typedef struct egrc_sample_request {
    float temperature; /* <= EGRC_GREEDY_TEMPERATURE: greedy */
    float top_p;       /* in (0, 1]; 1 = off */
    int32_t top_k;     /* <= 0 or >= V: off */
    float u;           /* the row's uniform draw in [0, 1), made on the host (unused when greedy) */
} egrc_sample_request;

/* One row's result of the `sample` op (a device array, one per row). */
typedef struct egrc_sample_result {
    int32_t token;
    float logprob;        /* logits[token] - lse: log p(token) at T = 1 over the whole vocabulary */
    float entropy;        /* entropy at T = 1 (nats) */
    float sample_logprob; /* log p(token) under the distribution sampled from; 0 when greedy */
    float sample_entropy; /* entropy of that distribution; 0 when greedy */
} egrc_sample_result;

/* The shapes a model's ops take, for `supports` (this header cannot see the
 * model's config). */
typedef struct egrc_model_shape {
    int d_model, n_head, n_kv_head, head_dim, d_ff, vocab_size;
} egrc_model_shape;

typedef struct egrc_device_info {
    char name[128];
    size_t memory_bytes; /* 0 if unknown */
    int compute_units;   /* cores / SMs / CUs */
} egrc_device_info;

/* An open backend: one device, one stream. `impl` is the backend's own state. */
struct egrc_backend {
    const egrc_backend_ops *ops;
    int device;
    egrc_dtype act_dtype;
    void *impl;
};

struct egrc_backend_ops {
    int abi_version;
    const char *name;

    /* ---- devices ---- */
    /* Number of usable devices; -1 with a message when the driver/runtime is
     * missing (the message names the library and what to install). */
    int (*device_count)(egrc_error *err);
    int (*device_info)(int device, egrc_device_info *info, egrc_error *err);
    egrc_backend *(*open)(int device, egrc_error *err);
    void (*close)(egrc_backend *be);
    /* Whether this open backend runs every op a model of these shapes needs:
     * 0, or -1 with a message naming the limit and what to do. Asked by
     * egrc_model_create, so that a limit stops a run before it starts
     * rather than in its middle. */
    int (*supports)(egrc_backend *be, const egrc_model_shape *shape, egrc_error *err);

    /* ---- memory and the stream ---- */
    void *(*alloc)(egrc_backend *be, size_t bytes, egrc_error *err);
    void (*free)(egrc_backend *be, void *ptr);
    void (*upload)(egrc_backend *be, void *dst, const void *src_host, size_t bytes);
    void (*download)(egrc_backend *be, void *dst_host, const void *src, size_t bytes); /* waits */
    void (*zero)(egrc_backend *be, void *ptr, size_t bytes);
    void (*synchronize)(egrc_backend *be);
    /* The latched fault (see Faults above): 0 when there is none, else -1
     * with its message. It does not wait: called after download or
     * synchronize, it covers every op enqueued before them. The CPU backend
     * latches only a failed allocation inside attention_backward or sample;
     * its other ops cannot fail, and it keeps running them after a fault. */
    int (*latched_error)(egrc_backend *be, egrc_error *err);
    /* Converts n fp32 values into the backend's act_dtype (for weights'
     * compute copies and inputs); a plain copy when act_dtype is fp32. */
    void (*to_act)(egrc_backend *be, void *dst, const float *src, size_t n);

    /* ---- model ops ---- */
    /* out(N,C) = wte[tokens[i]] + (wpe ? wpe[positions[i]] : 0) */
    void (*embedding_forward)(egrc_backend *be, void *out, const int32_t *tokens, const int32_t *positions,
                              const void *wte, const void *wpe, int N, int C);
    /* dwte[tokens[i]] += dout[i]; dwpe[positions[i]] += dout[i] (dwpe may be NULL) */
    void (*embedding_backward)(egrc_backend *be, float *dwte, float *dwpe, const void *dout, const int32_t *tokens,
                               const int32_t *positions, int N, int C);

    /* out = (x - mean) * rstd * w + b; mean/rstd (N) saved for backward */
    void (*layernorm_forward)(egrc_backend *be, void *out, float *mean, float *rstd, const void *inp, const void *w,
                              const void *b, int N, int C, float eps);
    void (*layernorm_backward)(egrc_backend *be, void *dinp, float *dw, float *db, const void *dout, const void *inp,
                               const void *w, const float *mean, const float *rstd, int N, int C);
    /* out = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps) */
    void (*rmsnorm_forward)(egrc_backend *be, void *out, float *rstd, const void *inp, const void *w, int N, int C,
                            float eps);
    void (*rmsnorm_backward)(egrc_backend *be, void *dinp, float *dw, const void *dout, const void *inp, const void *w,
                             const float *rstd, int N, int C);

    /* out(N,OC) = inp(N,C) @ w(OC,C)^T + bias(OC) (bias may be NULL) */
    void (*matmul_forward)(egrc_backend *be, void *out, const void *inp, const void *w, const void *bias, int N, int C,
                           int OC);
    /* dinp = dout @ w (dinp may be NULL: not needed); dw += dout^T @ inp; dbias += colsum(dout) (may be NULL) */
    void (*matmul_backward)(egrc_backend *be, void *dinp, float *dw, float *dbias, const void *dout, const void *inp,
                            const void *w, int N, int C, int OC);

    /* Rotary embedding, in place on the q and k parts of qkv (N,QKV), the
     * "rotate half" form used by Llama/Qwen2: dims i and i+D/2 of each head
     * rotate by positions[n] * theta^(-2i/D). backward rotates by the negative angle. */
    void (*rope_forward)(egrc_backend *be, void *qkv, const int32_t *positions, int N, int H, int KV, int D,
                         float theta);
    void (*rope_backward)(egrc_backend *be, void *dqkv, const int32_t *positions, int N, int H, int KV, int D,
                          float theta);

    /* Causal self-attention over qkv (B,T,QKV) -> out (B,T,H*D), softmax scale
     * 1/sqrt(D); query head h reads key/value head h / (H/KV) (GQA).
     * `scratch` holds what backward needs, of attention_scratch_bytes() bytes:
     * the CPU keeps the probabilities, a flash-style GPU kernel keeps only
     * per-row log-sum-exps. */
    size_t (*attention_scratch_bytes)(egrc_backend *be, int B, int T, int H);
    void (*attention_forward)(egrc_backend *be, void *out, void *scratch, const void *qkv, int B, int T, int H,
                              int KV, int D);
    void (*attention_backward)(egrc_backend *be, void *dqkv, const void *dout, const void *qkv, const void *out,
                               const void *scratch, int B, int T, int H, int KV, int D);

    /* GPT-2's GELU, tanh approximation */
    void (*gelu_forward)(egrc_backend *be, void *out, const void *inp, size_t n);
    void (*gelu_backward)(egrc_backend *be, void *dinp, const void *inp, const void *dout, size_t n);
    /* out(N,hidden) = silu(gate) * up where a row of gate_up (N,2*hidden) is [gate | up] */
    void (*swiglu_forward)(egrc_backend *be, void *out, const void *gate_up, int N, int hidden);
    void (*swiglu_backward)(egrc_backend *be, void *dgate_up, const void *dout, const void *gate_up, int N, int hidden);

    /* dst(n) += src(n) : residual connections, forward and backward */
    void (*add)(egrc_backend *be, void *dst, const void *src, size_t n);

    /* Fused softmax cross-entropy over logits (N,V), all in fp32:
     *   lse[i] = log sum_v exp(logits[i,v])
     *   loss[i] = lse[i] - logits[i, targets[i]]  (-log p of the target), 0 when targets[i] < 0
     *   entropy[i] = lse[i] - sum_v p[i,v] logits[i,v]  (NULL: not computed)
     * The log-prob of a target is -loss[i]. No (N,V) probabilities are kept. */
    void (*cross_entropy_forward)(egrc_backend *be, float *loss, float *lse, float *entropy, const void *logits,
                                  const int32_t *targets, int N, int V);
    /* dlogits[i,v] = (p[i,v] - [v == targets[i]]) * dloss[i]
     *              + dentropy[i] * dH[i]/dlogits[i,v],  dH/dz_v = -p_v (log p_v + H)
     * dentropy may be NULL (no entropy term); rows with targets < 0 take no
     * loss term but do take the entropy term (the entropy needs no target).
     * entropy is the forward's output (needed when dentropy is given).
     * dlogits may alias logits (the CPU trainer overwrites them in place). */
    void (*cross_entropy_backward)(egrc_backend *be, void *dlogits, const void *logits, const float *lse,
                                   const float *entropy, const float *dloss, const float *dentropy,
                                   const int32_t *targets, int N, int V);

    /* Incremental decoding with a KV cache. A cache holds one layer's keys (or
     * values) for S sequence slots of up to `cap` positions each: (S,cap,KV*D),
     * in act_dtype. `slots`, `positions` and `lens` are device int32 arrays.
     *
     * kv_cache_write copies the k and v parts of row i of qkv (N,QKV), taken
     * after RoPE, to k_cache/v_cache[slots[i], positions[i]]; rows with
     * positions[i] < 0 (padding) are skipped. */
    void (*kv_cache_write)(egrc_backend *be, void *k_cache, void *v_cache, const void *qkv, const int32_t *slots,
                           const int32_t *positions, int N, int H, int KV, int D, int cap);
    /* out(N,H*D): the query heads of row i of qkv (N,QKV) attend over cache
     * positions [0, lens[i]) of slot slots[i] (the row's own key/value already
     * written there), softmax scale 1/sqrt(D), GQA as attention_forward.
     * Forward only; O(lens[i]) per row, no scratch. */
    void (*attention_decode)(egrc_backend *be, void *out, const void *qkv, const void *k_cache, const void *v_cache,
                             const int32_t *slots, const int32_t *lens, int N, int H, int KV, int D, int cap);
    /* dst(n) fp32 = src(n) in act_dtype (device to device): the inverse of
     * to_act, so logits can be downloaded as fp32 whatever the backend. */
    void (*to_f32)(egrc_backend *be, float *dst, const void *src, size_t n);
    /* Next-token sampling, OPTIONAL (NULL: the core downloads the logits and
     * samples on the host with the same semantics). For each row i of logits
     * (N,V) and request req[i], out[i] receives:
     *   logprob, entropy: T = 1 statistics over the whole row, computed as
     *     cross_entropy_forward computes lse and entropy (logprob = x[token] - lse);
     *   token: greedy (temperature <= EGRC_GREEDY_TEMPERATURE): the
     *     argmax, lowest id on ties; sample_logprob = sample_entropy = 0.
     *     Otherwise weights w_v = (float)exp(((double)x_v - max) * (1.0 / T)), and:
     *     - no truncation (top_k off, top_p >= 1): the first v in id order
     *       whose running sum of w exceeds (>) u * sum(w);
     *     - truncation: order the tokens by w descending, then id ascending;
     *       keep the first top_k of that order (all when off), then the
     *       shortest prefix of those whose sum reaches (>=) top_p times their
     *       sum (at least one token); the token is the first, in that same
     *       order, whose running sum exceeds (>) u * (sum of what is kept);
     *     sample_logprob = (x_token - max) / T - log(kept sum) and
     *     sample_entropy = log(kept sum) - sum_kept w (x - max) / T / (kept sum).
     * u is drawn on the host (core/nn/generate.c), from each sequence's own
     * generator, exactly when the host sampler would draw it, so seeds and
     * resumes do not depend on the backend. The CPU backend runs
     * core/base/sampling.c's code (bit for bit the host path); GPU backends sum
     * in another order (fixed point), so a token may differ from the CPU's
     * only where u * sum lies within rounding of a boundary. Deterministic.
     * One round trip per step: the core uploads req and downloads out. */
    void (*sample)(egrc_backend *be, egrc_sample_result *out, const void *logits, const egrc_sample_request *req,
                   int N, int V);

    /* ---- optimizer and reductions ---- */
    /* *out (a device float) = sum x^2, accumulated in double on the CPU */
    void (*sum_squares)(egrc_backend *be, float *out, const float *x, size_t n);
    /* AdamW with decoupled weight decay, as torch.optim.AdamW, on g = grad_scale * grads
     * (gradient clipping folds into grad_scale, saving a pass over the gradients):
     *   p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
     *   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
     * `step` t counts from 1. compute_copy (may be NULL) receives p in act_dtype. */
    void (*adamw)(egrc_backend *be, float *params, void *compute_copy, const float *grads, float grad_scale, float *m,
                  float *v, size_t n, float lr, float beta1, float beta2, float eps, float weight_decay, int step);

    /* ---- captured graphs, OPTIONAL (all four NULL, or all set) ----
     * A graph records a sequence of ops once and replays it with a single
     * launch (a CUDA graph / hipGraph), which saves the per-op launch cost
     * that dominates a decode step of small rows. The core uses them for the
     * rollout's decode step (core/nn/generate.c).
     *
     * graph_begin starts recording on the stream: the ops enqueued until
     * graph_end are recorded, NOT run. In between only model ops and `zero`
     * may be called (never alloc, free, upload, download or synchronize), and
     * each op must find the scratch it needs already there: run the same ops
     * with the same shapes once, uncaptured, before capturing them. A replay
     * touches exactly the recorded device addresses with the recorded shapes
     * and integer arguments; only the CONTENTS of device buffers may differ
     * from one replay to the next (upload the new inputs before graph_launch,
     * in stream order). So whatever changes per replay must be read by the
     * ops from device memory, as attention_decode's lens and sample's
     * requests are. Replaying runs the same kernels in the same order as
     * the ops would run directly: results are identical.
     *
     * graph_begin returns 0, or -1 with a message when this backend will not
     * capture (a GPU plugin with EGRC_GPU_GRAPHS=0, for instance): the caller
     * then runs its ops directly. graph_end returns the graph, or NULL with a
     * message when the capture failed (nothing recorded has run).
     * graph_launch enqueues one replay and returns 0, or EGRC_GRAPH_STALE,
     * running nothing, when memory the backend owns and the graph uses (its
     * scratch) was reallocated since the capture: free the graph, run the
     * ops directly, capture again later. graph_free may be called while the
     * graph is still replaying. Once a fault is latched, graph_begin and
     * graph_end fail with its message and graph_launch runs nothing. */
    int (*graph_begin)(egrc_backend *be, egrc_error *err);
    egrc_graph *(*graph_end)(egrc_backend *be, egrc_error *err);
    int (*graph_launch)(egrc_backend *be, egrc_graph *graph);
    void (*graph_free)(egrc_backend *be, egrc_graph *graph);
};

/* Finds and opens a backend by name ("cpu", or a plugin name such as "cuda").
 * Errors name the backend, the library searched for and what to do. */
egrc_backend *egrc_backend_open(const char *name, int device, egrc_error *err);
void egrc_backend_close(egrc_backend *be);
/* The ops table of a backend by name, without opening a device (for listing). */
const egrc_backend_ops *egrc_backend_find(const char *name, egrc_error *err);
/* Names of the backends egrc knows about (built in or plugin), NULL-terminated. */
const char *const *egrc_backend_known_names(void);

/* The core's waits: the op (synchronize or download), then the latched
 * fault: 0, or -1 with the fault's message. The host memory a failed
 * download was given holds nothing to use. */
int egrc_backend_synchronize(egrc_backend *be, egrc_error *err);
int egrc_backend_download(egrc_backend *be, void *dst_host, const void *src, size_t bytes, egrc_error *err);

/* The built-in CPU backend's table. */
const egrc_backend_ops *egrc_cpu_backend_ops(void);

#endif
