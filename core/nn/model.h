/* The decoder-only transformer: parameters, forward, backward.
 *
 * Like llm.c, every layer has an explicit forward and backward, and all
 * parameters live in ONE backend allocation (so are their gradients and the
 * AdamW moments), which makes the optimizer, gradient clipping and
 * checkpointing single calls over one buffer. Parameters with two or more
 * dimensions (matrices, embeddings) come first, then the one-dimensional ones
 * (norm weights, biases): weight decay applies to the first range only.
 *
 * Internally every linear weight is stored (out, in) like torch.nn.Linear, and
 * q|k|v (and SwiGLU's gate|up) are packed into one matrix so each is one GEMM.
 * The Hugging Face layouts (GPT-2's Conv1D [in, out], separate q/k/v) are
 * translated at load and save time by model_hf.c. */
#ifndef EGRC_MODEL_H
#define EGRC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "base/error.h"
#include "io/model_config.h"

#define EGRC_ABSENT ((size_t)-1)

/* Offsets (in floats) of a layer's parameters in the parameter buffer;
 * EGRC_ABSENT where the architecture has no such tensor. */
typedef struct egrc_layer_offsets {
    size_t ln1_w, ln1_b;
    size_t qkv_w, qkv_b;   /* (QKV, C), (QKV) */
    size_t out_w, out_b;   /* (C, H*D), (C) */
    size_t ln2_w, ln2_b;
    size_t fc_w, fc_b;     /* (F or 2F, C): SwiGLU rows are [gate | up] */
    size_t proj_w, proj_b; /* (C, F), (C) */
} egrc_layer_offsets;

typedef struct egrc_param_tensor {
    char name[48]; /* internal name, e.g. "layers.3.qkv_w" */
    int rows, cols; /* 1-D tensors have rows == 1 */
    size_t offset;  /* in floats */
} egrc_param_tensor;

/* Per-layer activations saved by forward for backward (device pointers). */
typedef struct egrc_layer_acts {
    void *x_in;     /* (N,C) residual stream entering the layer */
    void *ln1;      /* (N,C) */
    float *ln1_mean, *ln1_rstd;
    void *qkv;      /* (N,QKV), after RoPE */
    void *att;      /* (N,H*D) */
    void *att_scratch;
    void *x_mid;    /* (N,C) residual after attention */
    void *ln2;      /* (N,C) */
    float *ln2_mean, *ln2_rstd;
    void *fc;       /* (N,F or 2F) */
    void *act;      /* (N,F) */
} egrc_layer_acts;

typedef struct egrc_model {
    egrc_model_config cfg;
    egrc_backend *be;

    egrc_param_tensor *tensors;
    int n_tensors;
    size_t n_params;       /* total floats */
    size_t n_decay_params; /* floats in [0, n_decay_params) get weight decay */
    egrc_layer_offsets *layers;
    size_t wte, wpe, lnf_w, lnf_b, lm_head; /* lm_head == wte when tied */

    float *params;        /* fp32 master weights */
    void *params_compute; /* act_dtype copy; == params on fp32 backends */
    float *grads;
    float *adam_m, *adam_v; /* allocated by the first optimizer step */

    /* Activations, sized for B*T rows; reallocated when a larger batch comes. */
    int act_B, act_T;
    void *act_memory;
    egrc_layer_acts *acts;
    void *x_final, *lnf;
    float *lnf_mean, *lnf_rstd;
    void *logits;   /* (N,V); backward overwrites it with dlogits */
    float *losses;  /* (N) per-token -log p(target) */
    float *lse;     /* (N) */
    float *entropy; /* (N) next-token entropy at T=1 */
    float *dloss;   /* (N) */
    float *dentropy; /* (N) */
    int32_t *tokens, *targets, *positions;
    void *dres, *dln, *dqkv, *datt, *dfc, *dact; /* backward scratch */
    void *scalar; /* one device float for reductions */

    /* Bookkeeping of the last forward. */
    int last_B, last_T, last_valid_targets, last_has_targets;
    float *host_losses; /* (N) staging for the loss download */

    /* The rollout decoder kept between egrc_generate calls, with its KV
     * cache and captured graphs (core/nn/generate.c); NULL when none is kept. */
    struct egrc_decoder *rollout_decoder;

    /* Where the weights came from, for a save without loss (model_save.c):
     * the Hugging Face folder they were loaded from (NULL for a model egrc
     * created) and the dtype its weights were stored in. */
    char *source_dir;
    egrc_dtype source_dtype;
} egrc_model;

/* Creates a model with zeroed parameters (gradients zeroed too). */
egrc_model *egrc_model_create(egrc_backend *be, const egrc_model_config *cfg, egrc_error *err);
void egrc_model_free(egrc_model *m);
/* GPT-2-style init: N(0, 0.02), residual projections scaled by 1/sqrt(2L), norms 1, biases 0. */
void egrc_model_init_random(egrc_model *m, uint64_t seed);
/* Makes sure activations for a (B,T) batch exist (reallocating on a new shape). */
int egrc_model_ensure_activations(egrc_model *m, int B, int T, egrc_error *err);
/* Copies host fp32 parameters (n_params floats, internal layout) to the device. */
void egrc_model_set_params(egrc_model *m, const float *host_params);

/* Forward over tokens (B,T) (host memory). With targets (B,T) (host; < 0 =
 * ignored), also computes per-token losses/entropies and, in *mean_loss (may
 * be NULL), the mean loss over valid targets. Positions are 0..T-1. */
int egrc_model_forward(egrc_model *m, const int32_t *tokens, const int32_t *targets, int B, int T, float *mean_loss,
                       egrc_error *err);
/* Backward of (loss_scale * mean loss) of the last forward, ACCUMULATING into
 * the gradients (call egrc_model_zero_grad first; gradient accumulation over
 * k micro-batches passes loss_scale = 1/k). Overwrites the logits. */
int egrc_model_backward(egrc_model *m, float loss_scale, egrc_error *err);
/* Backward of an arbitrary per-token objective J of the last forward,
 * ACCUMULATING into the gradients: dloss[i] = dJ/d(loss_i) where loss_i =
 * -log p(target_i) (so dJ/d(log p_i) = -dloss[i]), and dentropy[i] = dJ/dH_i
 * for the next-token entropy H_i (NULL: none). Both are host arrays of B*T.
 * This is what policy-gradient losses (PPO/GRPO, KL penalties, entropy
 * bonuses) reduce to. Overwrites the logits. */
int egrc_model_backward_weighted(egrc_model *m, const float *dloss, const float *dentropy, egrc_error *err);
void egrc_model_zero_grad(egrc_model *m);

/* Downloads the logits of the last forward, (B,T,V) fp32, into host memory. */
void egrc_model_download_logits(egrc_model *m, float *host);
/* Per-token losses -log p(target) of the last forward with targets, (B,T) (0 where ignored). */
void egrc_model_download_losses(egrc_model *m, float *host);
/* Next-token entropies of the last forward with targets, (B,T), at temperature 1. */
void egrc_model_download_entropy(egrc_model *m, float *host);

/* Greedy decoding without a KV cache (a full forward per token): used for
 * parity checks. `tokens` holds prompt_len ids and room for n_new more. */
int egrc_model_greedy(egrc_model *m, int32_t *tokens, int prompt_len, int n_new, egrc_error *err);

#endif
