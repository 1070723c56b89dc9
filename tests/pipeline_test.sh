#!/usr/bin/env bash
# The main job end to end at a tiny size: SFT of a small base reasoner, its
# evaluation, stage 1 -> switch -> stage 2, the final evaluation, and the
# run folder (summary.json with the fields the README promises, report.html,
# the saved model). Then a second run reuses the base instead of training it.
# Usage: pipeline_test.sh EGRC RECIPES_DIR
set -u
egrc=$1
recipes=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
fail() { echo "FAILED: $*"; failed=$((failed + 1)); }

base=(--quiet --set base.dir="$work/base" --set base.steps=20 --set base.model.n_layer=2 --set base.model.d_model=64
      --set base.model.d_ff=128 --set base.model.head_dim=16)
small=("${base[@]}" --set eval.per_cell=1 --set eval.max_new_tokens=48 --set rl.prompts=2 --set rl.group=4)
tiny=("${small[@]}" --set rl.steps=6 --set stage1.budget=48 --set stage2.budget=48 --set switch.min_step=1
      --set switch.max_step=3)

out=$("$egrc" run "$recipes/entropy_guided.lua" --out "$work/run1" "${tiny[@]}" 2>&1) || fail "first run exited $?: $out"
printf '%s\n' "$out" | grep -q "training the base reasoner" || fail "the first run did not train the base"
printf '%s\n' "$out" | grep -Eq "^mean +[0-9.]+ +[0-9.]+ " || fail "no before/after table: $out"
[ -f "$work/base/config.json" ] && [ -f "$work/base/model.safetensors" ] || fail "the base reasoner was not saved"
[ -f "$work/run1/model/model.safetensors" ] || fail "the final model was not saved"
grep -q "<svg" "$work/run1/report.html" || fail "report.html has no chart"
grep -q "stage 2" "$work/run1/report.html" || fail "report.html does not mark the switch"
for key in '"backend"' '"base"' '"final"' '"accuracy"' '"mean_tokens"' '"per_benchmark"' '"length_ratio"' \
           '"accuracy_delta"' '"sft_seconds"' '"rl_seconds"' '"eval_seconds"' '"switch_step"'; do
  grep -q "$key" "$work/run1/summary.json" || fail "summary.json lacks $key"
done
[ "$(grep -c '"stage":2' "$work/run1/metrics.jsonl")" -ge 1 ] || fail "no stage-2 step in metrics.jsonl"

out=$("$egrc" run "$recipes/entropy_guided.lua" --out "$work/run2" "${tiny[@]}" 2>&1) || fail "second run exited $?"
printf '%s\n' "$out" | grep -q "reusing the base reasoner" || fail "the second run did not reuse the base: $out"
grep -q '"sft_seconds":[[:space:]]*0' "$work/run2/summary.json" || fail "the second run reports SFT time"

# compare.lua: three methods from the same (reused) base, one table.
out=$("$egrc" run "$recipes/compare.lua" --out "$work/compare" "${small[@]}" --set rl.steps=3 --set rl.budget=48 --set stage1.budget=48 --set stage2.budget=48 \
      --set switch.min_step=1 --set switch.max_step=2 2>&1) || fail "compare exited $?: $out"
for method in "accuracy-only GRPO" "Kimi 1.5 length penalty" "entropy-guided"; do
  printf '%s\n' "$out" | grep -q "^$method " || fail "compare's table lacks '$method'"
done
[ -f "$work/compare/report.html" ] || fail "compare wrote no report.html"

# bench.lua: the trained model on two committed benchmark samples.
data=$(dirname "$recipes")/tests/data/benchmarks
out=$("$egrc" run "$recipes/bench.lua" --out "$work/bench" --quiet --set model="$work/run1/model" --set tokenizer=tasks \
      --set root="$data" --set sets=gsm8k/sample.jsonl,math500/sample.jsonl --set limit=3 --set max_new_tokens=16 2>&1) \
  || fail "bench exited $?: $out"
grep -q '"accuracy"' "$work/bench/bench.json" || fail "bench.json lacks accuracies"
grep -q '"mean_reasoning"' "$work/bench/bench.json" || fail "bench.json lacks reasoning-token means"
printf '%s\n' "$out" | grep -q "^bench: plain template, <think> opened" || fail "bench did not report its template: $out"
grep -q '^| model | gsm8k/sample.jsonl acc | gsm8k/sample.jsonl tokens | gsm8k/sample.jsonl think |' \
  "$work/bench/bench.md" || fail "bench.md lacks the Markdown table"

# analyze.lua: the entropy-conflict analysis of the base's own rollouts.
out=$("$egrc" run "$recipes/analyze.lua" --out "$work/analyze" "${base[@]}" --set prompts=3 --set group=4 \
      --set budget=32 2>&1) || fail "analyze exited $?: $out"
printf '%s\n' "$out" | grep -q "high-entropy tokens: " || fail "analyze printed no high-entropy tokens"
grep -q '"gradient_cosine"' "$work/analyze/analysis.json" || fail "analysis.json lacks the gradient cosine"

echo "pipeline_test: $((failed == 0 ? 1 : 0)) passed, $failed failed"
[ "$failed" -eq 0 ]
