#!/usr/bin/env bash
# A GPU fault in the middle of a run, on the emulated GPU: `egrc run` exits 1
# and summary.json says status failed, with an error naming the backend, the
# op and the cause. The fault is injected by the emulator (EGRC_GPUEMU_FAULT,
# backends/gpuemu/runtime.cpp) into the third AdamW update, i.e. step 1 of
# tests/lua/train_test.lua's SFT (two updates a step), and into the sample op
# of an RL rollout's decode steps.
# Usage: fault_run_test.sh EGRC TESTS_LUA_DIR
set -u
egrc=$1
tests=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=tests/expect.sh
. "$(dirname "$0")/../expect.sh"

# run NAME MODE FAULT [ENV...]: the training recipe on gpuemu with FAULT injected
run() {
  local name=$1 mode=$2 fault=$3
  shift 3
  env EGRC_GPUEMU_FAULT="$fault" OMP_NUM_THREADS=1 "$@" "$egrc" run "$tests/train_test.lua" --backend gpuemu \
    --out "$work/$name" --quiet --set tests="$tests" --set mode="$mode"
}
summary_says() { # NAME PATTERN
  grep -Eq -- "$2" "$work/$1/summary.json"
}

# Found by the next wait: the calls since then, adamw among them, and how to make the op say so itself.
expect 1 "step 1, optimizer: backend 'gpuemu': one of the [0-9]+ op calls since the last wait .*adamw.*\(cudaErrorIllegalAddress\); CUDA_LAUNCH_BLOCKING=1" -- run async sft adamw_kernel:3
check "summary.json: status failed" summary_says async '"status":[[:space:]]*"failed"'
check "summary.json: the error names the backend, the ops and the cause" summary_says async \
  "\"error\":[[:space:]]*\"[^\"]*backend 'gpuemu': one of the [0-9]+ op calls since the last wait[^\"]*adamw[^\"]*an illegal memory access was encountered \(cudaErrorIllegalAddress\)"
check "metrics.jsonl: the one step before the fault" test "$(wc -l <"$work/async/metrics.jsonl")" -eq 1

# With CUDA_LAUNCH_BLOCKING=1 the op reports its own fault.
expect 1 "step 1, optimizer: backend 'gpuemu': op adamw \(call [0-9]+\): an illegal memory access was encountered \(cudaErrorIllegalAddress\)" -- run blocking sft adamw_kernel:3 CUDA_LAUNCH_BLOCKING=1
check "summary.json names op adamw" summary_says blocking "\"error\":[[:space:]]*\"[^\"]*backend 'gpuemu': op adamw \(call [0-9]+\)"

# In a rollout: the sample op's fault ends the RL run the same way.
expect 1 "decode step: backend 'gpuemu': op sample \(call [0-9]+\): an illegal memory access was encountered" -- run rollout rl sample_kernel:2 CUDA_LAUNCH_BLOCKING=1
check "summary.json: the RL run failed" summary_says rollout '"status":[[:space:]]*"failed"'

# The same runs without a fault pass: the failures above are the faults'.
expect 0 "train_test sft: [0-9]+ checks, 0 failed" -- run clean sft ""

finish fault_run_test
