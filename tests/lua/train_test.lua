-- egrc.sft.train and egrc.rl.train end to end on a tiny model: losses fall,
-- stages switch, metrics and checkpoints are written, hooks are timed.
-- With --set crash_at=N the run fails after step N (tests/run_test.sh then
-- resumes it and compares the metrics with an uninterrupted run).
local egrc = require("egrc")
local R = egrc.rewards

return {
  settings = { tests = "tests/lua", mode = "rl", steps = 4, crash_at = 0, lr = 3e-3 },

  -- stage 2 from step 3 on, with a higher temperature and its own lr (opts.stages[2])
  schedule = function(state, run)
    if state.step >= 3 and state.stage == 1 then state.stage = 2 end
  end,

  main = function(run)
    local check = dofile(run.settings.tests .. "/check.lua")
    local s = run.settings
    local tok = run:tokenizer()
    local model = egrc.model.create("gpt2-tiny", { vocab_size = tok:vocab_size(), max_seq = 96, seed = s.seed })
    local function crash(state)
      if state.step == s.crash_at then error("simulated crash at step " .. state.step) end
    end

    if s.mode == "sft" then
      local trainer = egrc.sft.train(run, {
        model = model, tokenizer = tok, data = egrc.data.task_sft { style = "concise", difficulty = 1 },
        steps = s.steps, batch = 4, micro_batches = 2, optim = { lr = s.lr, steps = s.steps },
        checkpoint_every = 2, on_step = crash })
      local rows = egrc.jsonl(run:path("metrics.jsonl"))
      check.eq(#rows, s.steps, "one metrics line per step")
      check.ok(rows[#rows].loss < rows[1].loss - 0.5, "SFT lowers the loss")
      check.eq(trainer:step(), s.steps, "optimizer steps")
      return check.done("train_test sft")
    end

    -- RL: reward the share of digits in the completion, which a random model
    -- can raise quickly (the task answers are out of its reach)
    local digits = {}
    for d = 0, 9 do digits[tok:token_id(tostring(d))] = true end
    local function digit_share(x)
      local ids, n = tok:encode(x.text), 0
      for _, id in ipairs(ids) do n = n + (digits[id] and 1 or 0) end
      return n / math.max(1, #ids)
    end
    local seen = {}
    local state = egrc.rl.train(run, {
      model = model, tokenizer = tok, data = egrc.data.tasks { difficulty = 1 },
      steps = s.steps, prompts = 2, group = 4, budget = 12, optim = { lr = s.lr, steps = 100 },
      stages = {
        { temperature = 0.8, advantage = "grpo", reward = digit_share },
        { temperature = 1.2, advantage = "decomposed", length_weight = 0.5, lr = 7e-4,
          reward = function(x) return digit_share(x), 1 - x.length / x.budget end },
      },
      grpo = { epochs = 2 }, checkpoint_every = 2,
      eval = { data = { egrc.tasks.sample(egrc.rng(1), { split = "eval", difficulty = 1 }) }, max_new_tokens = 8 },
      on_step = function(st, m) seen[#seen + 1] = m.stage; crash(st) end,
    })
    local rows = egrc.jsonl(run:path("metrics.jsonl"))
    check.eq(#rows, s.steps, "one metrics line per step")
    for i, row in ipairs(rows) do
      check.eq(row.step, i, "metrics step")
      check.ok(row.entropy > 0 and row.length >= 1 and row.tokens > 0, "metrics fields")
      check.eq(row.optimizer_steps, 2, "two epochs, two optimizer steps")
    end
    check.eq(rows[1].stage, 1, "stage 1 first")
    check.eq(rows[1].temperature, 0.8, "stage 1 temperature")
    check.eq(rows[s.steps].stage, 2, "the schedule switched to stage 2")
    check.eq(rows[s.steps].temperature, 1.2, "stage 2 temperature")
    check.ok(math.abs(rows[1].lr - 7e-4) > 1e-5, "stage 1 follows the optimizer's schedule")
    check.near(rows[s.steps].lr, 7e-4, 1e-6, "stage 2's own learning rate")
    check.ok(rows[s.steps].eval_accuracy ~= nil, "evaluation at the last step")
    check.eq(state.stage, 2, "final state")
    check.ok(state.entropy_slope ~= nil and #state.history.entropy == s.steps, "entropy history and slope")
    check.ok(egrc.fs.exists(run:path("checkpoints/latest.json")), "checkpoint written")
    local _, calls = egrc.hook_stats()
    local ran = s.steps - (run.resume and run.resume.step or 0)
    check.ok(calls >= 3 * ran, "schedule, rewards and on_step ran as timed hooks")
    check.done("train_test rl")
  end,
}
