#!/usr/bin/env bash
# `egrc run` from the command line: exit codes (0 ok, 1 runtime failure, 2
# usage or recipe error), messages that name the file, line or setting, the
# run folder's files, --sandbox refusals, and that a crashed run resumed from
# its checkpoint logs the same numbers as an uninterrupted one.
# Usage: run_test.sh EGRC SOURCE_DIR
set -u
egrc=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
# shellcheck source=tests/expect.sh
. "$(dirname "$0")/expect.sh"

recipe() { # recipe FILE BODY: writes a recipe file
  printf '%s\n' "$2" > "$1"
}

recipe ok.lua 'local egrc = require("egrc")
return {
  settings = { train = { lr = 0.001, steps = 3 }, label = "x", verbose = false },
  main = function(run)
    print("lr=" .. run.settings.train.lr .. " seed=" .. run.settings.seed .. " backend=" .. run.settings.backend)
    for step = 1, run.settings.train.steps do
      egrc.hook(function() end)
      run:log { step = step, loss = 1 / step }
    end
  end,
}'

# usage
expect 2 "a recipe file \(or --resume DIR\) is required" -- "$egrc" run
expect 0 "usage: egrc run RECIPE.lua" -- "$egrc" run --help
expect 2 "unknown flag '--bogus'" -- "$egrc" run ok.lua --bogus
expect 2 "missing value after '--set'" -- "$egrc" run ok.lua --set
expect 2 "--device expects an integer" -- "$egrc" run ok.lua --device x
expect 2 "a second recipe 'other.lua'" -- "$egrc" run ok.lua other.lua
expect 2 "--out cannot be combined with --resume" -- "$egrc" run --resume r1 --out r2
expect 2 "cannot open missing.lua" -- "$egrc" run missing.lua

# a good run and its folder
expect 0 "lr=0.5 seed=7 backend=cpu" -- "$egrc" run ok.lua --out r1 --set train.lr=0.5 --seed 7 --quiet
check "metrics.jsonl has 3 lines" test "$(wc -l < r1/metrics.jsonl)" -eq 3
check "metrics.jsonl line" grep -qx '{"loss":0.5,"step":2}' r1/metrics.jsonl
check "timings.jsonl line" grep -Eqx '\{"seconds":[0-9.e-]+,"step":2\}' r1/timings.jsonl
check "recipe.lua copied" cmp ok.lua r1/recipe.lua
check "settings.json resolved" grep -q '"lr":	0.5' r1/settings.json
check "settings.json has the seed" grep -q '"seed":	7' r1/settings.json
check "summary.json status" grep -q '"status":	"ok"' r1/summary.json
check "summary.json hook fraction" grep -q '"lua_hook_fraction":' r1/summary.json
check "summary.json hook calls" grep -q '"lua_hook_calls":	3' r1/summary.json
expect 0 "step 1 \| loss 1.0000" -- "$egrc" run ok.lua --out r_plain
check "plain progress: no carriage returns" bash -c "! '$egrc' run ok.lua --out r_cr | grep -q $'\r'"
expect 0 "ok, 3 steps in .* Lua hooks .*% of step time" -- "$egrc" run ok.lua --out r2
expect 2 "r1 already holds a run" -- "$egrc" run ok.lua --out r1
expect 0 "ok.lua|ok, 3 steps" -- "$egrc" run ok.lua
check "default run folder runs/ok-<timestamp>" bash -c 'ls -d runs/ok-2*'

# --set: typed from the default, errors name the key
expect 2 "--set train.lr=abc: expected a number, got 'abc'" -- "$egrc" run ok.lua --set train.lr=abc
expect 2 "--set train.steps=1.5: expected an integer, got '1.5'" -- "$egrc" run ok.lua --set train.steps=1.5
expect 2 "--set verbose=1: expected true or false, got '1'" -- "$egrc" run ok.lua --set verbose=1
expect 2 "unknown setting 'train.lrr' \(did you mean 'train.lr'\?\)" -- "$egrc" run ok.lua --set train.lrr=1
expect 2 "unknown setting 'lable' \(did you mean 'label'\?\)" -- "$egrc" run ok.lua --set lable=y
expect 2 "'train' is a table of settings" -- "$egrc" run ok.lua --set train=1
expect 0 "lr=0.25 seed=0 backend=cpu" -- "$egrc" run ok.lua --out r3 --set train.lr=0.25 --set train.steps=1
check "no folder for a failed --set" test ! -e r4

# --backend switches the vendor without touching the recipe; a missing plugin is one line, exit 1, nothing written
# without a GPU: either the plugin was not built, or it finds no driver/device
expect 1 "backend 'cuda': .*(libegrc-backend-cuda.so|driver|device)" -- "$egrc" run ok.lua --out r4 --backend cuda
check "no run folder for a missing backend" test ! -e r4
expect 1 "backend 'nosuch'" -- "$egrc" run ok.lua --out r5 --set backend=nosuch

# gpu_settings: checked against the settings on every backend, merged over them on a GPU's, under --set
recipe gpu.lua 'return {
  settings = { train = { lr = 0.001, steps = 3 } },
  gpu_settings = { train = { steps = 30 } },
  main = function(run) print("steps=" .. run.settings.train.steps .. " lr=" .. run.settings.train.lr) end,
}'
expect 0 "steps=3 lr=0.001" -- "$egrc" run gpu.lua --out g1 --quiet
recipe gpu_typo.lua 'return {
  settings = { train = { lr = 0.001, steps = 3 } },
  gpu_settings = { train = { stepz = 30 } },
  main = function(run) end,
}'
expect 2 "gpu_typo.lua: gpu_settings.train.stepz: the recipe.s settings have no such setting" -- \
  "$egrc" run gpu_typo.lua --out g2
recipe gpu_type.lua 'return {
  settings = { train = { lr = 0.001, steps = 3 } },
  gpu_settings = { train = { steps = "many" } },
  main = function(run) end,
}'
expect 2 "gpu_settings.train.steps: a string, where the setting is a number" -- "$egrc" run gpu_type.lua --out g3
check "no run folder for bad gpu_settings" bash -c "test ! -e g2 && test ! -e g3"
# the emulated GPU backend, where it was built, opens without a GPU
if [ -f "$(dirname "$egrc")/libegrc-backend-gpuemu.so" ]; then
  expect 0 "steps=30 lr=0.001" -- "$egrc" run gpu.lua --out g4 --quiet --backend gpuemu
  expect 0 "steps=7 lr=0.001" -- "$egrc" run gpu.lua --out g5 --quiet --backend gpuemu --set train.steps=7
fi

# recipe errors: exit 2 before the run starts, with FILE:LINE
recipe syntax.lua 'return {
  main = function(run)
    local x = = 1
  end,
}'
expect 2 "^egrc: syntax.lua:3: unexpected symbol near '='" -- "$egrc" run syntax.lua
recipe toplevel.lua 'local t = nil
local x = t.field
return {}'
expect 2 "recipe error: toplevel.lua:2: attempt to index a nil value" -- "$egrc" run toplevel.lua
recipe number.lua 'return 42'
expect 2 "number.lua must return a table" -- "$egrc" run number.lua
recipe nomain.lua 'return { settings = {} }'
expect 2 "nomain.lua: the returned table has no main function" -- "$egrc" run nomain.lua
recipe badsettings.lua 'return { settings = { f = print }, main = function() end }'
expect 2 "settings.f: a function is not a setting" -- "$egrc" run badsettings.lua
recipe badbackend.lua 'return { settings = { backend = 3 }, main = function() end }'
expect 2 "settings.backend must be a string" -- "$egrc" run badbackend.lua

# runtime errors: exit 1, the message, and a traceback through the recipe
recipe runtime.lua 'local egrc = require("egrc")
local function helper(n)
  return egrc.model.create("gpt2-tiny", { n_layers = n })
end
return {
  main = function(run)
    helper(2)
  end,
}'
expect 1 "runtime.lua:3: bad argument #2 to '(egrc.model.)?create' \(unknown option 'n_layers' \(did you mean 'n_layer'\?\)\)" -- "$egrc" run runtime.lua --out rt1
expect 1 "stack traceback:.*runtime.lua:3: in (upvalue|local) 'helper'" -- bash -o pipefail -c "'$egrc' run runtime.lua --out rt2 2>&1 | tr '\n' ' '"
check "a failed run still writes summary.json" grep -q '"status":	"failed"' rt1/summary.json
check "summary.json names the error" grep -q '"error":	"runtime.lua:3: bad argument' rt1/summary.json
recipe raise.lua 'return { main = function(run) error({ code = 1 }) end }'
expect 1 "error object is a table value" -- "$egrc" run raise.lua --out rt3

# the test scripts' checks can fail
recipe mustfail.lua "return { main = function(run)
  local check = dofile('$src/tests/lua/check.lua')
  check.eq(1 + 1, 3, 'arithmetic')
  check.done('mustfail')
end }"
expect 1 "FAILED .*mustfail.lua:3: arithmetic: got 2, want 3.*1 of 1 checks failed" -- bash -o pipefail -c "'$egrc' run mustfail.lua --out mf 2>&1 | tr '\n' ' '"

# --sandbox: each refusal is a clear runtime error
sandbox() { # sandbox EXPRESSION PATTERN
  recipe sb.lua "local egrc = require('egrc')
return { main = function(run) local x = $1 end }"
  rm -rf sb
  expect 1 "$2" -- "$egrc" run sb.lua --sandbox --out sb
}
sandbox 'os.time()' "sb.lua:2: os is disabled by --sandbox"
sandbox 'io.open("x")' "sb.lua:2: io is disabled by --sandbox"
sandbox 'egrc.ffi.load("libc.so.6")' "sb.lua:2: egrc.ffi is disabled by --sandbox"
sandbox 'package.loadlib("libc.so.6", "puts")' "package.loadlib is disabled by --sandbox"
sandbox 'require("lpeg")' "require 'lpeg': modules from disk \(Lua or C\) are disabled by --sandbox"
sandbox 'require("os")' "os is disabled by --sandbox"
sandbox 'debug.getinfo(1)' "sb.lua:2: debug is disabled by --sandbox"
sandbox 'dofile("ok.lua")' "sb.lua:2: dofile is disabled by --sandbox"
sandbox 'egrc.fs.write("escape.txt", "x")' "writing 'escape.txt' is outside the run folder 'sb'"
sandbox 'egrc.model.create("gpt2-tiny"):save("/tmp/x")' "writing '/tmp/x' is outside the run folder"
check "nothing escaped the sandbox" test ! -e escape.txt
recipe sbok.lua 'local egrc = require("egrc")
return { main = function(run)
  egrc.fs.write(run:path("inside.txt"), "fine")
  egrc.model.create("gpt2-tiny"):save(run:path("model"))
  print(egrc.rewards.exp_length { r = 0.5 } { correct = true, length = 10, budget = 10 })
end }'
expect 0 "^0.5" -- "$egrc" run sbok.lua --sandbox --out sbok
check "sandboxed writes inside the run folder" test -f sbok/inside.txt -a -f sbok/model/config.json
expect 0 "ok" -- "$egrc" run sb.lua --out nosb # os.time() works without --sandbox

# resume: crash after step 3 (checkpoint at 2), resume, compare with an uninterrupted run
train="$src/tests/lua/train_test.lua"
expect 0 "train_test rl: [0-9]+ checks, 0 failed" -- "$egrc" run "$train" --out full --quiet --set tests="$src/tests/lua"
expect 1 "simulated crash at step 3" -- "$egrc" run "$train" --out crashed --quiet --set tests="$src/tests/lua" --set crash_at=3
check "the crashed run logged 3 steps" test "$(wc -l < crashed/metrics.jsonl)" -eq 3
expect 0 "train_test rl: [0-9]+ checks, 0 failed" -- "$egrc" run --resume crashed --quiet --set crash_at=0
check "resumed metrics equal the uninterrupted run's, byte for byte" cmp full/metrics.jsonl crashed/metrics.jsonl
check "resumed final weights, moments and RNG equal the uninterrupted run's, byte for byte" \
  cmp full/checkpoints/rl-step-000004.safetensors crashed/checkpoints/rl-step-000004.safetensors
check "timings.jsonl has one line per logged step" test "$(wc -l < crashed/timings.jsonl)" -eq 4
check "summary.json records the resume" grep -q '"resumed_from":	2' crashed/summary.json
check "the resumed run keeps its name" grep -q '"recipe":	"train_test"' crashed/summary.json
expect 2 "no settings.json there" -- "$egrc" run ok.lua --resume nowhere

# docs/recipes.md shows the example recipe and its C file verbatim
doc_block() { # doc_block FILE: the fenced block after the doc's "<!-- FILE -->" marker
  awk -v marker="<!-- $1 -->" '$0 == marker { on = 1; getline; next } on && /^```$/ { exit } on' "$src/docs/recipes.md"
}
for f in recipes/examples/custom_reward.lua recipes/examples/custom_reward.c; do
  check "docs/recipes.md shows $f as it is" diff <(doc_block "$f") "$src/$f"
done

finish run_test
