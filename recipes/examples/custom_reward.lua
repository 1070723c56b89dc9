-- A complete recipe: a reward written in Lua around a C function (through
-- egrc.ffi), and a schedule of its own. Build the C part once, then run:
--
--   cc -shared -fPIC -O2 -o libcustom_reward.so recipes/examples/custom_reward.c
--   egrc run recipes/examples/custom_reward.lua --set reward.library=./libcustom_reward.so
--
-- Start from a model that already reasons (set model.path to the folder an
-- SFT recipe saved); the preset here is randomly initialised.
local egrc = require("egrc")
local R = egrc.rewards

return {
  settings = {
    model = { preset = "gpt2-tiny", path = "", max_seq = 256 },
    steps = 60, prompts = 8, group = 8, lr = 2e-5,
    budget = { start = 160, floor = 64, shrink = 0.95 },
    reward = { library = "./libcustom_reward.so", r = 0.5, per_connector = 0.05 },
    switch = { window = 8, eps = 0.002, max_step = 40 },
    eval = { per_cell = 2, every = 20 },
  },

  -- Called before every step. Stage 1 compresses: cool sampling and a budget
  -- that shrinks every 5 steps. Once the mean token entropy stops falling,
  -- stage 2 explores (opts.stages[2] below) and connectors cost less.
  schedule = function(state, run)
    local s = run.settings
    if state.stage ~= 1 then return end
    if state.step % 5 == 0 then
      state.budget = math.max(s.budget.floor, math.floor(state.budget * s.budget.shrink))
    end
    local slope = state.entropy_slope
    if (slope and state.step > s.switch.window and slope > -s.switch.eps) or state.step > s.switch.max_step then
      state.stage = 2
      state.weights.connectors = 0.5
    end
  end,

  main = function(run)
    local s = run.settings
    local lib = egrc.ffi.load(s.reward.library)
    local count_connectors = lib:func("count_connectors", "int(const char*)")
    local exp_length = R.exp_length { r = s.reward.r }

    -- Called for every completion x: x.text, x.length, x.correct, x.budget,
    -- x.weights (set by the schedule), x.group ... (see egrc.rewards).
    local function reward(x)
      local penalty = s.reward.per_connector * (x.weights.connectors or 1) * count_connectors(x.text)
      return math.max(0, exp_length(x) - penalty)
    end

    local tok = run:tokenizer()
    local model = run:model(nil, { vocab_size = tok:vocab_size() })
    egrc.rl.train(run, {
      model = model, tokenizer = tok, data = egrc.data.tasks(),
      steps = s.steps, prompts = s.prompts, group = s.group, budget = s.budget.start,
      optim = { lr = s.lr, steps = s.steps, weight_decay = 0 },
      reward = reward,
      stages = {
        { temperature = 0.7, advantage = "absolute", positive_only = true },
        { temperature = 1.0, advantage = "grpo" },
      },
      eval = { data = egrc.data.task_eval { per_cell = s.eval.per_cell }, every = s.eval.every,
               max_new_tokens = s.budget.start },
    })
    model:save(run:path("model"))
  end,
}
