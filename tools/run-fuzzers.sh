#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default
# 30), seeded with the test fixtures. A crash leaves its input in the corpus
# folder and fails the script.
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
for target in safetensors tokenizer; do
  echo "fuzz_$target: ${seconds}s"
  (cd "$work" && "$build/fuzz_$target" -max_total_time="$seconds" -max_len=262144 -print_final_stats=1 \
     -artifact_prefix="$build/crash-$target-" "$work/$target" 2>&1 | grep -E "stat::number_of_executed_units|ERROR|SUMMARY" || true)
  if ls "$build"/crash-"$target"-* >/dev/null 2>&1; then
    echo "fuzz_$target found a crash: $(ls "$build"/crash-"$target"-*)" >&2
    exit 1
  fi
done
