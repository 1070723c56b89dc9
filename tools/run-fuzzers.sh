#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default
# 30), seeded with the test fixtures and with fuzz/regressions (inputs that
# crashed a target once). A crash leaves its input in the build folder and
# fails the script.
set -euo pipefail
seconds=${1:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${EGRC_FUZZ_BUILD:-$root/build-fuzz}
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DEGRC_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzzers -j "$(nproc)" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/safetensors" "$work/tokenizer"
find "$root/tests/data" -name '*.safetensors' -size -1M -exec cp {} "$work/safetensors/" \;
cp "$root"/tests/data/tokenizer/*.json "$work/tokenizer/"
# Inputs that once crashed a target, run first as seeds: a regression fails at once.
for target in safetensors tokenizer; do
  if [ -d "$root/fuzz/regressions/$target" ]; then cp "$root/fuzz/regressions/$target"/* "$work/$target/"; fi
done
for target in safetensors tokenizer; do
  fuzzer=$build/fuzz/fuzz_$target
  echo "fuzz_$target: ${seconds}s"
  status=0
  (cd "$work" && "$fuzzer" -max_total_time="$seconds" -max_len=262144 -print_final_stats=1 \
     -artifact_prefix="$build/crash-$target-" "$work/$target" >"$work/$target.log" 2>&1) || status=$?
  grep -E "stat::number_of_executed_units|ERROR|SUMMARY" "$work/$target.log" || true
  if [ "$status" -ne 0 ]; then
    tail -30 "$work/$target.log" >&2
    echo "fuzz_$target failed (exit $status); inputs that crash are kept as $build/crash-$target-*" >&2
    exit 1
  fi
done
