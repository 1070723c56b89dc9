#!/usr/bin/env bash
# --sandbox from the command line: a resumed sandboxed run stays sandboxed;
# reads reach only the run folder, the recipe's folder and the paths the
# command line names (no `..` or symlink way out), writes only the run folder;
# the CPU and heap limits stop a runaway recipe with exit 1 and summary.json;
# the string metatable, the libraries and egrc's globals are out of the
# recipe's reach; latest.json cannot point outside its run folder; a failed
# resume leaves a completed run's summary.json as it was.
# Usage: sandbox_test.sh EGRC SOURCE_DIR
set -u
egrc=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
# shellcheck source=tests/expect.sh
. "$src/tests/expect.sh"

# The layout: recipes/ (the recipe's folder), data/ (named by --set),
# secret/ (named by nothing), recipes/link -> ../secret.
mkdir recipes data secret
printf '{"token": "s3cr3t"}\n' > secret/cred.json
printf '{"rows": 3}\n' > data/table.json
printf '{"beside": true}\n' > recipes/beside.json
ln -s ../secret recipes/link
recipe() { # recipe NAME BODY: recipes/NAME.lua
  printf '%s\n' "$2" > "recipes/$1.lua"
}
# bounded command...: a runaway (a limit that failed) ends the test, not the
# machine. Under ASan, which reserves terabytes of address space for its
# shadow memory, an address-space cap would stop egrc before main: time only.
if grep -q __asan_init "$egrc" 2>/dev/null; then address_space=unlimited; else address_space=4000000; fi
bounded() {
  (ulimit -v "$address_space" && exec timeout 60 "$@")
}

# ---- resume keeps the sandbox ----
recipe resume 'return { main = function(run)
  if not run.resume then error("crash before the end") end
  os.execute("touch escaped")
end }'
expect 1 "crash before the end" -- "$egrc" run recipes/resume.lua --sandbox --out s1 --quiet
check "sandbox.json records the sandbox" grep -q '"sandbox":[[:space:]]*true' s1/sandbox.json
expect 1 "os is disabled by --sandbox" -- "$egrc" run --resume s1 --quiet
expect 1 "os is disabled by --sandbox" -- "$egrc" run recipes/resume.lua --resume s1 --quiet
check "the resumed run ran nothing outside the sandbox" test ! -e escaped
recipe tamper 'local egrc = require("egrc")
return { main = function(run) egrc.fs.write(run:path("sandbox.json"), "{\"sandbox\": false}") end }'
expect 1 "sandbox.json is egrc's record of the sandbox; a recipe may not change it" -- \
  "$egrc" run recipes/tamper.lua --sandbox --out s2 --quiet
recipe remove 'local egrc = require("egrc")
return { main = function(run) egrc.fs.remove(run:path("sandbox.json")) end }'
expect 1 "a recipe may not change it" -- "$egrc" run recipes/remove.lua --sandbox --out s3 --quiet
check "the record stays" grep -q '"sandbox":[[:space:]]*true' s3/sandbox.json
check "the defaults are recorded" grep -Eq '"lua_cpu_limit":[[:space:]]*[1-9]' s3/sandbox.json

# ---- reads ----
# read EXPRESSION PATTERN [CODE]: the recipe prints egrc.<EXPRESSION>
read_check() {
  recipe read "local egrc = require('egrc')
return { settings = { data = '' }, main = function(run) print('got', egrc.$1) end }"
  rm -rf r
  expect "${3:-1}" "$2" -- "$egrc" run recipes/read.lua --sandbox --out r --quiet --set data="$work/data"
}
outside="is outside what --sandbox lets a recipe read: the run folder, the recipe's folder and the paths given"
read_check 'json.read("recipes/beside.json").beside' "got	true" 0
read_check 'json.read("'"$work"'/data/table.json").rows' "got	3" 0
read_check 'fs.exists("r/settings.json")' "got	true" 0
read_check 'json.read("secret/cred.json").token' "reading 'secret/cred.json' \(it leads to '.*/secret/cred.json'\) $outside"
read_check 'json.read("'"$work"'/secret/cred.json").token' "$outside"
read_check 'json.read("recipes/link/cred.json").token' "reading 'recipes/link/cred.json' \(it leads to '.*/secret/cred.json'\)"
read_check 'json.read("recipes/../secret/cred.json").token' "reading 'recipes/../secret/cred.json'.* $outside"
read_check 'json.read("data/../secret/cred.json").token' "$outside"
read_check 'fs.exists("secret/cred.json")' "$outside"
read_check 'data.jsonl("secret/cred.json")' "$outside"
read_check 'tokenizer.load("secret/cred.json")' "$outside"
read_check 'model.load("secret")' "$outside"
read_check 'benchmarks.load("secret/cred.json")' "$outside"
read_check 'json.read("/etc/passwd")' "reading '/etc/passwd' $outside"
# what the command line named stays readable when the run resumes
recipe reread 'local egrc = require("egrc")
return { settings = { data = "" }, main = function(run)
  print("rows", egrc.json.read(run.settings.data .. "/table.json").rows)
  if not run.resume then error("crash") end
end }'
expect 1 "rows	3" -- "$egrc" run recipes/reread.lua --sandbox --out rr --quiet --set data="$work/data"
expect 0 "rows	3" -- "$egrc" run --resume rr --quiet
# without --sandbox nothing changes
recipe read 'local egrc = require("egrc")
return { main = function(run) print("got", egrc.json.read("secret/cred.json").token) end }'
expect 0 "got	s3cr3t" -- "$egrc" run recipes/read.lua --out r_free --quiet

# ---- writes: a symlink in the run folder does not lead out of it ----
mkdir w && ln -s ../secret w/out
recipe write 'local egrc = require("egrc")
return { main = function(run) egrc.fs.write(run:path("out", "planted.txt"), "x") end }'
expect 1 "writing 'w/out/planted.txt' is outside the run folder 'w'" -- "$egrc" run recipes/write.lua --sandbox --out w --quiet
check "nothing was written through the symlink" test ! -e secret/planted.txt

# ---- limits ----
recipe loop 'return { main = function(run) local x = 0 while true do x = x + 1 end end }'
expect 1 "loop.lua:1: the recipe's Lua code ran past its CPU time limit of 1 s \(--lua-cpu-limit SECONDS; 0 = none\)" -- \
  bounded "$egrc" run recipes/loop.lua --sandbox --lua-cpu-limit 1 --out l1 --quiet
check "summary.json: failed" grep -q '"status":[[:space:]]*"failed"' l1/summary.json
check "summary.json names the limit" grep -q '"error":.*CPU time limit of 1 s' l1/summary.json
recipe catch 'return { main = function(run) pcall(function() while true do end end) run.summary.status = "ok" end }'
expect 1 "CPU time limit of 1 s" -- bounded "$egrc" run recipes/catch.lua --sandbox --lua-cpu-limit 1 --out l2 --quiet
check "a caught limit still fails the run" grep -q '"status":[[:space:]]*"failed"' l2/summary.json
recipe rep 'return { main = function(run) while true do local s = ("x"):rep(1000000) end end }'
expect 1 "CPU time limit of 1 s" -- bounded "$egrc" run recipes/rep.lua --sandbox --lua-cpu-limit 1 --out l3 --quiet
recipe top 'while true do end'
expect 1 "top.lua:1: the recipe's Lua code ran past its CPU time limit" -- \
  bounded "$egrc" run recipes/top.lua --sandbox --lua-cpu-limit 1 --out l4 --quiet
# time inside egrc's own functions does not count: ~2 s of encoding, little Lua
recipe encode 'local egrc = require("egrc")
return { main = function(run)
  local tok, text = egrc.tasks.tokenizer(), ("12 + 34 = 46. "):rep(20000)
  for i = 1, 80 do tok:encode(text) end
  print("lua seconds", egrc.lua_limits().cpu_seconds)
end }'
expect 0 "lua seconds	0\.[0-4]" -- bounded "$egrc" run recipes/encode.lua --sandbox --lua-cpu-limit 1 --out l5 --quiet
recipe bomb 'return { main = function(run)
  local t = {}
  for i = 1, math.huge do t[i] = ("x"):rep(1000) .. i end
end }'
expect 1 "the recipe's Lua heap reached its limit of 32 MB \(--lua-memory-limit MB; 0 = none\)" -- \
  bounded "$egrc" run recipes/bomb.lua --sandbox --lua-memory-limit 32 --out m1 --quiet
check "summary.json: failed, the heap limit" grep -q '"error":.*heap reached its limit of 32 MB' m1/summary.json
check "summary.json records the peak" grep -q '"heap_peak_mb":' m1/summary.json
expect 2 "--lua-cpu-limit expects an integer" -- "$egrc" run recipes/loop.lua --lua-cpu-limit x
# the limits a sandboxed run was given hold when it resumes
recipe slow 'return { main = function(run) if run.resume then while true do end end error("crash") end }'
expect 1 "crash" -- "$egrc" run recipes/slow.lua --sandbox --lua-cpu-limit 1 --out l6 --quiet
expect 1 "CPU time limit of 1 s" -- bounded "$egrc" run --resume l6 --quiet

# ---- what egrc's own code uses is out of the recipe's reach ----
recipe meta 'return { main = function(run) getmetatable("").__index.format = function() return "hacked" end end }'
expect 1 "string is read-only under --sandbox \(assigning 'format'\)" -- "$egrc" run recipes/meta.lua --sandbox --out t1
recipe meta2 'return { main = function(run) getmetatable("").__index = {} end }'
expect 1 "the string metatable is read-only under --sandbox" -- "$egrc" run recipes/meta2.lua --sandbox --out t2
recipe runmeta 'return { main = function(run) getmetatable(run).finish = function() end end }'
expect 1 "a metatable of egrc's library is read-only" -- "$egrc" run recipes/runmeta.lua --sandbox --out t3
recipe globals 'return { main = function(run)
  print = function() end
  tostring = function() return "ok" end
  run.summary.status = "ok"
  run.finish = function() end
  error("boom")
end }'
expect 1 "globals: failed, 0 steps" -- "$egrc" run recipes/globals.lua --sandbox --out t4 --quiet
check "summary.json says failed" grep -q '"status":[[:space:]]*"failed"' t4/summary.json
check "summary.json has the error" grep -q '"error":.*boom' t4/summary.json

# ---- latest.json points inside its run folder ----
recipe resumed 'return { main = function(run) print("state", run.resume and run.resume.state and run.resume.state.token) end }'
latest() { # latest DIR JSON: a run folder whose latest.json is JSON
  rm -rf "$1" && mkdir -p "$1/checkpoints" && cp recipes/resumed.lua "$1/recipe.lua" &&
    printf '{}\n' > "$1/settings.json" && printf '%s\n' "$2" > "$1/checkpoints/latest.json"
}
named='"checkpoint", "state" and "kept" must name files in .*/checkpoints'
latest p1 '{"step": 1, "checkpoint": "a.safetensors", "state": "../../secret/cred.json"}'
expect 1 "$named" -- "$egrc" run --resume p1 --quiet
latest p2 '{"step": 1, "checkpoint": "/etc/passwd", "state": "s.json"}'
expect 1 "$named" -- "$egrc" run --resume p2 --quiet
latest p3 '{"step": 1, "checkpoint": "a.safetensors", "state": "s.json", "kept": ["../../../victim"]}'
expect 1 "$named" -- "$egrc" run --resume p3 --quiet

# ---- a failed resume keeps a completed run's summary.json ----
recipe done 'return { main = function(run) run:log { step = 1, loss = 0.5 } end }'
recipe broken 'return { main = function(run) error("broken on resume") end }'
expect 0 "done: ok, 1 steps" -- "$egrc" run recipes/done.lua --out d1 --quiet
cp d1/summary.json d1.summary
expect 1 "broken on resume" -- "$egrc" run recipes/broken.lua --resume d1 --quiet
check "the completed summary.json is intact" cmp d1.summary d1/summary.json
check "the failure is in summary-resume-failed.json" grep -q '"status":[[:space:]]*"failed"' d1/summary-resume-failed.json

finish sandbox_test
