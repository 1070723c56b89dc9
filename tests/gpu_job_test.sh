#!/usr/bin/env bash
# The main job on a GPU backend at a tiny size: in CI, gpuemu (the CUDA
# kernels and host glue on the CPU). Runs SFT, both evaluations and RL with
# graphs, the sample op and (in bf16) the tensor-core attention, and checks
# that the recipe's gpu_settings applied under the --set overrides.
# Usage: gpu_job_test.sh EGRC RECIPES_DIR BACKEND
set -u
egrc=$1
recipes=$2
backend=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=tests/expect.sh
. "$(dirname "$0")/expect.sh"

out=$("$egrc" run "$recipes/entropy_guided.lua" --backend "$backend" --out "$work/run" --quiet \
      --set base.dir="$work/base" --set base.steps=6 --set base.batch=8 --set base.model.n_layer=2 \
      --set base.model.d_model=64 --set base.model.n_head=4 --set base.model.head_dim=16 --set base.model.d_ff=128 \
      --set eval.per_cell=1 --set eval.max_new_tokens=32 --set rl.prompts=2 --set rl.group=4 --set rl.steps=4 \
      --set stage1.budget=32 --set stage2.budget=32 --set switch.min_step=1 --set switch.max_step=2 2>&1)
check "the run succeeds" test $? -eq 0 || printf '%s\n' "$out"
check "the run prints its result line" grep -Eq "^length ratio [0-9.]+, accuracy delta" <<<"$out" ||
  printf '%s\n' "$out"
summary=$work/run/summary.json
check "summary.json names the backend $backend" grep -q "\"backend\":[[:space:]]*\"$backend\"" "$summary"
check "the final model is saved" test -f "$work/run/model/model.safetensors"
# gpu_settings: the learning rate and evaluation batch come from it, the rest from --set
settings=$work/run/settings.json
check "gpu_settings' base.lr (0.002) applies" grep -Eq '"lr":[[:space:]]*0.002' "$settings"
check "gpu_settings' eval.batch (512) applies" grep -Eq '"batch":[[:space:]]*512' "$settings"
check "--set base.steps=6 wins over gpu_settings" grep -Eq '"steps":[[:space:]]*6' "$settings"
check "the base reasoner is saved with --set's 2 layers" grep -q '"num_hidden_layers":[[:space:]]*2' \
  "$work/base/config.json"

finish "gpu_job_test ($backend)"
