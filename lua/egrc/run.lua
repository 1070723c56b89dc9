-- The `run` object a recipe's main(run) receives from `egrc run`.
--
--   run.settings   the resolved settings (defaults, --resume, --set, flags)
--   run.recipe     the table the recipe returned (its schedule, reward, ...)
--   run.out        the run folder; run:path("x") is a path inside it
--   run.resume     on --resume: {step=, checkpoint=, state=} (nil otherwise)
--   run.summary    fields to add to summary.json
--   run:model(), run:tokenizer()        from settings.model / settings.tokenizer
--   run:log(metrics)                    one step: metrics.jsonl + progress line
--   run:step_done(step, ckpt)           a loop's step boundary: checkpoints, stop signals
--   run:checkpoint(step, trainer, rng, state, phase), run:restore(trainer, rng, phase)
local core = require("egrc.core")

local Run = {}
Run.__index = Run

local M = {}

function M.new(info)
  local run = setmetatable({
    settings = info.settings, recipe = info.recipe, name = info.name, out = info.out,
    recipe_path = info.recipe_path, quiet = info.quiet, sandbox = info.sandbox,
    resume = info.resume, started = info.started, summary = {},
  }, Run)
  run._start = core.clock()
  run._step_seconds, run._logged, run._checkpoints, run._lines = 0, 0, {}, 0
  if info.resume then run:_prepare_resume() end
  run._last_checkpoint = run._start
  run._metrics = core.metrics.open(run:path("metrics.jsonl"), info.resume ~= nil)
  run._timings = core.metrics.open(run:path("timings.jsonl"), info.resume ~= nil)
  return run
end

-- The two newest checkpoints are kept; their names are recorded in
-- latest.json so that a resumed run goes on pruning them.
local checkpoints_kept = 2

-- On --resume: the metrics (and timings) logs are cut back to the lines the
-- checkpoint covers, so the steps after it log again exactly what they
-- logged before the stop; temporary files of writes a kill interrupted and
-- checkpoints newer than latest.json (written when the run died) go.
function Run:_prepare_resume()
  local latest = self.resume.step > 0 and core.json.read(self:path("checkpoints/latest.json")) or {}
  self.resume.phase = latest.phase
  -- (a checkpoint of an egrc that did not record the count: the logs as they are)
  self._lines = core.run_files.keep_lines(self:path("metrics.jsonl"), latest.metrics_lines)
  core.run_files.keep_lines(self:path("timings.jsonl"), self._lines)
  for _, dir in ipairs { self.out, self:path("checkpoints"), self:path("model") } do
    core.run_files.remove_stale_temps(dir)
  end
  self._checkpoints = latest.kept or {}
  local kept = {}
  for _, base in ipairs(self._checkpoints) do kept[base .. ".safetensors"], kept[base .. ".json"] = true, true end
  for _, name in ipairs(core.run_files.list(self:path("checkpoints"))) do
    if name ~= "latest.json" and not kept[name] and name:match("^[%w_%-]*step%-%d+%.%w+$") then
      core.fs.remove(self:path("checkpoints", name))
    end
  end
end

--- A path inside the run folder.
function Run:path(...)
  return table.concat({ self.out, ... }, "/")
end

--- The model settings.model describes: a preset name or Hugging Face folder
-- (a string), or a table {preset=, path=, seed=, <config overrides>} where a
-- non-empty path wins over the preset and zero overrides are ignored.
-- `overrides` (e.g. {vocab_size = tok:vocab_size()}) apply to presets.
function Run:model(spec, overrides)
  spec = spec or self.settings.model
  local seed = self.settings.seed
  if type(spec) == "string" then return core.model.load(spec, { seed = seed }) end
  if type(spec) ~= "table" then error("run:model: settings.model must be a preset, a folder or a table", 2) end
  if spec.path and spec.path ~= "" then return core.model.load(spec.path) end
  local opts = { seed = spec.seed or seed }
  for key, value in pairs(spec) do
    if key ~= "preset" and key ~= "path" and key ~= "seed" and value ~= 0 and value ~= "" then opts[key] = value end
  end
  for key, value in pairs(overrides or {}) do
    if opts[key] == nil then opts[key] = value end
  end
  return core.model.create(spec.preset or "gpt2-tiny", opts)
end

--- The tokenizer settings.tokenizer names: "tasks" (the task suite's,
-- built in), a tokenizer.json, or a folder holding one.
function Run:tokenizer(spec)
  spec = spec or self.settings.tokenizer or "tasks"
  if spec == "tasks" then return core.tasks.tokenizer() end
  if not spec:match("%.json$") then spec = spec .. "/tokenizer.json" end
  return core.tokenizer.load(spec)
end

--- Marks the start of the step loop: `total` steps (for the ETA).
function Run:begin_steps(total)
  self.steps = total
  self._last_log = core.clock()
end

local function duration(seconds)
  if seconds >= 3600 then return ("%dh%02dm"):format(seconds // 3600, seconds % 3600 // 60) end
  if seconds >= 60 then return ("%dm%02ds"):format(seconds // 60, seconds % 60) end
  return ("%ds"):format(seconds)
end

local progress_fields = {
  { "stage", "stage %d" }, { "loss", "loss %.4f" }, { "reward", "reward %.3f" }, { "entropy", "entropy %.3f" },
  { "length", "len %.1f" }, { "accuracy", "acc %.3f" }, { "eval_accuracy", "eval %.3f" },
  { "tokens_per_second", "%.0f tok/s" },
}

function Run:progress_line(m)
  local parts = { self.steps and ("step %d/%d"):format(m.step, self.steps) or ("step %d"):format(m.step) }
  for _, f in ipairs(progress_fields) do
    if type(m[f[1]]) == "number" then parts[#parts + 1] = f[2]:format(m[f[1]]) end
  end
  if self.steps and self._logged > 0 then
    local per_step = self._step_seconds / self._logged
    parts[#parts + 1] = "ETA " .. duration(math.floor(per_step * math.max(0, self.steps - m.step) + 0.5))
  end
  return table.concat(parts, " | ")
end

-- Wall-clock fields of a step's metrics. They go to timings.jsonl, so that
-- metrics.jsonl holds only what the computation determines: the same bytes
-- for the same seed, machine and thread count, resumed or not.
local timing_fields = { seconds = true, tokens_per_second = true, generate_seconds = true }

--- Logs one step: m.step is required; m.tokens (processed this step) gives
-- tokens/s. Appends a line to metrics.jsonl (and its timings to
-- timings.jsonl) and redraws the progress line.
function Run:log(m)
  if type(m) ~= "table" or math.type(m.step) ~= "integer" then
    error("run:log: a table with an integer 'step' expected", 2)
  end
  local now = core.clock()
  local dt = now - (self._last_log or self._start)
  self._last_log = now
  self._step_seconds, self._logged = self._step_seconds + dt, self._logged + 1
  m.seconds = dt
  if m.tokens and dt > 0 and not m.tokens_per_second then m.tokens_per_second = m.tokens / dt end
  local numbers, timings = {}, { step = m.step }
  for key, value in pairs(m) do
    if timing_fields[key] then timings[key] = value else numbers[key] = value end
  end
  self._metrics:write(numbers)
  self._timings:write(timings)
  self._lines = self._lines + 1
  self.last = m
  core.console.progress(self:progress_line(m))
end

--- Saves a checkpoint of the trainer (weights, AdamW moments, optimizer step)
-- and the RNG, with `state` (plain data: the loop's own state) beside it, for
-- the loop `phase` ("sft", "rl", ...: a recipe may run several loops, each
-- resuming only from its own checkpoints). checkpoints/latest.json names the
-- newest, and how many metrics lines it covers: log a step before its
-- checkpoint, so that a stop between the two repeats the step rather than
-- losing its line. The two newest checkpoints are kept.
function Run:checkpoint(step, trainer, rng, state, phase)
  phase = phase or "train"
  local dir = self:path("checkpoints")
  core.fs.mkdir(dir)
  local base = ("%s-step-%06d"):format(phase, step)
  trainer:save(dir .. "/" .. base .. ".safetensors", rng)
  core.json.write(dir .. "/" .. base .. ".json", state or {})
  local kept = self._checkpoints
  if kept[#kept] ~= base then kept[#kept + 1] = base end
  local removed = {}
  while #kept > checkpoints_kept do removed[#removed + 1] = table.remove(kept, 1) end
  core.json.write(dir .. "/latest.json", { phase = phase, step = step, checkpoint = base .. ".safetensors",
                                           state = base .. ".json", metrics_lines = self._lines, kept = kept })
  -- only once latest.json no longer names them
  for _, old in ipairs(removed) do
    core.fs.remove(dir .. "/" .. old .. ".safetensors")
    core.fs.remove(dir .. "/" .. old .. ".json")
  end
  self._last_checkpoint = core.clock()
end

--- On --resume: loads the latest checkpoint into trainer (and rng) when it
-- belongs to `phase`, and returns its step and saved state; nil otherwise.
function Run:restore(trainer, rng, phase)
  local r = self.resume
  if not r or not r.checkpoint or (r.phase or "train") ~= (phase or "train") then return nil end
  trainer:load(r.checkpoint, rng)
  return r.step, r.state
end

--- A training loop's step boundary, after run:log: writes a checkpoint when
-- one is due (every ckpt.every steps, ckpt.minutes after the last one, at
-- the last step, or when a stop signal came), then ends the run if a signal
-- asked: status "interrupted", and `egrc run --resume` continues here.
-- ckpt = {phase=, trainer=, rng=, state=, every=, minutes=, last=}.
function Run:step_done(step, ckpt)
  local signal = core.interrupted()
  local every, minutes = ckpt.every or 0, ckpt.minutes or 0
  if signal or ckpt.last or (every > 0 and step % every == 0)
     or (minutes > 0 and core.clock() - self._last_checkpoint >= 60 * minutes) then
    self:checkpoint(step, ckpt.trainer, ckpt.rng, ckpt.state, ckpt.phase)
  end
  if signal then self:stop(("%s step %d"):format(ckpt.phase or "train", step)) end
end

--- Ends the run because of a stop signal, at `where` (a checkpoint, if the
-- run needs one, was written just before).
function Run:stop(where)
  local signal = core.interrupted() or "a signal"
  self.stopped_at = where
  error(("interrupted by %s at %s"):format(signal, where), 0)
end

-- Whether the summary at path is that of a run that completed.
local function completed(path)
  local readable, previous = pcall(core.json.read, path)
  return readable and type(previous) == "table" and previous.status == "ok"
end

--- Called by `egrc run` after main (also when it failed): writes summary.json
-- and prints the summary line.
function Run:finish(ok, err)
  core.console.finish()
  self._metrics:close()
  local hook_seconds, hook_calls = core.hook_stats()
  local seconds = core.clock() - self._start
  local base = self._step_seconds > 0 and self._step_seconds or seconds
  self._timings:close()
  local stopped = not ok and core.interrupted()
  local summary = {
    recipe = self.name, status = ok and "ok" or stopped and "interrupted" or "failed", out = self.out,
    started = self.started,
    seconds = seconds, steps = self._logged, step_seconds = self._step_seconds,
    lua_hook_seconds = hook_seconds, lua_hook_calls = hook_calls,
    lua_hook_fraction = base > 0 and hook_seconds / base or 0,
    final = self.last, settings = self.settings, resumed_from = self.resume and self.resume.step,
  }
  if err then summary.error = tostring(err):match("^(.-)\nstack traceback:") or tostring(err) end
  if stopped then summary.stopped_at = self.stopped_at end
  -- the recipe's fields join egrc's, but how the run ended is egrc's to say
  local ending = { status = summary.status, error = summary.error, stopped_at = summary.stopped_at }
  for key, value in pairs(self.summary) do summary[key] = value end
  for _, key in ipairs { "status", "error", "stopped_at" } do summary[key] = ending[key] end
  summary.lua_limits = core.lua_limits()
  -- a resume that fails leaves a completed run's summary.json as it was
  local path = self:path("summary.json")
  if not ok and self.resume and completed(path) then path = self:path("summary-resume-failed.json") end
  core.json.write(path, summary)
  print(("%s: %s, %d steps in %.1f s; Lua hooks %.4f s = %.3f%% of step time; %s"):format(
    self.name, summary.status, self._logged, seconds, hook_seconds, 100 * summary.lua_hook_fraction, path))
  if stopped then
    print(("%s: stopped by %s; continue with: egrc run --resume %s"):format(self.name, stopped, self.out))
  end
  return summary
end

return M
