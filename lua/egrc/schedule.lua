-- egrc.schedule: schedules for egrc.rl.train. A schedule is a function
-- schedule(state, run) called at the start of every step with the training
-- state; it changes state in place. What it may set:
--
--   state.stage          1, 2, ...: a new stage applies opts.stages[stage]
--   state.temperature    rollout temperature      state.top_p    nucleus
--   state.budget         max new tokens (the length budget L)
--   state.advantage      "grpo", "dr_grpo", "absolute" or "decomposed"
--   state.beta, state.length_weight, state.positive_only
--   state.weights        a table reward functions read as s.weights
--
-- What it reads (from the steps so far; nil before the first):
--   state.step, state.steps, state.entropy (mean token entropy at T = 1),
--   state.entropy_slope (least-squares slope over the last `window` steps),
--   state.length, state.length_slope, state.accuracy, state.reward_mean,
--   state.reward_std, state.clipped (share of rollouts cut at the budget),
--   state.eval_accuracy, state.history.{entropy,length,accuracy,reward}.
local util = require("egrc.util")

local schedule = {}

--- Least-squares slope (per step) of the last `window` values, or nil when
-- fewer than 2 are available.
function schedule.slope(values, window)
  local n = math.min(#values, window or #values)
  if n < 2 then return nil end
  local first = #values - n
  local mx, my = (n + 1) / 2, 0
  for i = 1, n do my = my + values[first + i] end
  my = my / n
  local sxy, sxx = 0, 0
  for i = 1, n do
    sxy = sxy + (i - mx) * (values[first + i] - my)
    sxx = sxx + (i - mx) ^ 2
  end
  return sxy / sxx
end

--- The method's switch: stage 1 (compression) until the mean token entropy
-- has descended and flattened (its slope over `window` steps is above
-- -eps) after at least `min_step` steps, or the step passes `max_step`, or
-- the mean length falls to `length`; then stage 2 (exploration).
function schedule.entropy_guided(opts)
  opts = util.check_options("egrc.schedule.entropy_guided", opts, { "window", "eps", "min_step", "max_step", "length" })
  local window, eps = opts.window or 10, opts.eps or 1e-3
  local min_step = opts.min_step or window
  return function(state)
    if state.stage ~= 1 then return end
    local slope = state.entropy_slope
    local reason
    if slope and state.step > min_step and #state.history.entropy >= window and slope > -eps then
      reason = ("entropy flattened (slope %.2g over %d steps)"):format(slope, window)
    elseif opts.max_step and state.step > opts.max_step then
      reason = ("step cap %d"):format(opts.max_step)
    elseif opts.length and state.length and state.length <= opts.length then
      reason = ("mean length %.1f <= %g"):format(state.length, opts.length)
    end
    if reason then
      state.stage = 2
      state.switch_step, state.switch_reason = state.step, reason
    end
  end
end

--- Stage 2 from step `step` on.
function schedule.fixed(opts)
  opts = util.check_options("egrc.schedule.fixed", opts, { "step" })
  local at = assert(opts.step, "egrc.schedule.fixed: opts.step is required")
  return function(state)
    if state.stage == 1 and state.step >= at then
      state.stage, state.switch_step, state.switch_reason = 2, state.step, ("fixed step %d"):format(at)
    end
  end
end

--- Changes nothing: one stage throughout.
function schedule.constant()
  return function() end
end

return schedule
