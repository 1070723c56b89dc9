/* The forward and backward passes, top to bottom, as a sequence of backend
 * ops. Shapes: N = B*T rows, C model width, QKV packed q|k|v width, F MLP width. */
#include <stdlib.h>
#include <string.h>

#include "model.h"

/* Typed views into the parameter, compute-copy and gradient buffers. */
static const void *W(const egrc_model *m, size_t offset) {
    if (offset == EGRC_ABSENT) return NULL;
    return (const char *)m->params_compute + offset * egrc_dtype_size(m->be->act_dtype);
}

static float *G(const egrc_model *m, size_t offset) { return offset == EGRC_ABSENT ? NULL : m->grads + offset; }

static void norm_forward(egrc_model *m, void *out, float *mean, float *rstd, const void *inp, size_t w, size_t b,
                         int N) {
    const egrc_backend_ops *ops = m->be->ops;
    if (egrc_config_uses_rmsnorm(&m->cfg))
        ops->rmsnorm_forward(m->be, out, rstd, inp, W(m, w), N, m->cfg.d_model, m->cfg.norm_eps);
    else
        ops->layernorm_forward(m->be, out, mean, rstd, inp, W(m, w), W(m, b), N, m->cfg.d_model, m->cfg.norm_eps);
}

static void norm_backward(egrc_model *m, void *dinp, const void *dout, const void *inp, size_t w, size_t b,
                          const float *mean, const float *rstd, int N) {
    const egrc_backend_ops *ops = m->be->ops;
    if (egrc_config_uses_rmsnorm(&m->cfg))
        ops->rmsnorm_backward(m->be, dinp, G(m, w), dout, inp, W(m, w), rstd, N, m->cfg.d_model);
    else
        ops->layernorm_backward(m->be, dinp, G(m, w), G(m, b), dout, inp, W(m, w), mean, rstd, N, m->cfg.d_model);
}

int egrc_model_forward(egrc_model *m, const int32_t *tokens, const int32_t *targets, int B, int T, float *mean_loss,
                       egrc_error *err) {
    const egrc_model_config *c = &m->cfg;
    egrc_backend *be = m->be;
    const egrc_backend_ops *ops = be->ops;
    if (egrc_model_ensure_activations(m, B, T, err)) return -1;
    const int N = B * T, C = c->d_model, H = c->n_head, KV = c->n_kv_head, D = c->head_dim;
    const int QKV = egrc_config_qkv_width(c), HD = H * D, F = c->d_ff, FC = egrc_config_fc_width(c);

    /* Validate ids on the host: a bad id would index outside the embedding. */
    int32_t *positions = malloc((size_t)N * sizeof(int32_t));
    if (!positions) return egrc_fail(err, "out of host memory");
    int valid = 0;
    for (int i = 0; i < N; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size) {
            free(positions);
            return egrc_fail(err, "token id %d at position %d is outside the vocabulary (0..%d)", tokens[i], i,
                             c->vocab_size - 1);
        }
        if (targets && targets[i] >= c->vocab_size) {
            free(positions);
            return egrc_fail(err, "target id %d at position %d is outside the vocabulary", targets[i], i);
        }
        if (targets && targets[i] >= 0) valid++;
        positions[i] = i % T;
    }
    ops->upload(be, m->tokens, tokens, (size_t)N * sizeof(int32_t));
    ops->upload(be, m->positions, positions, (size_t)N * sizeof(int32_t));
    if (targets) ops->upload(be, m->targets, targets, (size_t)N * sizeof(int32_t));

    ops->embedding_forward(be, m->acts[0].x_in, m->tokens, m->positions, W(m, m->wte), W(m, m->wpe), N, C);
    for (int l = 0; l < c->n_layer; l++) {
        const egrc_layer_offsets *o = &m->layers[l];
        egrc_layer_acts *x = &m->acts[l];
        void *x_out = l + 1 < c->n_layer ? m->acts[l + 1].x_in : m->x_final;
        /* attention block: x_mid = x_in + out(attn(rope(qkv(norm(x_in))))) */
        norm_forward(m, x->ln1, x->ln1_mean, x->ln1_rstd, x->x_in, o->ln1_w, o->ln1_b, N);
        ops->matmul_forward(be, x->qkv, x->ln1, W(m, o->qkv_w), W(m, o->qkv_b), N, C, QKV);
        if (egrc_config_uses_rope(c)) ops->rope_forward(be, x->qkv, m->positions, N, H, KV, D, c->rope_theta);
        ops->attention_forward(be, x->att, x->att_scratch, x->qkv, B, T, H, KV, D);
        ops->matmul_forward(be, x->x_mid, x->att, W(m, o->out_w), W(m, o->out_b), N, HD, C);
        ops->add(be, x->x_mid, x->x_in, (size_t)N * C);
        /* MLP block: x_out = x_mid + proj(act(fc(norm(x_mid)))) */
        norm_forward(m, x->ln2, x->ln2_mean, x->ln2_rstd, x->x_mid, o->ln2_w, o->ln2_b, N);
        ops->matmul_forward(be, x->fc, x->ln2, W(m, o->fc_w), W(m, o->fc_b), N, C, FC);
        if (egrc_config_uses_swiglu(c)) ops->swiglu_forward(be, x->act, x->fc, N, F);
        else ops->gelu_forward(be, x->act, x->fc, (size_t)N * F);
        ops->matmul_forward(be, x_out, x->act, W(m, o->proj_w), W(m, o->proj_b), N, F, C);
        ops->add(be, x_out, x->x_mid, (size_t)N * C);
    }
    norm_forward(m, m->lnf, m->lnf_mean, m->lnf_rstd, m->x_final, m->lnf_w, m->lnf_b, N);
    ops->matmul_forward(be, m->logits, m->lnf, W(m, m->lm_head), NULL, N, C, c->vocab_size);

    m->last_B = B;
    m->last_T = T;
    m->last_has_targets = targets != NULL;
    m->last_valid_targets = valid;
    if (targets) {
        ops->cross_entropy_forward(be, m->losses, m->lse, m->entropy, m->logits, m->targets, N, c->vocab_size);
        if (mean_loss) {
            if (egrc_backend_download(be, m->host_losses, m->losses, (size_t)N * sizeof(float), err)) {
                free(positions);
                return -1;
            }
            double sum = 0.0;
            for (int i = 0; i < N; i++) sum += m->host_losses[i];
            *mean_loss = valid ? (float)(sum / valid) : 0.0f;
        }
    }
    free(positions);
    return 0;
}

void egrc_model_zero_grad(egrc_model *m) { m->be->ops->zero(m->be, m->grads, m->n_params * sizeof(float)); }

int egrc_model_backward(egrc_model *m, float loss_scale, egrc_error *err) {
    if (!m->last_has_targets) return egrc_fail(err, "backward needs a forward pass with targets first");
    /* d(mean loss)/d(loss_i) = 1/valid for every counted token. */
    const int N = m->last_B * m->last_T;
    float per_token = m->last_valid_targets ? loss_scale / (float)m->last_valid_targets : 0.0f;
    for (int i = 0; i < N; i++) m->host_losses[i] = per_token;
    return egrc_model_backward_weighted(m, m->host_losses, NULL, err);
}

int egrc_model_backward_weighted(egrc_model *m, const float *dloss, const float *dentropy, egrc_error *err) {
    const egrc_model_config *c = &m->cfg;
    egrc_backend *be = m->be;
    const egrc_backend_ops *ops = be->ops;
    if (!m->last_has_targets) return egrc_fail(err, "backward needs a forward pass with targets first");
    const int B = m->last_B, T = m->last_T, N = B * T, C = c->d_model, H = c->n_head, KV = c->n_kv_head;
    const int D = c->head_dim, QKV = egrc_config_qkv_width(c), HD = H * D, F = c->d_ff, FC = egrc_config_fc_width(c);
    m->last_has_targets = 0; /* the logits are about to be overwritten */

    ops->upload(be, m->dloss, dloss, (size_t)N * sizeof(float));
    if (dentropy) ops->upload(be, m->dentropy, dentropy, (size_t)N * sizeof(float));
    ops->cross_entropy_backward(be, m->logits, m->logits, m->lse, m->entropy, m->dloss, dentropy ? m->dentropy : NULL,
                                m->targets, N, c->vocab_size);
    ops->matmul_backward(be, m->dln, G(m, m->lm_head), NULL, m->logits, m->lnf, W(m, m->lm_head), N, C,
                         c->vocab_size);
    ops->zero(be, m->dres, (size_t)N * C * egrc_dtype_size(be->act_dtype));
    norm_backward(m, m->dres, m->dln, m->x_final, m->lnf_w, m->lnf_b, m->lnf_mean, m->lnf_rstd, N);

    for (int l = c->n_layer - 1; l >= 0; l--) {
        const egrc_layer_offsets *o = &m->layers[l];
        egrc_layer_acts *x = &m->acts[l];
        /* MLP block; dres holds d(x_out) and becomes d(x_mid) */
        ops->matmul_backward(be, m->dact, G(m, o->proj_w), G(m, o->proj_b), m->dres, x->act, W(m, o->proj_w), N, F, C);
        if (egrc_config_uses_swiglu(c)) ops->swiglu_backward(be, m->dfc, m->dact, x->fc, N, F);
        else ops->gelu_backward(be, m->dfc, x->fc, m->dact, (size_t)N * F);
        ops->matmul_backward(be, m->dln, G(m, o->fc_w), G(m, o->fc_b), m->dfc, x->ln2, W(m, o->fc_w), N, C, FC);
        norm_backward(m, m->dres, m->dln, x->x_mid, o->ln2_w, o->ln2_b, x->ln2_mean, x->ln2_rstd, N);
        /* attention block; dres becomes d(x_in) */
        ops->matmul_backward(be, m->datt, G(m, o->out_w), G(m, o->out_b), m->dres, x->att, W(m, o->out_w), N, HD, C);
        ops->attention_backward(be, m->dqkv, m->datt, x->qkv, x->att, x->att_scratch, B, T, H, KV, D);
        if (egrc_config_uses_rope(c)) ops->rope_backward(be, m->dqkv, m->positions, N, H, KV, D, c->rope_theta);
        ops->matmul_backward(be, m->dln, G(m, o->qkv_w), G(m, o->qkv_b), m->dqkv, x->ln1, W(m, o->qkv_w), N, C, QKV);
        norm_backward(m, m->dres, m->dln, x->x_in, o->ln1_w, o->ln1_b, x->ln1_mean, x->ln1_rstd, N);
    }
    ops->embedding_backward(be, G(m, m->wte), G(m, m->wpe), m->dres, m->tokens, m->positions, N, C);
    return 0;
}

/* Downloads logits [first, first + n) of the last forward as fp32. fp32
 * logits download as they are. Narrower ones (bf16) are converted by to_f32
 * into the room carve_all (model.c) leaves after them, one chunk at a time,
 * and each chunk downloaded; the logits themselves stay intact, since
 * backward still reads them. That room starts at the first 4-byte boundary
 * past the logits and holds at least one float. 0, or -1 with the
 * backend's latched fault. */
static int download_logits_f32(egrc_model *m, float *host, size_t first, size_t n, egrc_error *err) {
    egrc_backend *be = m->be;
    const size_t a = egrc_dtype_size(be->act_dtype), f = sizeof(float);
    char *logits = m->logits;
    if (a == f) return egrc_backend_download(be, host, logits + first * f, n * f, err);
    const size_t count = (size_t)m->act_B * m->act_T * m->cfg.vocab_size;
    const size_t room = (count * a + f - 1) / f * f, room_end = count * f + f;
    const size_t chunk = (room_end - room) / f;
    float *staging = (float *)(logits + room);
    for (size_t done = 0; done < n; done += chunk) {
        const size_t part = n - done < chunk ? n - done : chunk;
        be->ops->to_f32(be, staging, logits + (first + done) * a, part);
        if (egrc_backend_download(be, host + done, staging, part * f, err)) return -1;
    }
    return 0;
}

/* The three downloads below return nothing (model.h): after a fault, what
 * they wrote is not to be used, and the model's next checked wait (a forward
 * with a loss, an optimizer step, a rollout) reports the fault, which stays
 * latched until then. */
void egrc_model_download_logits(egrc_model *m, float *host) {
    download_logits_f32(m, host, 0, (size_t)m->last_B * m->last_T * m->cfg.vocab_size, NULL);
}

void egrc_model_download_losses(egrc_model *m, float *host) {
    size_t n = (size_t)m->last_B * m->last_T;
    m->be->ops->download(m->be, host, m->losses, n * sizeof(float));
}

void egrc_model_download_entropy(egrc_model *m, float *host) {
    size_t n = (size_t)m->last_B * m->last_T;
    m->be->ops->download(m->be, host, m->entropy, n * sizeof(float));
}

int egrc_model_greedy(egrc_model *m, int32_t *tokens, int prompt_len, int n_new, egrc_error *err) {
    const int V = m->cfg.vocab_size;
    float *row = malloc((size_t)V * sizeof(float));
    if (!row) return egrc_fail(err, "out of host memory");
    for (int len = prompt_len; len < prompt_len + n_new; len++) {
        if (egrc_model_forward(m, tokens, NULL, 1, len, NULL, err)) {
            free(row);
            return -1;
        }
        if (download_logits_f32(m, row, (size_t)(len - 1) * V, (size_t)V, err)) {
            free(row);
            return -1;
        }
        int best = 0;
        for (int v = 1; v < V; v++)
            if (row[v] > row[best]) best = v;
        tokens[len] = best;
    }
    free(row);
    return 0;
}
