#include "train.h"

#include <math.h>

egrc_optim_config egrc_optim_defaults(int total_steps) {
    egrc_optim_config c = {3e-4f, 3e-5f, 0, total_steps, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    return c;
}

float egrc_lr_at(const egrc_optim_config *cfg, int step) {
    if (step < cfg->warmup_steps) return cfg->lr * (float)(step + 1) / (float)cfg->warmup_steps;
    int decay_steps = cfg->total_steps - cfg->warmup_steps;
    if (decay_steps <= 0) return cfg->lr;
    double progress = (double)(step - cfg->warmup_steps) / decay_steps;
    if (progress > 1.0) progress = 1.0;
    return (float)(cfg->min_lr + 0.5 * (1.0 + cos(M_PI * progress)) * (cfg->lr - cfg->min_lr));
}

/* The gradient norm into *norm: 0, or -1 with the backend's latched fault. */
static int grad_norm_of(egrc_model *m, float *norm, egrc_error *err) {
    float sum_sq;
    m->be->ops->sum_squares(m->be, m->scalar, m->grads, m->n_params);
    if (egrc_backend_download(m->be, &sum_sq, m->scalar, sizeof sum_sq, err)) return -1;
    *norm = sqrtf(sum_sq);
    return 0;
}

/* NaN when the backend has latched a fault: no norm was computed. */
float egrc_model_grad_norm(egrc_model *m) {
    float norm;
    return grad_norm_of(m, &norm, NULL) ? NAN : norm;
}

void egrc_model_reset_optimizer(egrc_model *m) {
    if (!m->adam_m) return;
    size_t bytes = m->n_params * sizeof(float);
    m->be->ops->zero(m->be, m->adam_m, bytes);
    m->be->ops->zero(m->be, m->adam_v, bytes);
}

int egrc_model_optimizer_step(egrc_model *m, const egrc_optim_config *cfg, int step, float *grad_norm,
                              egrc_error *err) {
    egrc_backend *be = m->be;
    const egrc_backend_ops *ops = be->ops;
    size_t bytes = m->n_params * sizeof(float);
    if (!m->adam_m) {
        m->adam_m = ops->alloc(be, bytes, err);
        m->adam_v = m->adam_m ? ops->alloc(be, bytes, err) : NULL;
        if (!m->adam_v) return egrc_error_prefix(err, "AdamW moments");
        ops->zero(be, m->adam_m, bytes);
        ops->zero(be, m->adam_v, bytes);
    }
    float norm;
    if (grad_norm_of(m, &norm, err)) return egrc_error_prefix(err, "step %d", step);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm)) return egrc_fail(err, "step %d: the gradient norm is %g; lower the learning rate", step, norm);
    /* As torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when above;
     * the scale is applied inside the AdamW pass. */
    float grad_scale = cfg->grad_clip > 0.0f && norm > cfg->grad_clip ? cfg->grad_clip / (norm + 1e-6f) : 1.0f;
    float lr = egrc_lr_at(cfg, step);
    size_t act = egrc_dtype_size(be->act_dtype);
    void *compute = m->params_compute == m->params ? NULL : m->params_compute;
    size_t decayed = m->n_decay_params, rest = m->n_params - decayed;
    ops->adamw(be, m->params, compute, m->grads, grad_scale, m->adam_m, m->adam_v, decayed, lr, cfg->beta1, cfg->beta2, cfg->eps,
               cfg->weight_decay, step + 1);
    ops->adamw(be, m->params + decayed, compute ? (char *)compute + decayed * act : NULL, m->grads + decayed,
               grad_scale, m->adam_m + decayed, m->adam_v + decayed, rest, lr, cfg->beta1, cfg->beta2, cfg->eps, 0.0f, step + 1);
    /* A fault in the update is this step's: reported now, before the caller
     * logs the step or saves a checkpoint of the weights it left. The wait
     * costs the overlap of the update with the host's next batch, a small
     * share of a step. */
    if (egrc_backend_synchronize(be, err)) return egrc_error_prefix(err, "step %d, optimizer", step);
    return 0;
}

int egrc_train_step(egrc_model *m, const egrc_optim_config *cfg, int step, const int32_t *tokens,
                    const int32_t *targets, int micro_batches, int B, int T, float loss_weight, float *loss,
                    float *grad_norm, egrc_error *err) {
    egrc_model_zero_grad(m);
    double loss_sum = 0.0;
    size_t stride = (size_t)B * T;
    for (int k = 0; k < micro_batches; k++) {
        float micro_loss;
        if (egrc_model_forward(m, tokens + k * stride, targets + k * stride, B, T, &micro_loss, err) ||
            egrc_model_backward(m, loss_weight / (float)micro_batches, err))
            return egrc_error_prefix(err, "step %d, micro-batch %d", step, k);
        loss_sum += micro_loss;
    }
    if (loss) *loss = (float)(loss_sum / micro_batches);
    return egrc_model_optimizer_step(m, cfg, step, grad_norm, err);
}
