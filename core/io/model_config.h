/* Model configuration: one decoder-only transformer with the switches real
 * checkpoints need, read from / written to Hugging Face config.json, or made
 * from a named preset. */
#ifndef EGRC_MODEL_CONFIG_H
#define EGRC_MODEL_CONFIG_H

#include "base/error.h"

typedef enum egrc_arch {
    EGRC_ARCH_GPT2,  /* LayerNorm, GELU(tanh), learned positions, biases everywhere, tied embeddings */
    EGRC_ARCH_LLAMA, /* RMSNorm, SwiGLU, RoPE, optional biases (attention_bias, mlp_bias) */
    EGRC_ARCH_QWEN2, /* as Llama, with q/k/v biases */
} egrc_arch;

typedef struct egrc_model_config {
    egrc_arch arch;
    int vocab_size;
    int n_layer;
    int n_head;
    int n_kv_head; /* < n_head for grouped-query attention */
    int d_model;
    int head_dim;
    int d_ff;     /* MLP hidden width (SwiGLU: width of gate and of up each) */
    int max_seq;  /* learned-position table size / max_position_embeddings */
    float norm_eps;
    float rope_theta;
    int qkv_bias;      /* bias on the q, k, v projections */
    int attn_out_bias; /* bias on the attention output projection */
    int mlp_bias;      /* bias on the MLP projections */
    int tied_embeddings;
    int bos_token_id; /* -1 when the config names none */
    int eos_token_id;
} egrc_model_config;

/* Derived switches, from the architecture. */
static inline int egrc_config_uses_rmsnorm(const egrc_model_config *c) { return c->arch != EGRC_ARCH_GPT2; }
static inline int egrc_config_uses_rope(const egrc_model_config *c) { return c->arch != EGRC_ARCH_GPT2; }
static inline int egrc_config_uses_swiglu(const egrc_model_config *c) { return c->arch != EGRC_ARCH_GPT2; }
static inline int egrc_config_qkv_width(const egrc_model_config *c) {
    return (c->n_head + 2 * c->n_kv_head) * c->head_dim;
}
/* Width of the MLP's first projection (SwiGLU packs gate and up). */
static inline int egrc_config_fc_width(const egrc_model_config *c) {
    return egrc_config_uses_swiglu(c) ? 2 * c->d_ff : c->d_ff;
}

const char *egrc_arch_name(egrc_arch arch); /* the HF model_type */

/* Parses config.json text; `source` names the file in messages. */
int egrc_config_parse_hf(const char *json, size_t len, const char *source, egrc_model_config *cfg, egrc_error *err);
int egrc_config_load_hf(const char *path, egrc_model_config *cfg, egrc_error *err);
/* Serialises to HF config.json text (malloc'd). */
char *egrc_config_to_hf_json(const egrc_model_config *cfg);
/* Checks internal consistency (divisibility, ranges). */
int egrc_config_validate(const egrc_model_config *cfg, const char *source, egrc_error *err);

/* Named presets with random initialisation: "gpt2-124M", "gpt2-tiny",
 * "llama-tiny", "qwen2-tiny", "qwen2-0.5B". */
int egrc_config_preset(const char *name, egrc_model_config *cfg, egrc_error *err);
const char *const *egrc_config_preset_names(void);

#endif
