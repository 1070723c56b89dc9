#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default
# 30). Each target first replays fuzz/regressions/<target> (inputs that once
# crashed it: a regression fails at once), then fuzzes from its working
# corpus fuzz/corpus-<target> (kept between runs, gitignored) plus seeds:
# the test fixtures and fuzz/seeds/<target>. At the end the corpus is
# minimised (-merge=1) and one line per target says how far it got. A crash
# leaves its input in the build folder and fails the script.
#
#   tools/run-fuzzers.sh [SECONDS]     EGRC_FUZZ_BUILD=DIR picks the build folder
set -euo pipefail
seconds=${1:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${EGRC_FUZZ_BUILD:-$root/build-fuzz}
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DEGRC_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzzers -j "$(nproc)" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The longest input each target takes: the largest fixture fits (the model
# fixtures are up to 700 KB, the tokenizer 190 KB, a benchmark 100 KB).
declare -A max_len=([safetensors]=1048576 [tokenizer]=262144 [benchmarks]=131072 [settings]=4096 [grade]=8192)

# Copies a fixture into a seed folder under a name made from its path (the
# fixtures share names: tiny-*/model.safetensors), when it fits max_len.
add_seed() {
  local file=$1 dir=$2 limit=$3
  [ "$(stat -c %s "$file")" -le "$limit" ] || return 0
  cp "$file" "$dir/$(realpath --relative-to="$root" "$file" | tr / _)"
}

# Fills $work/seeds-<target> from the fixtures the target's parser reads.
collect_seeds() {
  local target=$1 dir=$work/seeds-$1 file
  mkdir -p "$dir"
  if [ -d "$root/fuzz/seeds/$target" ]; then cp "$root/fuzz/seeds/$target"/* "$dir/"; fi
  case $target in
    safetensors)
      find "$root/tests/data" -name '*.safetensors' -print0 |
        while IFS= read -r -d '' file; do add_seed "$file" "$dir" "${max_len[$target]}"; done ;;
    tokenizer)
      find "$root/tests/data" "$root/recipes/data" -name '*tokenizer*.json' -print0 |
        while IFS= read -r -d '' file; do add_seed "$file" "$dir" "${max_len[$target]}"; done ;;
    benchmarks)
      # Whole files, and their first lines alone: short inputs mutate faster.
      for file in "$root"/tests/data/benchmarks/*/*.jsonl; do
        add_seed "$file" "$dir" "${max_len[$target]}"
        head -n 2 "$file" >"$dir/head-$(basename "$(dirname "$file")").jsonl"
      done ;;
  esac
}

# "#264102 DONE cov: 187 ft: 492 corp: ...": the edges and features of
# libFuzzer's last status line, and how many inputs it ran.
coverage_of() {
  local line
  line=$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$1" | tail -1)
  sed -E 's/^#([0-9]+).*cov: ([0-9]+) ft: ([0-9]+).*/\2 \3 \1/' <<<"$line"
}

# Minimises the corpus with the seeds found useful: a fresh folder from
# -merge=1 replaces the old one.
minimise_corpus() {
  local fuzzer=$1 corpus=$2 seeds=$3 target=$4 merged=$work/merged-$4
  mkdir -p "$merged"
  "$fuzzer" -merge=1 -max_len="${max_len[$target]}" "$merged" "$corpus" "$seeds" >"$work/$target.merge.log" 2>&1 || {
    tail -20 "$work/$target.merge.log" >&2
    echo "fuzz_$target: minimising the corpus failed" >&2
    return 1
  }
  rm -rf "$corpus"
  mv "$merged" "$corpus"
}

targets=(safetensors tokenizer benchmarks settings grade)
summary=()
for target in "${targets[@]}"; do
  fuzzer=$build/fuzz/fuzz_$target
  if [ ! -x "$fuzzer" ]; then
    echo "fuzz_$target: not built (the settings target needs the Lua layer, EGRC_LUA=ON)"
    continue
  fi
  regressions=$root/fuzz/regressions/$target
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    "$fuzzer" "$regressions"/* >"$work/$target.regressions.log" 2>&1 || {
      tail -30 "$work/$target.regressions.log" >&2
      echo "fuzz_$target: an input of fuzz/regressions/$target crashes it again" >&2
      exit 1
    }
  fi
  corpus=$root/fuzz/corpus-$target
  mkdir -p "$corpus"
  collect_seeds "$target"
  echo "fuzz_$target: ${seconds}s"
  status=0
  # -timeout: an input that takes 10 s is a hang, not a slow machine.
  (cd "$work" && "$fuzzer" -max_total_time="$seconds" -max_len="${max_len[$target]}" -timeout=10 \
     -print_final_stats=1 -artifact_prefix="$build/crash-$target-" "$corpus" "$work/seeds-$target" \
     >"$work/$target.log" 2>&1) || status=$?
  if [ "$status" -ne 0 ]; then
    tail -40 "$work/$target.log" >&2
    echo "fuzz_$target failed (exit $status); inputs that crash are kept as $build/crash-$target-*" >&2
    exit 1
  fi
  minimise_corpus "$fuzzer" "$corpus" "$work/seeds-$target" "$target"
  read -r edges features runs <<<"$(coverage_of "$work/$target.log")"
  files=$(find "$corpus" -type f | wc -l)
  kib=$(find "$corpus" -type f -printf '%s\n' | awk '{ bytes += $1 } END { print int((bytes + 1023) / 1024) }')
  summary+=("$(printf '%-18s %5ss %9s runs %5s inputs %7s KiB %6s edges %6s features' \
    "fuzz_$target" "$seconds" "$runs" "$files" "$kib" "$edges" "$features")")
  echo "${summary[-1]}"
done
echo "== fuzzing coverage (edges and features: libFuzzer's cov: and ft: at the end of the run)"
printf '%s\n' "${summary[@]}"
