-- egrc.method: the paper's two-stage method as egrc.rl.train options. The
-- main job (recipes/entropy_guided.lua) and the comparison
-- (recipes/compare.lua) both build their run from here, so the method they
-- report is the same one.
--
-- Stage 1, compression: length clipping at the budget L, reward r^(len/L) for
-- correct answers, absolute positive-only advantage, cool sampling.
-- The switch: once the mean token entropy has descended and flattened (its
-- slope over a window above -eps), or at a step cap.
-- Stage 2, exploration: GRPO at a higher temperature on a decomposed
-- accuracy + length reward.
local rewards = require("egrc.rewards")
local schedule = require("egrc.schedule")
local util = require("egrc.util")

local method = {}

--- Default settings: a recipe copies them into its settings (stage1, switch,
-- stage2), where --set can change them.
method.defaults = {
  stage1 = { temperature = 0.65, budget = 250, r = 0.3, beta = 1.0 },
  switch = { window = 10, eps = 0.002, min_step = 25, max_step = 60 },
  stage2 = { temperature = 1.0, budget = 250, length_weight = 0.3, filter_zero_variance = true, lr = 0 },
}

--- Copies the defaults into settings (a recipe's settings table), so
-- settings.stage1, .switch and .stage2 exist.
function method.add_defaults(settings)
  for part, values in pairs(method.defaults) do settings[part] = util.copy(values) end
  return settings
end

--- The stages and schedule options of egrc.rl.train for settings s (with
-- s.stage1, s.switch, s.stage2). A stage's lr of 0 keeps the run's rl.lr.
function method.train_options(s)
  return {
    budget = s.stage1.budget,
    stages = {
      { temperature = s.stage1.temperature, budget = s.stage1.budget, advantage = "absolute", beta = s.stage1.beta,
        positive_only = true, reward = rewards.exp_length { r = s.stage1.r } },
      { temperature = s.stage2.temperature, budget = s.stage2.budget, advantage = "decomposed",
        length_weight = s.stage2.length_weight, positive_only = false,
        filter_zero_variance = s.stage2.filter_zero_variance, reward = rewards.decomposed(),
        lr = s.stage2.lr > 0 and s.stage2.lr or nil },
    },
    schedule = schedule.entropy_guided { window = s.switch.window, eps = s.switch.eps, min_step = s.switch.min_step,
                                         max_step = s.switch.max_step },
  }
end

return method
