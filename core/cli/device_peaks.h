/* Peak dense arithmetic rates of known accelerators, for the MFU (model
 * FLOPs utilisation) column of `egrc bench train`: the model's FLOP/s over
 * what the device's datasheet promises for the GEMMs' operand type. */
#ifndef EGRC_DEVICE_PEAKS_H
#define EGRC_DEVICE_PEAKS_H

#include "backends/backend.h"

/* Peak TFLOP/s of the device called `device_name` (as a backend's
 * device_info reports it) for GEMMs in `dtype`: bf16 tensor/matrix cores
 * with fp32 accumulation, or plain fp32 (vector units: no TF32, no matrix
 * cores). Returns 0 for a device
 * the table does not know; *entry then is NULL, else the table's name for
 * the match. */
double egrc_device_peak_tflops(const char *device_name, egrc_dtype dtype, const char **entry);

#endif
