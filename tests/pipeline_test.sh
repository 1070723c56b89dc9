#!/usr/bin/env bash
# The main job end to end at a tiny size: SFT of a small base reasoner, its
# evaluation, stage 1 -> switch -> stage 2, the final evaluation, and the
# run folder (summary.json with the fields docs/recipes.md lists, report.html,
# the saved model). Then a second run reuses the base instead of training it.
# tests/lua/pipeline_outputs.lua then checks the values in the run folders.
# Usage: pipeline_test.sh EGRC RECIPES_DIR
set -u
egrc=$1
recipes=$2
tests=$(dirname "$recipes")/tests
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=tests/expect.sh
. "$(dirname "$0")/expect.sh"

# what the runs are asked for (pipeline_outputs.lua holds the outputs to it)
base_steps=20 rl_steps=6 prompts=2 group=4 budget=48 eval_tokens=48 switch_min=1 switch_max=3 compare_steps=3
bench_limit=3 bench_tokens=16 analyze_prompts=3 analyze_group=4 analyze_budget=32
base=(--quiet --set base.dir="$work/base" --set base.steps="$base_steps" --set base.model.n_layer=2
      --set base.model.d_model=64 --set base.model.d_ff=128 --set base.model.head_dim=16)
small=("${base[@]}" --set eval.per_cell=1 --set eval.max_new_tokens="$eval_tokens" --set rl.prompts="$prompts"
       --set rl.group="$group")
tiny=("${small[@]}" --set rl.steps="$rl_steps" --set stage1.budget="$budget" --set stage2.budget="$budget"
      --set switch.min_step="$switch_min" --set switch.max_step="$switch_max")

out=$("$egrc" run "$recipes/entropy_guided.lua" --out "$work/run1" "${tiny[@]}" 2>&1)
check "the first run succeeds" test $? -eq 0 || printf '%s\n' "$out"
check "the first run trains the base" grep -q "training the base reasoner" <<<"$out"
check "the first run prints the before/after table" grep -Eq "^mean +[0-9.]+ +[0-9.]+ " <<<"$out" ||
  printf '%s\n' "$out"
check "the base reasoner is saved" test -f "$work/base/config.json" -a -f "$work/base/model.safetensors"
check "the final model is saved" test -f "$work/run1/model/model.safetensors"
check "report.html has a chart" grep -q "<svg" "$work/run1/report.html"
check "report.html marks the switch" grep -q "stage 2" "$work/run1/report.html"
for key in '"backend"' '"base"' '"final"' '"accuracy"' '"mean_tokens"' '"per_benchmark"' '"length_ratio"' \
           '"accuracy_delta"' '"sft_seconds"' '"rl_seconds"' '"eval_seconds"' '"switch_step"'; do
  check "summary.json has $key" grep -q "$key" "$work/run1/summary.json"
done
check "metrics.jsonl has a stage-2 step" grep -q '"stage":2' "$work/run1/metrics.jsonl"

out=$("$egrc" run "$recipes/entropy_guided.lua" --out "$work/run2" "${tiny[@]}" 2>&1)
check "the second run succeeds" test $? -eq 0 || printf '%s\n' "$out"
check "the second run reuses the base" grep -q "reusing the base reasoner" <<<"$out" || printf '%s\n' "$out"
check "the second run reports no SFT time" grep -q '"sft_seconds":[[:space:]]*0' "$work/run2/summary.json"

# compare.lua: three methods from the same (reused) base, one table.
out=$("$egrc" run "$recipes/compare.lua" --out "$work/compare" "${small[@]}" --set rl.steps=$compare_steps \
      --set rl.budget=$budget --set stage1.budget=$budget --set stage2.budget=$budget --set switch.min_step=1 \
      --set switch.max_step=2 2>&1)
check "compare succeeds" test $? -eq 0 || printf '%s\n' "$out"
for method in "accuracy-only GRPO" "Kimi 1.5 length penalty" "entropy-guided"; do
  check "compare's table has '$method'" grep -q "^$method " <<<"$out"
done
check "compare writes report.html" test -f "$work/compare/report.html"

# bench.lua: the trained model on two committed benchmark samples.
out=$("$egrc" run "$recipes/bench.lua" --out "$work/bench" --quiet --set model="$work/run1/model" \
      --set tokenizer=tasks --set root="$tests/data/benchmarks" --set sets=gsm8k/sample.jsonl,math500/sample.jsonl \
      --set limit=$bench_limit --set max_new_tokens=$bench_tokens --set prompt_overflow=truncate_left 2>&1)
check "bench succeeds" test $? -eq 0 || printf '%s\n' "$out"
check "bench.json has accuracies" grep -q '"accuracy"' "$work/bench/bench.json"
check "bench.json has reasoning-token means" grep -q '"mean_reasoning"' "$work/bench/bench.json"
check "bench reports its template" grep -q "^bench: plain template, <think> opened" <<<"$out" || printf '%s\n' "$out"
check "bench.md has the Markdown table" grep -q \
  '^| model | gsm8k/sample.jsonl acc | gsm8k/sample.jsonl tokens | gsm8k/sample.jsonl think |' "$work/bench/bench.md"

# analyze.lua: the entropy-conflict analysis of the base's own rollouts.
out=$("$egrc" run "$recipes/analyze.lua" --out "$work/analyze" "${base[@]}" --set prompts=$analyze_prompts \
      --set group=$analyze_group --set budget=$analyze_budget 2>&1)
check "analyze succeeds" test $? -eq 0 || printf '%s\n' "$out"
check "analyze prints the high-entropy tokens" grep -q "high-entropy tokens: " <<<"$out"
check "analysis.json has the gradient cosine" grep -q '"gradient_cosine"' "$work/analyze/analysis.json"

# the values in all those folders
expect 0 "pipeline_outputs: [0-9]+ checks, 0 failed" -- "$egrc" run "$tests/lua/pipeline_outputs.lua" \
  --out "$work/outputs" --quiet --set tests="$tests/lua" --set work="$work" --set base_steps=$base_steps \
  --set rl_steps=$rl_steps --set prompts=$prompts --set budget=$budget \
  --set eval_tokens=$eval_tokens --set switch_min=$switch_min --set switch_max=$switch_max \
  --set compare_steps=$compare_steps --set bench_limit=$bench_limit --set bench_tokens=$bench_tokens \
  --set analyze_prompts=$analyze_prompts --set analyze_group=$analyze_group --set analyze_budget=$analyze_budget

finish pipeline_test
