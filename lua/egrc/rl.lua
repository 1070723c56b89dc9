-- egrc.rl: the RL loop. Each step: the schedule adjusts the state, prompts
-- are drawn and sampled G times each (C), completions are graded, the
-- reward function scores each one (Lua), and one GRPO/method update runs on
-- the batch (C). Per-token work stays in C; Lua sees one call per step for
-- the schedule and one per completion for the reward.
local core = require("egrc.core")
local data = require("egrc.data")
local eval = require("egrc.eval")
local rewards = require("egrc.rewards")
local schedule = require("egrc.schedule")
local util = require("egrc.util")

local rl = {}

-- Fields a stage table (opts.stages[i]) may set on the state when it begins.
local stage_fields = { "temperature", "top_p", "budget", "advantage", "beta", "length_weight", "positive_only",
                       "filter_zero_variance", "weights" }
local stage_defaults = { temperature = 1.0, top_p = 1.0, budget = 128, advantage = "grpo", beta = 1.0,
                         length_weight = 1.0, positive_only = false, filter_zero_variance = false }
local history_cap = 200

local function apply_stage(state, stages)
  local stage = stages[state.stage]
  if not stage then
    error(("egrc.rl: the schedule moved to stage %s, but opts.stages has %d"):format(tostring(state.stage), #stages), 0)
  end
  for _, key in ipairs(stage_fields) do
    if stage[key] ~= nil then state[key] = stage[key] end
  end
  state.applied_stage = state.stage
end

-- A stage's own learning rate (constant while it lasts) replaces the
-- optimizer's schedule; stages without one keep the schedule as it is.
local function apply_stage_lr(trainer, stage)
  if stage.lr then trainer:set { lr = stage.lr, min_lr = stage.lr } end
end

local function new_state(opts, stages)
  local state = { step = 0, steps = opts.steps, stage = 1, weights = {},
                  history = { entropy = {}, length = {}, accuracy = {}, reward = {} } }
  for key, value in pairs(stage_defaults) do state[key] = value end
  if opts.budget then state.budget = opts.budget end
  apply_stage(state, stages)
  return state
end

-- Scores every completion (the Lua-hook part of a step). Returns the
-- rewards and, when the reward gives a second value, the length terms.
local function score(reward, items, texts, lengths, correct, answers, finishes, group, state)
  local R, Rlen = {}, nil
  local sample = { budget = state.budget, stage = state.stage, weights = state.weights }
  for first = 1, #texts, group do
    local glen, gcor = {}, {}
    for i = first, first + group - 1 do
      glen[#glen + 1], gcor[#gcor + 1] = lengths[i], correct[i]
    end
    sample.group = rewards.group_stats(glen, gcor)
    for i = first, first + group - 1 do
      local item = items[(i - 1) // group + 1]
      sample.text, sample.length, sample.correct, sample.answer = texts[i], lengths[i], correct[i], answers[i]
      sample.gold, sample.finish, sample.item, sample.index = item.answer, finishes[i], item, i - first + 1
      local r, rlen = reward(sample)
      if type(r) ~= "number" then
        error(("reward function returned %s for completion %d (a number expected)"):format(type(r), i), 0)
      end
      R[i] = r
      if rlen ~= nil then
        Rlen = Rlen or {}
        Rlen[i] = rlen
      end
    end
  end
  if Rlen and #Rlen ~= #R then error("reward function returned a length term for some completions only", 0) end
  return R, Rlen
end

local train_options = { "model", "tokenizer", "trainer", "optim", "data", "steps", "prompts", "group", "budget",
                        "stages", "reward", "schedule", "grpo", "ref", "grade", "template", "stop", "rng", "window",
                        "eval", "checkpoint_every", "checkpoint_minutes", "phase", "on_step" }

--- egrc.rl.train(run, opts) -> the final state. opts:
--   model, tokenizer (required); data: a list of items or function(rng) -> item
--   steps (100), prompts per step (8), group: samples per prompt (8)
--   stages: list of stage tables ({temperature=, budget=, advantage=, beta=,
--     length_weight=, positive_only=, weights=, reward=, lr=}); default one stage
--   reward: function(sample) -> r [, r_len] (default: a stage's reward, else
--     run.recipe.reward, else accuracy); schedule: function(state, run)
--     (default run.recipe.schedule, else none; see egrc.schedule)
--   trainer, or optim = {lr=, ...} for a new one; grpo = {clip_low=, epochs=, ...}
--   ref: a reference model for grpo.kl_coef; grade(item, text) -> correct, answer
--   eval = {data=, every=, ...egrc.eval.run options}
--   checkpoint_every (0: off) steps and/or checkpoint_minutes (5; 0: off), and
--     always at the last step and on a stop signal; phase ("rl"): the name
--     its checkpoints resume under
--   window: steps for the entropy/length slopes (10); on_step(state, metrics)
function rl.train(run, opts)
  opts = util.check_options("egrc.rl.train", opts, train_options)
  local model = opts.model or error("egrc.rl.train: opts.model is required", 2)
  local tok = opts.tokenizer or error("egrc.rl.train: opts.tokenizer is required", 2)
  local steps, P, G = opts.steps or 100, opts.prompts or 8, opts.group or 8
  local stages = opts.stages or { {} }
  local reward_default = opts.reward or run.recipe.reward or rewards.accuracy()
  local sched = opts.schedule or run.recipe.schedule or schedule.constant()
  local grade, template = opts.grade or eval.grade, opts.template or data.prompt
  local next_item = data.source(opts.data or error("egrc.rl.train: opts.data is required", 2))
  local trainer = opts.trainer or core.trainer(model, opts.optim or { lr = 1e-5, steps = steps, weight_decay = 0 })
  local rng = opts.rng or core.rng(run.settings.seed)
  local stop = opts.stop or util.eos_id(tok, model)
  local window = opts.window or 10
  local grpo = {}
  for key, value in pairs(opts.grpo or {}) do grpo[key] = value end
  grpo.group = G
  local eval_opts = opts.eval
  local phase = opts.phase or "rl"

  local state = new_state({ steps = steps, budget = opts.budget }, stages)
  local start = 1
  local resumed, saved = run:restore(trainer, rng, phase)
  if resumed then
    for key, value in pairs(saved or {}) do state[key] = value end
    state.steps, start = steps, resumed + 1
  end
  apply_stage_lr(trainer, stages[state.stage])
  run:begin_steps(steps)
  for step = start, steps do
    state.step = step
    core.hook(sched, state, run)
    if state.stage ~= state.applied_stage then
      apply_stage(state, stages)
      apply_stage_lr(trainer, stages[state.stage])
    end

    local items, prompts = {}, {}
    for i = 1, P do
      items[i] = next_item(rng)
      prompts[i] = tok:encode(template(items[i]))
    end
    local rollout = core.generate(model, prompts, {
      temperature = state.temperature, top_p = state.top_p, max_new_tokens = state.budget, stop = stop,
      seed = run.settings.seed * 1000003 + step, ["repeat"] = G })
    local texts, lengths = rollout:texts(tok), rollout:lengths()
    local correct, answers, finishes = {}, {}, {}
    for i = 1, #texts do
      correct[i], answers[i] = grade(items[(i - 1) // G + 1], texts[i])
      finishes[i] = rollout:finish(i)
      -- cut off at the budget without a marked answer: not correct, whatever number it ended on
      -- (the grader's unmarked fallbacks are for finished responses; docs/method.md, notation)
      correct[i] = (correct[i] and not (finishes[i] == "length" and answers[i] == nil)) and true or false
    end
    local R, Rlen = core.hook(score, stages[state.stage].reward or reward_default, items, texts, lengths,
                              correct, answers, finishes, G, state)
    grpo.advantage, grpo.beta, grpo.length_weight = state.advantage, state.beta, state.length_weight
    grpo.positive_only, grpo.filter_zero_variance = state.positive_only, state.filter_zero_variance
    local stats = trainer:grpo_step(rollout, R, Rlen, grpo, opts.ref)
    local rs = rollout:stats()
    rollout:free()

    -- lengths by verdict (nil when no sample had it): does RL shorten the right answers or the wrong ones?
    local n_correct, len_correct, len_incorrect = 0, 0, 0
    for i, c in ipairs(correct) do
      if c then n_correct, len_correct = n_correct + 1, len_correct + lengths[i]
      else len_incorrect = len_incorrect + lengths[i] end
    end
    local n_incorrect = #correct - n_correct
    state.entropy, state.length, state.clipped = rs.mean_entropy, rs.mean_length, rs.clipped
    state.accuracy = n_correct / #correct
    state.reward_mean, state.reward_std = util.mean_std(R)
    state.loss = stats.loss
    local h = state.history
    util.push_capped(h.entropy, state.entropy, history_cap)
    util.push_capped(h.length, state.length, history_cap)
    util.push_capped(h.accuracy, state.accuracy, history_cap)
    util.push_capped(h.reward, state.reward_mean, history_cap)
    state.entropy_slope = schedule.slope(h.entropy, window)
    state.length_slope = schedule.slope(h.length, window)

    local m = { step = step, stage = state.stage, loss = stats.loss, reward = state.reward_mean,
                reward_std = state.reward_std, entropy = state.entropy, entropy_slope = state.entropy_slope,
                train_entropy = stats.entropy, length = state.length, accuracy = state.accuracy,
                clipped = state.clipped, temperature = state.temperature, budget = state.budget,
                lr = trainer:lr(), kl = stats.kl, clip_fraction = stats.clip_fraction, grad_norm = stats.grad_norm,
                optimizer_steps = stats.optimizer_steps, zero_variance_groups = stats.zero_variance_groups,
                zero_variance_share = stats.zero_variance_groups / P,
                length_correct = n_correct > 0 and len_correct / n_correct or nil,
                length_incorrect = n_incorrect > 0 and len_incorrect / n_incorrect or nil,
                tokens = rs.tokens, generate_seconds = rs.prefill_seconds + rs.decode_seconds }
    if eval_opts and ((eval_opts.every and step % eval_opts.every == 0) or step == steps) then
      local e_opts = {}
      for key, value in pairs(eval_opts) do
        if key ~= "data" and key ~= "every" then e_opts[key] = value end
      end
      e_opts.stop = e_opts.stop or stop
      local e = eval.run(model, tok, eval_opts.data, e_opts)
      state.eval_accuracy, state.eval_length = e.accuracy, e.mean_length
      m.eval_accuracy, m.eval_length = e.accuracy, e.mean_length
    end
    run:log(m)
    if opts.on_step then core.hook(opts.on_step, state, m) end
    run:step_done(step, { phase = phase, trainer = trainer, rng = rng, state = state, every = opts.checkpoint_every,
                          minutes = opts.checkpoint_minutes or 5, last = step == steps })
  end
  return state, trainer
end

return rl
