#!/usr/bin/env bash
# GPU checks of the CUDA backend, for a machine with an NVIDIA GPU and driver:
#   1. configure + build (Release, EGRC_CUDA=ON) egrc, the plugin and the parity test
#   2. test_backend_parity: every op and the tiny models against the CPU backend,
#      on cuBLASLt GEMMs, then again with EGRC_GPU_GEMM=tiled (the project's
#      GEMM kernel, which the HIP plugin uses) for every op and model
#   3. egrc parity --backend cuda on tests/data/tiny-{qwen2,gpt2,llama} (Hugging Face references)
#   4. egrc bench train  --model gpt2-124M --batch 8 --seq 1024 --steps 10 --backend cuda
#   5. egrc bench generate --model qwen2-0.5B --batch 64 --prompt-len 64 --new-tokens 256 --backend cuda
# and prints a summary table last. Each step has a time limit, so the whole
# script ends well under 10 minutes; logs are kept in BUILD_DIR/gpu-check/.
#
# Usage: tests/gpu/check.sh [BUILD_DIR]      (default: build-gpu in the repository)
# A BUILD_DIR that already holds egrc and libegrc-backend-cuda.so is reused
# as is (e.g. one built elsewhere where the build dependencies are installed).
# EGRC_CUDA_ARCHS overrides the CUDA architectures built (default "80;90").
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-gpu}
logs=$build/gpu-check
data=$root/tests/data
mkdir -p "$logs"

summary=()
failures=0

# record NAME RESULT DETAIL SECONDS
record() {
    summary+=("$(printf '%-38s %-6s %8s  %s' "$1" "$2" "$4" "$3")")
    [ "$2" = FAIL ] && failures=$((failures + 1))
}

# step NAME LIMIT_SECONDS COMMAND...: runs with a time limit into logs/NAME.log;
# sets $rc and $secs.
step() {
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    echo "== $name: $*"
    timeout "$limit" "$@" >"$logs/$name.log" 2>&1
    rc=$?
    secs=$((SECONDS - start))
    tail -n 25 "$logs/$name.log"
    [ $rc -eq 124 ] && echo "== $name: stopped after ${limit}s"
}

print_summary() {
    echo
    echo "==================== CUDA backend GPU check ===================="
    printf '%-38s %-6s %8s  %s\n' "check" "result" "seconds" "detail"
    printf '%s\n' "${summary[@]}"
    echo "failures: $failures   (logs: $logs)"
}

if ! nvidia-smi -L >"$logs/nvidia-smi.log" 2>&1; then
    record "nvidia-smi" FAIL "no NVIDIA GPU or driver: $(head -n 1 "$logs/nvidia-smi.log")" 0
    print_summary
    exit 1
fi
record "device" info "$(head -n 1 "$logs/nvidia-smi.log")" 0

if [ -x "$build/egrc" ] && [ -f "$build/libegrc-backend-cuda.so" ] && [ -x "$build/test_backend_parity" ]; then
    record "build" skip "reusing $build" 0
else
    step configure 180 cmake -B "$build" -S "$root" -DCMAKE_BUILD_TYPE=Release -DEGRC_CUDA=ON -DEGRC_HIP=OFF \
        "-DCMAKE_CUDA_ARCHITECTURES=${EGRC_CUDA_ARCHS:-80;90}"
    if [ $rc -ne 0 ]; then
        record "configure" FAIL "see $logs/configure.log (Debian build deps: libcjson-dev libpcre2-dev libutf8proc-dev liblua5.4-dev libffi-dev libopenblas-openmp-dev)" $secs
        print_summary
        exit 1
    fi
    step build 420 cmake --build "$build" -j "$(nproc)" --target egrc egrc_backend_cuda test_backend_parity
    if [ $rc -ne 0 ]; then
        record "build" FAIL "see $logs/build.log" $secs
        print_summary
        exit 1
    fi
    record "build" ok "Release, CUDA archs ${EGRC_CUDA_ARCHS:-80;90}" $secs
fi
egrc=$build/egrc

step backend_parity 180 "$build/test_backend_parity"
case $rc in
0) record "test_backend_parity" ok "$(tail -n 1 "$logs/backend_parity.log")" $secs ;;
77) record "test_backend_parity" FAIL "skipped: $(grep '^cuda:' "$logs/backend_parity.log" | head -n 1)" $secs ;;
*) record "test_backend_parity" FAIL "$(grep -c ' FAIL$' "$logs/backend_parity.log") comparisons failed (rc $rc)" $secs ;;
esac

step backend_parity_tiled 180 env EGRC_GPU_GEMM=tiled "$build/test_backend_parity"
case $rc in
0) record "test_backend_parity, tiled GEMM" ok "$(tail -n 1 "$logs/backend_parity_tiled.log")" $secs ;;
77) record "test_backend_parity, tiled GEMM" FAIL "skipped: $(grep '^cuda:' "$logs/backend_parity_tiled.log" | head -n 1)" $secs ;;
*) record "test_backend_parity, tiled GEMM" FAIL "$(grep -c ' FAIL$' "$logs/backend_parity_tiled.log") comparisons failed (rc $rc)" $secs ;;
esac

for model in tiny-qwen2 tiny-gpt2 tiny-llama; do
    step "parity_$model" 60 "$egrc" parity "$data/$model" "$data/$model/reference.safetensors" --backend cuda
    verdict=$(grep -E '^(PASS|FAIL):' "$logs/parity_$model.log" | tail -n 1)
    [ -z "$verdict" ] && verdict=$(tail -n 1 "$logs/parity_$model.log")
    if [ $rc -eq 0 ]; then record "parity $model" ok "$verdict" $secs; else record "parity $model" FAIL "$verdict" $secs; fi
done

step bench_train 240 "$egrc" bench train --model gpt2-124M --batch 8 --seq 1024 --steps 10 --backend cuda
if [ $rc -eq 0 ]; then
    # the results row: ms/step tokens/s model-GFLOP/s sgemm-GFLOP/s ratio loss RSS
    read -r ms tps gflops sgemm _ loss _ < <(tail -n 1 "$logs/bench_train.log")
    record "bench train gpt2-124M 8x1024" ok "$tps tokens/s, $ms ms/step, $gflops model GFLOP/s (sgemm $sgemm), loss $loss" $secs
else
    record "bench train gpt2-124M 8x1024" FAIL "$(tail -n 1 "$logs/bench_train.log")" $secs
fi

step bench_generate 240 "$egrc" bench generate --model qwen2-0.5B --batch 64 --prompt-len 64 --new-tokens 256 \
    --backend cuda
if [ $rc -eq 0 ]; then
    # the results row: prefill-ms decode-ms/step new-tokens/s steps RSS
    read -r prefill step_ms tps _ < <(tail -n 1 "$logs/bench_generate.log")
    record "bench generate qwen2-0.5B 64x(64+256)" ok "$tps new tokens/s, $step_ms ms/decode step, prefill $prefill ms" $secs
else
    record "bench generate qwen2-0.5B 64x(64+256)" FAIL "$(tail -n 1 "$logs/bench_generate.log")" $secs
fi

print_summary
[ $failures -eq 0 ]
