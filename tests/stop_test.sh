#!/usr/bin/env bash
# Real runs stopped by signals and by kill -9, then resumed: a first SIGINT or
# SIGTERM ends the run at a step boundary with a checkpoint, summary.json
# status "interrupted", a resume hint and exit 130/143; a second signal exits
# at once; and every resumed run ends with the same bytes as an uninterrupted
# one: metrics.jsonl and the final weights. Also: kill -9 leftovers (a
# temporary file of an interrupted write, checkpoints newer than latest.json)
# are cleaned on resume, and only the two newest checkpoints stay. Last, the
# main job itself, stopped in its base training and resumed.
# Usage: stop_test.sh EGRC SOURCE_DIR
set -u
egrc=$1
src=$2
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cd "$work" || exit 1
# shellcheck source=tests/expect.sh
. "$src/tests/expect.sh"
recipe="$src/tests/lua/stop_test.lua"

# wait_for FILE: up to 60 s
wait_for() {
  local i
  for i in $(seq 600); do
    [ -e "$1" ] && return 0
    sleep 0.1
  done
  return 1
}

# start OUT SETTINGS...: the recipe in the background; its pid in $pid
start() {
  local out=$1
  shift
  "$egrc" run "$recipe" --out "$out" --quiet "$@" >"$out.log" 2>&1 &
  pid=$!
}

# same_end REFERENCE RUN: the two runs' metrics and final weights are equal, byte for byte
same_end() {
  check "$2: metrics.jsonl equals $1's, byte for byte" cmp "$1/metrics.jsonl" "$2/metrics.jsonl"
  check "$2: final weights equal $1's, byte for byte" cmp "$1/final/model.safetensors" "$2/final/model.safetensors"
}

for mode in sft rl; do
  expect 0 "stop_test: ok" -- "$egrc" run "$recipe" --out "full-$mode" --quiet --set mode=$mode
done

# SIGINT in SFT, SIGTERM in RL: stop at the step's end, resume to the same end
stop_and_resume() { # MODE SIGNAL EXIT_CODE
  local run="stopped-$1"
  start "$run" --set mode="$1"
  check "$run: the loop started" wait_for "$run/ready"
  kill -s "$2" "$pid"
  wait "$pid"
  local rc=$?
  check "$run: SIG$2 exits $3 (got $rc)" test "$rc" -eq "$3"
  check "$run: summary.json says interrupted" grep -q '"status":	"interrupted"' "$run/summary.json"
  check "$run: summary.json says where" grep -Eq '"stopped_at":	"'"$1"' step [0-9]+"' "$run/summary.json"
  check "$run: the message says how to resume" grep -q "continue with: egrc run --resume $run" "$run.log"
  check "$run: a checkpoint was written" grep -q '"phase":	"'"$1"'"' "$run/checkpoints/latest.json"
  check "$run: stopped before the end" test "$(wc -l <"$run/metrics.jsonl")" -lt 24
  expect 0 ": ok, [0-9]+ steps" -- "$egrc" run --resume "$run" --quiet
  same_end "full-$1" "$run"
  check "$run: summary.json of the resumed run says ok" grep -q '"status":	"ok"' "$run/summary.json"
}
stop_and_resume sft INT 130
stop_and_resume rl TERM 143

# SIGINT during an evaluation: it ends at the next batch of prompts
start stopped-eval --set mode=eval
check "stopped-eval: the evaluation started" wait_for stopped-eval/ready
kill -INT "$pid"
wait "$pid"
rc=$?
check "stopped-eval: SIGINT exits 130 (got $rc)" test "$rc" -eq 130
check "stopped-eval: summary.json says interrupted" grep -q '"status":	"interrupted"' stopped-eval/summary.json
check "stopped-eval: the message says where" grep -q "interrupted by SIGINT during an evaluation, at item" stopped-eval.log

# a second signal exits at once, without waiting for the step to end
start twice --set slow=1
check "twice: the loop started" wait_for twice/ready
kill -INT "$pid"
sleep 0.2
kill -INT "$pid"
wait "$pid"
rc=$?
check "twice: the second SIGINT exits 130 (got $rc)" test "$rc" -eq 130
check "twice: it says it stops now" grep -q "second signal: stopping now" twice.log

# kill -9 with checkpoints every 3 steps; leftovers planted as a kill would leave them
start killed --set mode=rl --set checkpoint_every=3
check "killed: the loop started" wait_for killed/checkpoints/latest.json
sleep 0.3
kill -9 "$pid"
wait "$pid" 2>/dev/null
dead_pid=999999999 # above any pid_max: no process has it
printf 'partial' >"killed/checkpoints/rl-step-000099.safetensors.tmp.$dead_pid"
printf 'partial' >"killed/metrics.jsonl.tmp.$dead_pid"
cp killed/checkpoints/latest.json "killed/checkpoints/rl-step-000098.json" # newer than latest.json names
expect 0 ": ok, [0-9]+ steps" -- "$egrc" run --resume killed --quiet --set checkpoint_every=3
same_end full-rl killed
check "killed: temporary files of the killed run removed" \
  bash -c "! ls killed/checkpoints/*.tmp.* killed/*.tmp.* 2>/dev/null | grep -q ."
check "killed: the checkpoint newer than latest.json removed" test ! -e killed/checkpoints/rl-step-000098.json
check "killed: the two newest checkpoints kept, no more" \
  test "$(ls killed/checkpoints/*.safetensors | wc -l)" -eq 2
check "killed: one of them is the last step's" test -e killed/checkpoints/rl-step-000024.safetensors

# the main job at a tiny size, stopped by SIGINT in its base training (SFT):
# the resumed run trains the same base, then evaluates, runs RL and saves
# the same final model as an uninterrupted run
main_job=(--quiet --set base.steps=150 --set base.model.n_layer=2 --set base.model.d_model=64
          --set base.model.d_ff=128 --set base.model.head_dim=16 --set eval.per_cell=1 --set eval.max_new_tokens=32
          --set rl.prompts=2 --set rl.group=4 --set rl.steps=8 --set stage1.budget=32 --set stage2.budget=32
          --set switch.min_step=1 --set switch.max_step=3)
expect 0 "entropy_guided: ok" -- "$egrc" run "$src/recipes/entropy_guided.lua" --out main-full \
  --set base.dir="$work/base-full" "${main_job[@]}"
"$egrc" run "$src/recipes/entropy_guided.lua" --out main-stopped --set base.dir="$work/base-stopped" \
  "${main_job[@]}" >main-stopped.log 2>&1 &
pid=$!
lines() { wc -l <"$1" 2>/dev/null || echo 0; }
for _ in $(seq 600); do
  [ "$(lines main-stopped/metrics.jsonl)" -ge 40 ] && break
  sleep 0.1
done
kill -INT "$pid"
wait "$pid"
rc=$?
check "main job: SIGINT in SFT exits 130 (got $rc)" test "$rc" -eq 130
check "main job: stopped in SFT" grep -q '"phase":	"sft"' main-stopped/checkpoints/latest.json
check "main job: no base saved yet" test ! -e "$work/base-stopped/config.json"
expect 0 "entropy_guided: ok" -- "$egrc" run --resume main-stopped --quiet
check "main job: the resumed base equals the uninterrupted one" \
  cmp "$work/base-full/model.safetensors" "$work/base-stopped/model.safetensors"
check "main job: metrics.jsonl equal, byte for byte" cmp main-full/metrics.jsonl main-stopped/metrics.jsonl
check "main job: final model equal, byte for byte" cmp main-full/model/model.safetensors main-stopped/model/model.safetensors

finish stop_test
