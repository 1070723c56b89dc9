-- The paper's comparison in miniature, from one base reasoner: accuracy-only
-- GRPO, the Kimi 1.5 length penalty, and the entropy-guided method, each for
-- the same number of RL steps, then one table (accuracy, mean tokens, length
-- ratio, accuracy change, final token entropy) and report.html:
--
--   egrc run recipes/compare.lua [--set rl.steps=60 ...]
local egrc = require("egrc")
local reasoner = require("egrc.reasoner")
local report = require("egrc.report")
local R = egrc.rewards

-- The entropy-guided method's settings (stage1, switch, stage2) are the main
-- job's (lua/egrc/method.lua); the baselines sample at rl.temperature.
local settings = reasoner.add_defaults(egrc.method.add_defaults {
  rl = { steps = 100, prompts = 16, group = 8, lr = 1e-4, budget = 250, temperature = 1.0, max_difficulty = 2 },
})

-- The three methods as egrc.rl.train options.
local function methods(s)
  local function grpo(reward)
    return { { temperature = s.rl.temperature, budget = s.rl.budget, advantage = "grpo", reward = reward } }
  end
  local guided = egrc.method.train_options(s)
  return {
    { name = "accuracy-only GRPO", stages = grpo(R.accuracy()) },
    { name = "Kimi 1.5 length penalty", stages = grpo(R.kimi()) },
    { name = "entropy-guided", stages = guided.stages, schedule = guided.schedule },
  }
end

return {
  settings = settings,
  -- on a GPU backend: a larger base reasoner, and 4x the prompts per RL step
  gpu_settings = reasoner.gpu_settings { rl = { prompts = 64 } },
  main = function(run)
    local s = run.settings
    local base_model, tok = reasoner.ensure(run, s.base)
    local base = reasoner.evaluate(base_model, tok, s.eval)
    local rows = { { "method", "accuracy", "mean tokens", "length ratio", "accuracy change", "final entropy" },
                   { "base", ("%.3f"):format(base.accuracy), ("%.1f"):format(base.mean_length), "1.00", "", "" } }
    local results, guided_steps, guided_switch = { base = base }, {}, nil
    for index, method in ipairs(methods(s)) do
      local model, steps = base_model:clone(), {}
      local state = egrc.rl.train(run, {
        phase = "rl" .. index, -- each method's checkpoints are its own
        model = model, tokenizer = tok, data = egrc.data.tasks { max_difficulty = s.rl.max_difficulty },
        steps = s.rl.steps, prompts = s.rl.prompts, group = s.rl.group, budget = s.rl.budget,
        stages = method.stages, schedule = method.schedule,
        optim = { lr = s.rl.lr, min_lr = s.rl.lr, steps = s.rl.steps, weight_decay = 0 },
        on_step = function(_, m) steps[#steps + 1] = m end,
      })
      local final = reasoner.evaluate(model, tok, s.eval)
      results[method.name] = final
      rows[#rows + 1] = { method.name, ("%.3f"):format(final.accuracy), ("%.1f"):format(final.mean_length),
                          ("%.2f"):format(final.mean_length / base.mean_length),
                          ("%+.3f"):format(final.accuracy - base.accuracy), ("%.3f"):format(steps[#steps].entropy) }
      if method.schedule then guided_steps, guided_switch = steps, state.switch_step end
    end
    print(egrc.eval.table(rows))
    run.summary.compare = results
    egrc.json.write(run:path("compare.json"), results)
    report.write(run:path("report.html"), {
      title = "egrc: accuracy-only GRPO vs length penalty vs entropy-guided compression",
      tables = { { caption = "Same base, same RL steps (greedy evaluation)", rows = rows } },
      steps = guided_steps, switch_step = guided_switch,
      charts = { { "entropy", "entropy-guided: mean token entropy" }, { "length", "entropy-guided: mean tokens" },
                 { "accuracy", "entropy-guided: sample accuracy" } },
    })
  end,
}
