-- A training run to stop and resume (tests/stop_test.sh): SFT or RL (or an
-- evaluation, mode "eval") on a
-- tiny model, each step made slow enough (settings.slow seconds) for a test
-- to send a signal mid-run. At step ready_at it writes run:path("ready") so
-- the test knows the loop is running; at the end it saves the final weights
-- to run:path("final"), which the test compares byte for byte with an
-- uninterrupted run's.
local egrc = require("egrc")

return {
  settings = { mode = "sft", steps = 24, ready_at = 3, slow = 0.05, checkpoint_every = 0 },

  main = function(run)
    local s = run.settings
    local tok = run:tokenizer()
    local model = egrc.model.create("gpt2-tiny", { vocab_size = tok:vocab_size(), max_seq = 96, seed = s.seed })
    local function on_step(m)
      if m.step == s.ready_at then egrc.fs.write(run:path("ready"), "step " .. m.step) end
      local until_time = egrc.clock() + s.slow
      while egrc.clock() < until_time do end
    end
    -- only the checkpoints asked for: every checkpoint_every steps, on a stop
    -- and at the end (no time-based ones, which would depend on the machine)
    if s.mode == "eval" then -- one prompt per batch, each graded slowly: a signal lands mid-evaluation
      local items = egrc.data.task_eval { per_cell = 1 }
      local graded = 0
      egrc.eval.run(model, tok, items, { batch = 1, max_new_tokens = 4, grade = function(item, text)
        graded = graded + 1
        on_step({ step = graded })
        return egrc.eval.grade(item, text)
      end })
      return
    end
    if s.mode == "sft" then
      egrc.sft.train(run, {
        model = model, tokenizer = tok, data = egrc.data.task_sft { style = "concise", difficulty = 1 },
        steps = s.steps, batch = 4, bucket = 4, optim = { lr = 3e-3, steps = s.steps },
        checkpoint_every = s.checkpoint_every, checkpoint_minutes = 0, on_step = on_step })
    else
      egrc.rl.train(run, {
        model = model, tokenizer = tok, data = egrc.data.tasks { difficulty = 1 },
        steps = s.steps, prompts = 2, group = 4, budget = 8, optim = { lr = 3e-3, steps = s.steps },
        stages = { { temperature = 1.0, reward = function(x) return x.length / x.budget end } },
        checkpoint_every = s.checkpoint_every, checkpoint_minutes = 0,
        on_step = function(_, m) on_step(m) end })
    end
    model:save(run:path("final"))
  end,
}
