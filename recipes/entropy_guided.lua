-- The main job: entropy-guided reasoning compression on the built-in task
-- suite (the method: "Entropy-Guided Reasoning Compression", arXiv 2511.14258;
-- writing recipes: docs/recipes.md).
--
--   egrc run recipes/entropy_guided.lua [--backend cuda] [--set rl.steps=200 ...]
--
-- 1. the verbose base reasoner (trained by SFT on first use, reused after);
-- 2. its accuracy and length on the evaluation set;
-- 3. stage 1, compression: length clipping at the budget L, reward r^(len/L)
--    for correct answers, absolute positive-only advantage, cool sampling;
-- 4. the entropy-guided switch: once the mean token entropy has descended and
--    flattened (its slope over a window above -eps), or at a step cap;
-- 5. stage 2, exploration: GRPO at a higher temperature on a decomposed
--    accuracy + length reward;
-- 6. the same evaluation again, a before/after table per family,
--    summary.json and report.html.
-- Ctrl-C (or SIGTERM) stops at the end of a step with a checkpoint, in SFT
-- as in RL; `egrc run --resume runs/<this run>` carries on from there.
-- (stages and switch: lua/egrc/method.lua, shared with recipes/compare.lua)
local egrc = require("egrc")
local reasoner = require("egrc.reasoner")
local report = require("egrc.report")

local settings = reasoner.add_defaults(egrc.method.add_defaults {
  rl = { steps = 100, prompts = 16, group = 8, lr = 1e-4, max_difficulty = 2, checkpoint_every = 10 },
})

-- One row per family: accuracy and mean tokens before and after.
local function comparison(base, final)
  local rows = { { "family", "base acc", "final acc", "base tokens", "final tokens", "length ratio" } }
  local families, ratio_sum, delta_sum = {}, 0, 0
  for family in pairs(base.by_family) do families[#families + 1] = family end
  table.sort(families)
  for _, family in ipairs(families) do
    local b, f = base.by_family[family], final.by_family[family]
    local ratio = f.mean_length / b.mean_length
    ratio_sum, delta_sum = ratio_sum + ratio, delta_sum + (f.accuracy - b.accuracy)
    rows[#rows + 1] = { family, ("%.3f"):format(b.accuracy), ("%.3f"):format(f.accuracy),
                        ("%.1f"):format(b.mean_length), ("%.1f"):format(f.mean_length), ("%.2f"):format(ratio) }
  end
  local n = #families
  rows[#rows + 1] = { "mean", ("%.3f"):format(base.accuracy), ("%.3f"):format(final.accuracy),
                      ("%.1f"):format(base.mean_length), ("%.1f"):format(final.mean_length),
                      ("%.2f"):format(ratio_sum / n) }
  return rows, ratio_sum / n, delta_sum / n
end

local function result_json(r)
  return { accuracy = r.accuracy, mean_tokens = r.mean_length, per_benchmark = r.by_family }
end

return {
  settings = settings,
  -- on a GPU backend: a larger base reasoner, and 4x the prompts per RL step
  gpu_settings = reasoner.gpu_settings { rl = { prompts = 64 } },
  main = function(run)
    local s = run.settings
    local model, tok, sft_seconds, base_dir = reasoner.ensure(run, s.base)

    local t0 = egrc.clock()
    local base = reasoner.evaluate(model, tok, s.eval)
    local eval_seconds = egrc.clock() - t0
    print(("base: accuracy %.3f, mean %.1f tokens"):format(base.accuracy, base.mean_length))

    local steps = {}
    t0 = egrc.clock()
    local options = egrc.method.train_options(s)
    options.model, options.tokenizer, options.steps = model, tok, s.rl.steps
    options.prompts, options.group = s.rl.prompts, s.rl.group
    options.checkpoint_every = s.rl.checkpoint_every
    options.data = egrc.data.tasks { max_difficulty = s.rl.max_difficulty }
    options.optim = { lr = s.rl.lr, min_lr = s.rl.lr, steps = s.rl.steps, weight_decay = 0 }
    options.on_step = function(_, m) steps[#steps + 1] = m end
    local state = egrc.rl.train(run, options)
    local rl_seconds = egrc.clock() - t0

    t0 = egrc.clock()
    local final = reasoner.evaluate(model, tok, s.eval)
    eval_seconds = eval_seconds + egrc.clock() - t0
    model:save(run:path("model"))

    local rows, length_ratio, accuracy_delta = comparison(base, final)
    print(egrc.eval.table(rows))
    print(("length ratio %.2f, accuracy delta %+.3f; SFT %.0f s, RL %.0f s, eval %.0f s%s"):format(length_ratio,
      accuracy_delta, sft_seconds, rl_seconds, eval_seconds,
      state.switch_step and (", stage 2 from step %d (%s)"):format(state.switch_step, state.switch_reason) or ""))

    local sm = run.summary
    sm.backend, sm.base_model = s.backend, base_dir
    sm.base, sm.final = result_json(base), result_json(final)
    sm.length_ratio, sm.accuracy_delta = length_ratio, accuracy_delta
    sm.sft_seconds, sm.rl_seconds, sm.eval_seconds = sft_seconds, rl_seconds, eval_seconds
    sm.switch_step, sm.switch_reason = state.switch_step, state.switch_reason
    report.write(run:path("report.html"), {
      title = "egrc: entropy-guided reasoning compression",
      notes = { ("Base model %s; length ratio %.2f, accuracy delta %+.3f."):format(base_dir, length_ratio,
                accuracy_delta),
                state.switch_step and ("Stage 2 from step %d: %s."):format(state.switch_step, state.switch_reason)
                  or "No switch to stage 2." },
      tables = { { caption = "Before and after, per family (greedy, evaluation split)", rows = rows } },
      steps = steps, switch_step = state.switch_step,
      charts = { { "entropy", "mean token entropy (T=1)" }, { "length", "mean completion tokens" },
                 { "accuracy", "accuracy of the samples" }, { "reward", "mean reward" } },
    })
  end,
}
