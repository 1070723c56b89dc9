/* Training checkpoints: everything a run needs to continue bit-identically
 * (fp32 weights, AdamW moments, the step, the RNG state, the model config),
 * in one safetensors file written atomically, so a crash mid-write leaves the
 * previous checkpoint intact. (Exporting a model for other tools is
 * egrc_model_save_hf; a checkpoint keeps egrc's internal packed layout.) */
#ifndef EGRC_CHECKPOINT_H
#define EGRC_CHECKPOINT_H

#include "model.h"
#include "base/rng.h"

int egrc_checkpoint_save(const char *path, egrc_model *m, int step, const egrc_rng *rng, egrc_error *err);
/* Restores into a model created with the same config (checked). */
int egrc_checkpoint_load(const char *path, egrc_model *m, int *step, egrc_rng *rng, egrc_error *err);

#endif
