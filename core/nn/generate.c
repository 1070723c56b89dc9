/* Rollouts with a KV cache: the decoder (prefill through the training forward,
 * then single-token steps through backend ops) and the sampling loop on top
 * (the backend's sample op where it has one, the host sampler otherwise).
 * Shapes: n rows (active sequences), C model width, QKV packed q|k|v width,
 * F MLP width, V vocabulary; a layer's cache is (max_seqs, max_len, KV*D),
 * plus one spare slot in rollouts that pad their steps (below).
 *
 * Graphs. A rollout's decode step (embedding, every layer, the logits and
 * the sample op: ~10 ops per layer) is launch-bound on a GPU at small
 * batches, so on a backend with graph ops (backend.h) it is captured once
 * and replayed with one launch per step (decoder_step_sample). Per step the
 * host then uploads the rows' inputs (one block of tokens, positions, slots
 * and lengths; one block of sample requests), launches, and downloads the
 * rows' sample results; every kernel reads what changes from those device
 * buffers, never from its arguments.
 *
 * The number of active rows shrinks as sequences finish, and a graph is
 * fixed to one row count. Capturing every count (up to max_seqs of them,
 * each living a few steps) would cost more than it saves, so such a rollout
 * runs each step at a bucket of rows, the next power of two (at most the
 * call's rows): at most log2(rows) + 2 graphs. The padding rows feed
 * token 0 at position 0 of the spare slot and sample greedily; they cost
 * little, as a small decode step is bound by reading the weights, not by
 * its rows, and their results are never read. Padding happens whether or
 * not the backend then captures (EGRC_GPU_GRAPHS=0), so results are the
 * same with and without graphs: the same kernels on the same shapes, in the
 * same order. A bucket's first step runs directly: it sizes the backend's
 * scratch and pays for first-use costs, so the capture records no
 * allocation, and a bucket met only once costs no capture. The second
 * step at that bucket captures and launches; later ones replay. A graph
 * the backend reports stale (its scratch moved) is dropped, and its bucket
 * starts over.
 *
 * Graphs live with the decoder, and a decoder that captures stays on the
 * model after egrc_generate returns (m->rollout_decoder): an RL loop calls
 * it once per step, and recapturing every bucket each time would cost a
 * few ms per rollout, a large share of a small model's. The next call
 * reuses it when its rows and positions fit, else replaces it with one of
 * exactly the new shape (a decoder grown to fit every shape seen could
 * outgrow the memory either shape alone needs). Buckets stop at the call's
 * own row count, not the decoder's, so a call pads its rows as a fresh
 * decoder would, and results never depend on earlier calls. What its
 * graphs point at stays valid in between: its own buffers, the model's
 * compute weights (allocated once, updated in place) and the backend's
 * scratch and RoPE table, whose moves make graphs stale.
 * Nothing is kept without graphs (the CPU), where there is nothing to gain. */
#include "generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct egrc_decoder {
    egrc_model *m;
    int max_seqs, max_len;
    int *length; /* (max_seqs) tokens in each slot's cache; 0 = empty */
    /* 1: prefill/step leave the logits on the device for the backend's sample
     * op (decoder_sample); 0: they download logits, lse and entropy. */
    int device_sampling;
    /* Rollout steps in buckets of rows, captured as graphs (top of the file).
     * pad_rows: the backend has graph ops, and the cache a spare slot
     * (number max_seqs) for padding rows; graphs_off: graph_begin declined. */
    int pad_rows, graphs_off;
    int call_rows;         /* rows of the current egrc_generate call: the largest bucket */
    egrc_graph **graphs;   /* (max_seqs + 1), by row count: that step's graph or NULL */
    unsigned char *warmed; /* (max_seqs + 1), by row count: a step has run directly */
    int graph_steps;       /* steps replayed from a graph */

    void *memory; /* one device allocation, carved below */
    void **k_cache, **v_cache; /* per layer */
    void *x, *h, *tmp, *qkv, *att, *fc, *act, *logits; /* act_dtype, max_seqs rows */
    float *mean, *rstd, *loss, *lse, *entropy, *logits_f32; /* logits_f32: host-output decoders only */
    egrc_sample_request *d_requests;
    egrc_sample_result *d_results;
    /* d_tokens, d_positions, d_slots, d_lens: (max_seqs) each, consecutive
     * in that order, so one upload moves a step's inputs. */
    int32_t *d_tokens, *d_positions, *d_slots, *d_lens, *d_no_targets;
    int32_t *d_fill_slots, *d_fill_positions; /* (max_seqs * max_len) for the prefill's cache write */

    /* Host staging. The upload sources stay untouched until the download that ends each call. */
    int32_t *tokens, *positions, *slots, *lens, *no_targets; /* (max_seqs); the first four one block, as d_tokens.. */
    egrc_sample_request *requests;                           /* (max_seqs) */
    int32_t *padded, *fill_slots, *fill_positions;          /* (max_seqs * max_len) */
    unsigned char *seen;                                     /* (max_seqs) duplicate-slot check */
    float *out_logits, *out_lse, *out_entropy;               /* (max_seqs * V), (max_seqs) */
};

static const void *W(const egrc_model *m, size_t offset) {
    if (offset == EGRC_ABSENT) return NULL;
    return (const char *)m->params_compute + offset * egrc_dtype_size(m->be->act_dtype);
}

/* Rows of an act_dtype buffer of width `width`. */
static void *act_row(const egrc_model *m, void *base, size_t row, size_t width) {
    return (char *)base + row * width * egrc_dtype_size(m->be->act_dtype);
}

/* Carves device buffers out of one allocation; a first pass with base NULL measures. */
typedef struct carver {
    char *base;
    size_t used;
} carver;

static void *carve(carver *cv, size_t bytes) {
    size_t start = (cv->used + 255) / 256 * 256;
    cv->used = start + bytes;
    return cv->base ? cv->base + start : NULL;
}

/* Per-row step inputs in one block: tokens, positions, slots, lens. */
#define STEP_INPUTS 4

static void carve_decoder(egrc_decoder *d, carver *cv) {
    const egrc_model_config *c = &d->m->cfg;
    const size_t S = (size_t)d->max_seqs, a = egrc_dtype_size(d->m->be->act_dtype), f = sizeof(float);
    const size_t i32 = sizeof(int32_t), V = (size_t)c->vocab_size;
    const size_t slots = S + (size_t)d->pad_rows;
    const size_t cache = slots * (size_t)d->max_len * (size_t)c->n_kv_head * (size_t)c->head_dim * a;
    for (int l = 0; l < c->n_layer; l++) {
        d->k_cache[l] = carve(cv, cache);
        d->v_cache[l] = carve(cv, cache);
    }
    d->x = carve(cv, S * (size_t)c->d_model * a);
    d->h = carve(cv, S * (size_t)c->d_model * a);
    d->tmp = carve(cv, S * (size_t)c->d_model * a);
    d->qkv = carve(cv, S * (size_t)egrc_config_qkv_width(c) * a);
    d->att = carve(cv, S * (size_t)c->n_head * (size_t)c->head_dim * a);
    d->fc = carve(cv, S * (size_t)egrc_config_fc_width(c) * a);
    d->act = carve(cv, S * (size_t)c->d_ff * a);
    d->logits = carve(cv, S * V * a);
    d->logits_f32 = carve(cv, d->device_sampling ? 0 : S * V * f);
    d->d_requests = carve(cv, S * sizeof(egrc_sample_request));
    d->d_results = carve(cv, S * sizeof(egrc_sample_result));
    d->mean = carve(cv, S * f);
    d->rstd = carve(cv, S * f);
    d->loss = carve(cv, S * f);
    d->lse = carve(cv, S * f);
    d->entropy = carve(cv, S * f);
    d->d_tokens = carve(cv, STEP_INPUTS * S * i32);
    d->d_positions = d->d_tokens ? d->d_tokens + S : NULL;
    d->d_slots = d->d_tokens ? d->d_tokens + 2 * S : NULL;
    d->d_lens = d->d_tokens ? d->d_tokens + 3 * S : NULL;
    d->d_no_targets = carve(cv, S * i32);
    d->d_fill_slots = carve(cv, S * (size_t)d->max_len * i32);
    d->d_fill_positions = carve(cv, S * (size_t)d->max_len * i32);
}

void egrc_decoder_free(egrc_decoder *d) {
    if (!d) return;
    egrc_backend *be = d->m->be;
    if (d->graphs)
        for (int rows = 0; rows <= d->max_seqs; rows++)
            if (d->graphs[rows]) be->ops->graph_free(be, d->graphs[rows]);
    if (d->memory) be->ops->free(be, d->memory);
    free(d->graphs);
    free(d->warmed);
    free(d->k_cache);
    free(d->v_cache);
    free(d->length);
    free(d->tokens); /* positions, slots and lens too */
    free(d->requests);
    free(d->no_targets);
    free(d->padded);
    free(d->fill_slots);
    free(d->fill_positions);
    free(d->seen);
    free(d->out_logits);
    free(d->out_lse);
    free(d->out_entropy);
    free(d);
}

/* device_sampling: see struct egrc_decoder; such a decoder has no host logits. */
static egrc_decoder *decoder_create(egrc_model *m, int max_seqs, int max_len, int device_sampling, egrc_error *err) {
    const egrc_model_config *c = &m->cfg;
    if (max_seqs < 1 || max_len < 1) {
        egrc_fail(err, "decoder: %d sequences of %d positions: both must be positive", max_seqs, max_len);
        return NULL;
    }
    if (!egrc_config_uses_rope(c) && max_len > c->max_seq) {
        egrc_fail(err, "decoder: %d positions exceed the model's %d learned positions", max_len, c->max_seq);
        return NULL;
    }
    egrc_decoder *d = calloc(1, sizeof *d);
    if (!d) {
        egrc_fail(err, "out of host memory for the decoder");
        return NULL;
    }
    d->m = m;
    d->device_sampling = device_sampling;
    d->pad_rows = device_sampling && m->be->ops->graph_begin != NULL;
    d->max_seqs = max_seqs;
    d->call_rows = max_seqs;
    d->max_len = max_len;
    const size_t S = (size_t)max_seqs, SL = S * (size_t)max_len, V = (size_t)c->vocab_size;
    d->k_cache = calloc((size_t)c->n_layer, sizeof *d->k_cache);
    d->v_cache = calloc((size_t)c->n_layer, sizeof *d->v_cache);
    d->length = calloc(S, sizeof *d->length);
    /* zeroed: a step uploads the whole block, rows past its own included */
    d->tokens = calloc(STEP_INPUTS * S, sizeof(int32_t));
    if (d->tokens) {
        d->positions = d->tokens + S;
        d->slots = d->tokens + 2 * S;
        d->lens = d->tokens + 3 * S;
    }
    d->requests = malloc(S * sizeof *d->requests);
    d->graphs = calloc(S + 1, sizeof *d->graphs);
    d->warmed = calloc(S + 1, 1);
    d->no_targets = malloc(S * sizeof(int32_t));
    d->padded = malloc(SL * sizeof(int32_t));
    d->fill_slots = malloc(SL * sizeof(int32_t));
    d->fill_positions = malloc(SL * sizeof(int32_t));
    d->seen = malloc(S);
    d->out_logits = malloc((device_sampling ? 1 : S * V) * sizeof(float));
    d->out_lse = malloc(S * sizeof(float));
    d->out_entropy = malloc(S * sizeof(float));
    if (!d->k_cache || !d->v_cache || !d->length || !d->tokens || !d->requests || !d->graphs || !d->warmed ||
        !d->no_targets || !d->padded || !d->fill_slots || !d->fill_positions || !d->seen || !d->out_logits ||
        !d->out_lse || !d->out_entropy) {
        egrc_fail(err, "out of host memory for a decoder of %d x %d", max_seqs, max_len);
        egrc_decoder_free(d);
        return NULL;
    }
    carver measure = {NULL, 0};
    carve_decoder(d, &measure);
    d->memory = m->be->ops->alloc(m->be, measure.used, err);
    if (!d->memory) {
        egrc_error_prefix(err, "KV cache and decode buffers for %d x %d", max_seqs, max_len);
        egrc_decoder_free(d);
        return NULL;
    }
    carver real = {d->memory, 0};
    carve_decoder(d, &real);
    /* Rows never have targets: cross_entropy_forward then yields only lse and entropy. */
    for (size_t i = 0; i < S; i++) d->no_targets[i] = -1;
    m->be->ops->upload(m->be, d->d_no_targets, d->no_targets, S * sizeof(int32_t));
    return d;
}

egrc_decoder *egrc_decoder_create(egrc_model *m, int max_seqs, int max_len, egrc_error *err) {
    return decoder_create(m, max_seqs, max_len, 0, err);
}

const float *egrc_decoder_logits(const egrc_decoder *d) { return d->out_logits; }
const float *egrc_decoder_lse(const egrc_decoder *d) { return d->out_lse; }
const float *egrc_decoder_entropy(const egrc_decoder *d) { return d->out_entropy; }
int egrc_decoder_length(const egrc_decoder *d, int slot) { return d->length[slot]; }

/* T=1 statistics of the n rows in d->logits, then everything to the host;
 * -1 with the backend's latched fault when those downloads hold nothing. */
static int finish_outputs(egrc_decoder *d, int n, egrc_error *err) {
    egrc_backend *be = d->m->be;
    if (d->device_sampling) return 0; /* decoder_sample reads d->logits on the device */
    const int V = d->m->cfg.vocab_size;
    be->ops->cross_entropy_forward(be, d->loss, d->lse, d->entropy, d->logits, d->d_no_targets, n, V);
    be->ops->to_f32(be, d->logits_f32, d->logits, (size_t)n * V);
    be->ops->download(be, d->out_logits, d->logits_f32, (size_t)n * V * sizeof(float));
    be->ops->download(be, d->out_lse, d->lse, (size_t)n * sizeof(float));
    return egrc_backend_download(be, d->out_entropy, d->entropy, (size_t)n * sizeof(float), err);
}

int egrc_decoder_prefill(egrc_decoder *d, const int32_t *prompts, const int *lens, int n, int stride,
                         egrc_error *err) {
    egrc_model *m = d->m;
    egrc_backend *be = m->be;
    const egrc_model_config *c = &m->cfg;
    if (n < 1 || n > d->max_seqs) return egrc_fail(err, "prefill: %d prompts for %d slots", n, d->max_seqs);
    int T = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i] < 1 || lens[i] > stride || lens[i] > d->max_len)
            return egrc_fail(err, "prefill: prompt %d has %d tokens (1..%d allowed)", i, lens[i],
                             stride < d->max_len ? stride : d->max_len);
        if (lens[i] > T) T = lens[i];
    }
    /* Right-padded batch; padding rows are computed but never cached or read. */
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < T; t++) {
            size_t k = (size_t)i * T + t;
            d->padded[k] = t < lens[i] ? prompts[(size_t)i * stride + t] : 0;
            d->fill_slots[k] = i;
            d->fill_positions[k] = t < lens[i] ? t : -1;
        }
    }
    if (egrc_model_forward(m, d->padded, NULL, n, T, NULL, err)) return egrc_error_prefix(err, "prefill");
    const size_t NT = (size_t)n * T;
    be->ops->upload(be, d->d_fill_slots, d->fill_slots, NT * sizeof(int32_t));
    be->ops->upload(be, d->d_fill_positions, d->fill_positions, NT * sizeof(int32_t));
    for (int l = 0; l < c->n_layer; l++)
        be->ops->kv_cache_write(be, d->k_cache[l], d->v_cache[l], m->acts[l].qkv, d->d_fill_slots,
                                d->d_fill_positions, n * T, c->n_head, c->n_kv_head, c->head_dim, d->max_len);
    /* Gather each prompt's last-position logits: zero + add is an exact copy in any act_dtype. */
    const size_t V = (size_t)c->vocab_size;
    be->ops->zero(be, d->logits, (size_t)n * V * egrc_dtype_size(be->act_dtype));
    for (int i = 0; i < n; i++)
        be->ops->add(be, act_row(m, d->logits, (size_t)i, V), act_row(m, m->logits, (size_t)i * T + lens[i] - 1, V),
                     V);
    if (finish_outputs(d, n, err)) return egrc_error_prefix(err, "prefill");
    for (int s = 0; s < d->max_seqs; s++) d->length[s] = s < n ? lens[s] : 0;
    return 0;
}

static void norm(egrc_decoder *d, void *out, const void *inp, size_t w, size_t b, int n) {
    egrc_model *m = d->m;
    const egrc_backend_ops *ops = m->be->ops;
    if (egrc_config_uses_rmsnorm(&m->cfg))
        ops->rmsnorm_forward(m->be, out, d->rstd, inp, W(m, w), n, m->cfg.d_model, m->cfg.norm_eps);
    else
        ops->layernorm_forward(m->be, out, d->mean, d->rstd, inp, W(m, w), W(m, b), n, m->cfg.d_model,
                               m->cfg.norm_eps);
}

/* The model's forward for one new token per row, reading earlier positions from the cache. */
static void decode_forward(egrc_decoder *d, int n) {
    egrc_model *m = d->m;
    egrc_backend *be = m->be;
    const egrc_backend_ops *ops = be->ops;
    const egrc_model_config *c = &m->cfg;
    const int C = c->d_model, H = c->n_head, KV = c->n_kv_head, D = c->head_dim, QKV = egrc_config_qkv_width(c);
    const int F = c->d_ff, FC = egrc_config_fc_width(c);
    ops->embedding_forward(be, d->x, d->d_tokens, d->d_positions, W(m, m->wte), W(m, m->wpe), n, C);
    for (int l = 0; l < c->n_layer; l++) {
        const egrc_layer_offsets *o = &m->layers[l];
        norm(d, d->h, d->x, o->ln1_w, o->ln1_b, n);
        ops->matmul_forward(be, d->qkv, d->h, W(m, o->qkv_w), W(m, o->qkv_b), n, C, QKV);
        if (egrc_config_uses_rope(c)) ops->rope_forward(be, d->qkv, d->d_positions, n, H, KV, D, c->rope_theta);
        ops->kv_cache_write(be, d->k_cache[l], d->v_cache[l], d->qkv, d->d_slots, d->d_positions, n, H, KV, D,
                            d->max_len);
        ops->attention_decode(be, d->att, d->qkv, d->k_cache[l], d->v_cache[l], d->d_slots, d->d_lens, n, H, KV, D,
                              d->max_len);
        ops->matmul_forward(be, d->tmp, d->att, W(m, o->out_w), W(m, o->out_b), n, H * D, C);
        ops->add(be, d->x, d->tmp, (size_t)n * C);
        norm(d, d->h, d->x, o->ln2_w, o->ln2_b, n);
        ops->matmul_forward(be, d->fc, d->h, W(m, o->fc_w), W(m, o->fc_b), n, C, FC);
        if (egrc_config_uses_swiglu(c)) ops->swiglu_forward(be, d->act, d->fc, n, F);
        else ops->gelu_forward(be, d->act, d->fc, (size_t)n * F);
        ops->matmul_forward(be, d->tmp, d->act, W(m, o->proj_w), W(m, o->proj_b), n, F, C);
        ops->add(be, d->x, d->tmp, (size_t)n * C);
    }
    norm(d, d->h, d->x, m->lnf_w, m->lnf_b, n);
    ops->matmul_forward(be, d->logits, d->h, W(m, m->lm_head), NULL, n, C, c->vocab_size);
}

/* Checks a step's rows and stages their tokens, positions, slots and lens. */
static int stage_step(egrc_decoder *d, const int32_t *tokens, const int *slots, int n, egrc_error *err) {
    if (n < 1 || n > d->max_seqs) return egrc_fail(err, "decode step: %d rows for %d slots", n, d->max_seqs);
    memset(d->seen, 0, (size_t)d->max_seqs);
    for (int i = 0; i < n; i++) {
        int s = slots[i];
        if (s < 0 || s >= d->max_seqs || d->seen[s])
            return egrc_fail(err, "decode step: row %d names slot %d (invalid or repeated)", i, s);
        d->seen[s] = 1;
        if (d->length[s] < 1 || d->length[s] >= d->max_len)
            return egrc_fail(err, "decode step: slot %d holds %d of %d positions (empty or full)", s, d->length[s],
                             d->max_len);
        if (tokens[i] < 0 || tokens[i] >= d->m->cfg.vocab_size)
            return egrc_fail(err, "decode step: token id %d is outside the vocabulary", tokens[i]);
        d->tokens[i] = tokens[i];
        d->slots[i] = s;
        d->positions[i] = d->length[s];
        d->lens[i] = d->length[s] + 1;
    }
    return 0;
}

static void upload_step_inputs(egrc_decoder *d) {
    egrc_backend *be = d->m->be;
    be->ops->upload(be, d->d_tokens, d->tokens, STEP_INPUTS * (size_t)d->max_seqs * sizeof(int32_t));
}

int egrc_decoder_step(egrc_decoder *d, const int32_t *tokens, const int *slots, int n, egrc_error *err) {
    if (stage_step(d, tokens, slots, n, err)) return -1;
    upload_step_inputs(d);
    decode_forward(d, n);
    if (finish_outputs(d, n, err)) return egrc_error_prefix(err, "decode step");
    for (int i = 0; i < n; i++) d->length[slots[i]]++;
    return 0;
}

/* The backend's sample op on the n rows of the prefill: requests up,
 * results (n small records) down, in one round trip. */
static int decoder_sample(egrc_decoder *d, const egrc_sample_request *req, egrc_sample_result *res, int n,
                          egrc_error *err) {
    egrc_backend *be = d->m->be;
    be->ops->upload(be, d->d_requests, req, (size_t)n * sizeof *req);
    be->ops->sample(be, d->d_results, d->logits, d->d_requests, n, d->m->cfg.vocab_size);
    if (egrc_backend_download(be, res, d->d_results, (size_t)n * sizeof *res, err))
        return egrc_error_prefix(err, "sampling the prefill's tokens");
    return 0;
}

/* Rows a rollout step of n active rows runs (top of the file). */
static int step_rows(const egrc_decoder *d, int n) {
    if (!d->pad_rows) return n;
    int rows = 1;
    while (rows < n) rows *= 2;
    return rows < d->call_rows ? rows : d->call_rows;
}

/* Everything a rollout step runs on the device, from the staged inputs to the sample results. */
static void step_ops(egrc_decoder *d, int rows) {
    egrc_backend *be = d->m->be;
    decode_forward(d, rows);
    be->ops->sample(be, d->d_results, d->logits, d->d_requests, rows, d->m->cfg.vocab_size);
}

/* step_ops, replayed from the graph for `rows` rows where there is one,
 * else run directly or captured (the policy at the top of the file). */
static int run_step(egrc_decoder *d, int rows, egrc_error *err) {
    egrc_backend *be = d->m->be;
    const egrc_backend_ops *ops = be->ops;
    egrc_graph **graph = &d->graphs[rows];
    if (!d->pad_rows || d->graphs_off) {
        step_ops(d, rows);
        return 0;
    }
    if (*graph) {
        if (ops->graph_launch(be, *graph) == 0) {
            d->graph_steps++;
            return 0;
        }
        ops->graph_free(be, *graph); /* EGRC_GRAPH_STALE */
        *graph = NULL;
        d->warmed[rows] = 0;
    }
    if (!d->warmed[rows]) {
        d->warmed[rows] = 1;
        step_ops(d, rows);
        return 0;
    }
    egrc_error declined;
    if (ops->graph_begin(be, &declined)) {
        d->graphs_off = 1;
        step_ops(d, rows);
        return 0;
    }
    step_ops(d, rows);
    *graph = ops->graph_end(be, err);
    if (!*graph && ops->latched_error(be, err)) return egrc_error_prefix(err, "decode step"); /* a fault, not the capture */
    if (!*graph)
        return egrc_error_prefix(err, "capturing the %d-row decode step (EGRC_GPU_GRAPHS=0 runs without graphs)",
                                 rows);
    if (ops->graph_launch(be, *graph) != 0)
        return egrc_fail(err, "the %d-row decode step's graph is stale as soon as captured: a backend bug", rows);
    d->graph_steps++;
    return 0;
}

/* A rollout's decode step with the backend's sample op: appends tokens[i]
 * to slot slots[i], as egrc_decoder_step does, and samples each row's next
 * token under req[i] into res[i]. Padding rows (step_rows) read token 0 at
 * position 0 of the spare slot and sample greedily. One upload of the row
 * inputs, one of the requests, the step, one download of the results. */
static int decoder_step_sample(egrc_decoder *d, const int32_t *tokens, const int *slots, int n,
                               const egrc_sample_request *req, egrc_sample_result *res, egrc_error *err) {
    egrc_backend *be = d->m->be;
    if (stage_step(d, tokens, slots, n, err)) return -1;
    const int rows = step_rows(d, n);
    const egrc_sample_request greedy = {0.0f, 1.0f, 0, 0.0f};
    memcpy(d->requests, req, (size_t)n * sizeof *req);
    for (int i = n; i < rows; i++) {
        d->tokens[i] = 0;
        d->slots[i] = d->max_seqs; /* the spare slot */
        d->positions[i] = 0;
        d->lens[i] = 1;
        d->requests[i] = greedy;
    }
    upload_step_inputs(d);
    be->ops->upload(be, d->d_requests, d->requests, (size_t)rows * sizeof *d->requests);
    if (run_step(d, rows, err)) return -1;
    if (egrc_backend_download(be, res, d->d_results, (size_t)n * sizeof *res, err))
        return egrc_error_prefix(err, "decode step");
    for (int i = 0; i < n; i++) d->length[slots[i]]++;
    return 0;
}

/* ---- rollouts ---- */

int egrc_rollout_alloc(egrc_rollout *r, int n, int max_prompt, int max_new, egrc_error *err) {
    memset(r, 0, sizeof *r);
    if (n < 1 || max_prompt < 1 || max_new < 1)
        return egrc_fail(err, "rollout of %d sequences, prompts of %d, budget %d: all must be positive", n,
                         max_prompt, max_new);
    r->n = n;
    r->max_prompt = max_prompt;
    r->max_new = max_new;
    r->stride = max_prompt + max_new;
    const size_t per_token = (size_t)n * max_new;
    r->tokens = calloc((size_t)n * r->stride, sizeof *r->tokens);
    r->prompt_len = calloc((size_t)n, sizeof *r->prompt_len);
    r->length = calloc((size_t)n, sizeof *r->length);
    r->finish = calloc((size_t)n, sizeof *r->finish);
    r->logprob = calloc(per_token, sizeof(float));
    r->entropy = calloc(per_token, sizeof(float));
    r->sample_logprob = calloc(per_token, sizeof(float));
    r->sample_entropy = calloc(per_token, sizeof(float));
    if (!r->tokens || !r->prompt_len || !r->length || !r->finish || !r->logprob || !r->entropy ||
        !r->sample_logprob || !r->sample_entropy) {
        egrc_rollout_free(r);
        return egrc_fail(err, "out of host memory for a rollout of %d x %d", n, r->stride);
    }
    return 0;
}

void egrc_rollout_free(egrc_rollout *r) {
    free(r->tokens);
    free(r->prompt_len);
    free(r->length);
    free(r->finish);
    free(r->logprob);
    free(r->entropy);
    free(r->sample_logprob);
    free(r->sample_entropy);
    memset(r, 0, sizeof *r);
}

int egrc_rollout_batch(const egrc_rollout *r, int first, int count, const unsigned char *keep, int32_t *tokens,
                       int32_t *targets, int *index, int *T) {
    int rows = 0, width = 0;
    for (int i = first; i < first + count; i++) {
        if (keep && !keep[i]) continue;
        index[rows++] = i;
        if (r->prompt_len[i] + r->length[i] > width) width = r->prompt_len[i] + r->length[i];
    }
    for (int b = 0; b < rows; b++) {
        const int i = index[b], p = r->prompt_len[i], len = p + r->length[i];
        const int32_t *src = r->tokens + (size_t)i * r->stride;
        int32_t *tok = tokens + (size_t)b * width, *tgt = targets + (size_t)b * width;
        for (int t = 0; t < width; t++) {
            tok[t] = t < len ? src[t] : 0;
            tgt[t] = t + 1 >= p && t + 1 < len ? src[t + 1] : -1;
        }
    }
    *T = width;
    return rows;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A rollout decoder for a call of n rows of up to len positions: the one
 * kept on the model (top of the file) if it fits, else a new one of that
 * shape. Either way the model keeps none until the call ends. */
static egrc_decoder *rollout_decoder(egrc_model *m, int n, int len, int device_sampling, egrc_error *err) {
    egrc_decoder *d = m->rollout_decoder;
    m->rollout_decoder = NULL;
    if (!d || d->max_seqs < n || d->max_len < len || d->device_sampling != device_sampling) {
        egrc_decoder_free(d);
        d = decoder_create(m, n, len, device_sampling, err);
        if (!d) return NULL;
    }
    d->call_rows = n;
    d->graph_steps = 0;
    return d;
}

/* Per-sequence sampling state, allocated once per egrc_generate call. */
typedef struct gen_state {
    egrc_sampler *samplers;       /* host sampling only (no sample op): one per sequence */
    egrc_sample_request *requests; /* sample op: one per active row */
    egrc_sample_result *results;
    egrc_rng *rngs;
    int *active;         /* sequence of each decoder output row */
    int32_t *next;       /* token each active row feeds next */
    unsigned char *done; /* (n) */
} gen_state;

static void gen_state_free(gen_state *g, int n) {
    if (g->samplers)
        for (int i = 0; i < n; i++) egrc_sampler_free(&g->samplers[i]);
    free(g->samplers);
    free(g->requests);
    free(g->results);
    free(g->rngs);
    free(g->active);
    free(g->next);
    free(g->done);
}

/* Records row r's sampled token (sequence g->active[r]) and whether it ends the sequence. */
static void record_token(const egrc_sampling_config *cfg, gen_state *g, int r, const egrc_sample_result *s,
                         egrc_rollout *out) {
    const int i = g->active[r], j = out->length[i];
    const size_t k = (size_t)i * out->max_new + j;
    egrc_rollout_completion(out, i)[j] = s->token;
    out->logprob[k] = s->logprob;
    out->entropy[k] = s->entropy;
    out->sample_logprob[k] = s->sample_logprob;
    out->sample_entropy[k] = s->sample_entropy;
    out->length[i] = j + 1;
    g->next[r] = s->token;
    if (egrc_sampling_is_stop(cfg, s->token)) {
        out->finish[i] = EGRC_FINISH_STOP;
        g->done[i] = 1;
    } else if (j + 1 == out->max_new) {
        out->finish[i] = EGRC_FINISH_LENGTH;
        g->done[i] = 1;
    }
}

/* The sample op's requests for the n_active rows. Each row's uniform is
 * drawn here from its own generator exactly when egrc_sample_token would
 * draw it (not when greedy), one per sampled token, so seeds and resumes
 * behave the same on every backend. */
static void draw_requests(const egrc_sampling_config *cfg, gen_state *g, int n_active) {
    const int greedy = cfg->temperature <= EGRC_GREEDY_TEMPERATURE;
    for (int r = 0; r < n_active; r++) {
        egrc_sample_request *q = &g->requests[r];
        q->temperature = cfg->temperature;
        q->top_p = cfg->top_p;
        q->top_k = cfg->top_k;
        q->u = greedy ? 0.0f : egrc_rng_uniform(&g->rngs[g->active[r]]);
    }
}

/* Without a sample op: samples the decoder's host outputs for the n_active
 * rows and records the tokens. Rows are independent, so they run in parallel. */
static void host_sample_rows(egrc_decoder *d, const egrc_sampling_config *cfg, gen_state *g, int n_active,
                             egrc_rollout *out) {
    const int V = d->m->cfg.vocab_size;
    const float *logits = egrc_decoder_logits(d), *lse = egrc_decoder_lse(d), *ent = egrc_decoder_entropy(d);
#pragma omp parallel for schedule(dynamic)
    for (int r = 0; r < n_active; r++) {
        const int i = g->active[r];
        const float *row = logits + (size_t)r * V;
        egrc_sample s = egrc_sample_token(&g->samplers[i], row, cfg, &g->rngs[i]);
        egrc_sample_result res = {s.token, row[s.token] - lse[r], ent[r], s.logprob, s.entropy};
        record_token(cfg, g, r, &res, out);
    }
}

int egrc_generate(egrc_model *m, const int32_t *prompts, const int *prompt_lens, int n_prompts, int prompt_stride,
                  const egrc_sampling_config *cfg, egrc_rollout *out, egrc_error *err) {
    const egrc_model_config *c = &m->cfg;
    memset(out, 0, sizeof *out);
    if (egrc_sampling_validate(cfg, c->vocab_size, err)) return -1;
    if (n_prompts < 1) return egrc_fail(err, "generate: no prompts");
    int max_prompt = 0;
    for (int i = 0; i < n_prompts; i++) {
        if (prompt_lens[i] < 1 || prompt_lens[i] > prompt_stride)
            return egrc_fail(err, "generate: prompt %d has length %d (1..%d allowed)", i, prompt_lens[i],
                             prompt_stride);
        if (prompt_lens[i] > max_prompt) max_prompt = prompt_lens[i];
    }
    const int max_new = cfg->max_new_tokens;
    /* The training forward sees prompt + completion, so the whole must fit the positions. */
    if (!egrc_config_uses_rope(c) && max_prompt + max_new > c->max_seq)
        return egrc_fail(err, "generate: the longest prompt (%d tokens) plus max_new_tokens (%d) exceeds the model's %d positions",
                         max_prompt, max_new, c->max_seq);
    if (egrc_rollout_alloc(out, n_prompts, max_prompt, max_new, err)) return -1;
    for (int i = 0; i < n_prompts; i++) {
        out->prompt_len[i] = prompt_lens[i];
        memcpy(out->tokens + (size_t)i * out->stride, prompts + (size_t)i * prompt_stride,
               (size_t)prompt_lens[i] * sizeof(int32_t));
    }
    /* The last sampled token is never fed back, so the cache needs one position less. */
    const int device_sampling = m->be->ops->sample != NULL;
    egrc_decoder *d = rollout_decoder(m, n_prompts, max_prompt + max_new - 1, device_sampling, err);
    gen_state g = {0};
    const size_t n = (size_t)n_prompts;
    g.samplers = calloc(n, sizeof *g.samplers);
    g.requests = malloc(n * sizeof *g.requests);
    g.results = malloc(n * sizeof *g.results);
    g.rngs = malloc(n * sizeof *g.rngs);
    g.active = malloc(n * sizeof *g.active);
    g.next = malloc(n * sizeof *g.next);
    g.done = calloc(n, 1);
    int rc = -1;
    if (!d) goto done;
    if (!g.samplers || !g.requests || !g.results || !g.rngs || !g.active || !g.next || !g.done) {
        egrc_fail(err, "out of host memory for %d sequences", n_prompts);
        goto done;
    }
    for (int i = 0; i < n_prompts; i++) {
        if (!device_sampling && egrc_sampler_init(&g.samplers[i], c->vocab_size, err)) goto done;
        egrc_rng_seed(&g.rngs[i], cfg->seed + (uint64_t)i);
        g.active[i] = i;
    }
    double start = now_seconds();
    if (egrc_decoder_prefill(d, prompts, prompt_lens, n_prompts, prompt_stride, err)) goto done;
    double prefilled = now_seconds();
    /* The first tokens from the prefill's logits; then each step feeds the
     * last tokens and, with the sample op, samples the next in the same trip. */
    if (device_sampling) {
        draw_requests(cfg, &g, n_prompts);
        if (decoder_sample(d, g.requests, g.results, n_prompts, err)) goto done;
        for (int r = 0; r < n_prompts; r++) record_token(cfg, &g, r, &g.results[r], out);
    } else {
        host_sample_rows(d, cfg, &g, n_prompts, out);
    }
    for (int n_active = n_prompts;;) {
        int kept = 0;
        for (int r = 0; r < n_active; r++) {
            if (g.done[g.active[r]]) continue;
            g.active[kept] = g.active[r];
            g.next[kept] = g.next[r];
            kept++;
        }
        n_active = kept;
        if (n_active == 0) break;
        if (device_sampling) {
            draw_requests(cfg, &g, n_active);
            if (decoder_step_sample(d, g.next, g.active, n_active, g.requests, g.results, err)) goto done;
            for (int r = 0; r < n_active; r++) record_token(cfg, &g, r, &g.results[r], out);
        } else {
            if (egrc_decoder_step(d, g.next, g.active, n_active, err)) goto done;
            host_sample_rows(d, cfg, &g, n_active, out);
        }
        out->decode_steps++;
    }
    out->prefill_seconds = prefilled - start;
    out->decode_seconds = now_seconds() - prefilled;
    out->graph_steps = d->graph_steps;
    rc = 0;
done:
    gen_state_free(&g, n_prompts);
    /* Kept for the next call while it captures; after an error its state is unknown. */
    if (rc == 0 && d->pad_rows && !d->graphs_off) m->rollout_decoder = d;
    else egrc_decoder_free(d);
    if (rc) egrc_rollout_free(out);
    return rc;
}

void egrc_generate_release(egrc_model *m) {
    egrc_decoder_free(m->rollout_decoder);
    m->rollout_decoder = NULL;
}
