-- The values in the run folders tests/pipeline_test.sh makes (under `work`):
-- accuracies in [0, 1], lengths within their budgets, step counts as asked,
-- losses, entropies and timings finite, the summary's ratios as its own
-- per-family numbers give them. The settings say what the script asked for.
-- Run by pipeline_test.sh as:
--   egrc run tests/lua/pipeline_outputs.lua --set tests=tests/lua --set work=DIR --set base_steps=N ...
local egrc = require("egrc")

return {
  settings = { tests = "tests/lua", case = "", work = "", base_steps = 0, rl_steps = 0, prompts = 0,
               budget = 0, eval_tokens = 0, switch_min = 0, switch_max = 0, compare_steps = 0, bench_limit = 0,
               bench_tokens = 0, analyze_prompts = 0, analyze_group = 0, analyze_budget = 0 },

  main = function(run)
    local check = dofile(run.settings.tests .. "/check.lua")
    local s = run.settings
    check.only(s.case)
    local function read(path) return egrc.json.read(s.work .. "/" .. path) end
    local function finite(x) return type(x) == "number" and x == x and x > -math.huge and x < math.huge end
    local function within(x, lo, hi, what)
      check.ok(finite(x) and x >= lo and x <= hi, ("%s = %s, wanted [%g, %g]"):format(what, tostring(x), lo, hi))
    end
    local function positive(x, what)
      check.ok(finite(x) and x > 0, ("%s = %s, wanted > 0"):format(what, tostring(x)))
    end

    -- one evaluation result (egrc.eval.run's, or its summary.json form)
    local function evaluation(r, what)
      within(r.accuracy, 0, 1, what .. ".accuracy")
      within(r.mean_tokens or r.mean_length, 1, s.eval_tokens, what .. " mean length")
      for family, f in pairs(r.per_benchmark or r.by_family) do
        local where = ("%s.%s"):format(what, family)
        check.ok(math.type(f.n) == "integer" and f.n >= 1, where .. ".n is a count")
        within(f.correct, 0, f.n, where .. ".correct")
        check.near(f.accuracy, f.correct / f.n, 1e-9, where .. ".accuracy = correct / n")
        within(f.mean_length, 1, s.eval_tokens, where .. ".mean_length")
        check.near(f.tokens, f.mean_length * f.n, 1e-9, where .. ".tokens = mean_length * n")
      end
    end

    -- metrics.jsonl: `sft` SFT rows (no stage), then `rl` RL rows per
    -- training in `trainings` trainings, each numbered from 1
    local function steps_logged(what, rows, sft, rl, trainings)
      check.eq(#rows, sft + rl * (trainings or 1), what .. ": metrics lines")
      for i = 1, sft do
        local row = rows[i] or {}
        check.eq(row.step, i, ("%s: SFT row %d step"):format(what, i))
        check.eq(row.stage, nil, ("%s: SFT row %d has no stage"):format(what, i))
        positive(row.loss, ("%s: SFT step %d loss"):format(what, i))
        check.ok(finite(row.grad_norm) and row.grad_norm >= 0, ("%s: SFT step %d grad_norm"):format(what, i))
      end
      for k = sft + 1, #rows do
        local row, i = rows[k], (k - sft - 1) % rl + 1
        local where = ("%s: RL row %d"):format(what, k)
        check.eq(row.step, i, where .. " step")
        check.eq(row.budget, s.budget, where .. " budget")
        within(row.accuracy, 0, 1, where .. " accuracy")
        within(row.length, 1, s.budget, where .. " mean length")
        within(row.clipped, 0, 1, where .. " clipped share")
        within(row.zero_variance_share, 0, 1, where .. " zero-variance share")
        -- each verdict's mean length is there exactly when some sample had that verdict
        check.eq(row.length_correct ~= nil, row.accuracy > 0, where .. " length_correct present iff a sample was correct")
        check.eq(row.length_incorrect ~= nil, row.accuracy < 1, where .. " length_incorrect present iff one was not")
        if row.length_correct then within(row.length_correct, 1, s.budget, where .. " length_correct") end
        if row.length_incorrect then within(row.length_incorrect, 1, s.budget, where .. " length_incorrect") end
        positive(row.entropy, where .. " entropy")
        check.ok(finite(row.loss) and finite(row.reward) and finite(row.kl), where .. " loss, reward, kl finite")
        within(row.zero_variance_groups, 0, s.prompts, where .. " zero-variance groups")
      end
    end

    check.case("main run summary", function()
      local sm = read("run1/summary.json")
      check.eq(sm.status, "ok", "status")
      check.eq(sm.backend, "cpu", "backend")
      check.eq(sm.steps, s.base_steps + s.rl_steps, "steps: SFT and RL")
      evaluation(sm.base, "base")
      evaluation(sm.final, "final")
      local ratio, delta, n = 0, 0, 0
      for family, b in pairs(sm.base.per_benchmark) do
        local f = sm.final.per_benchmark[family]
        ratio, delta, n = ratio + f.mean_length / b.mean_length, delta + f.accuracy - b.accuracy, n + 1
      end
      check.eq(n, #egrc.tasks.families(), "every family evaluated")
      check.near(sm.length_ratio, ratio / n, 1e-9, "length_ratio: the mean of the families' ratios")
      check.near(sm.accuracy_delta, delta / n, 1e-9, "accuracy_delta: the mean of the families' changes")
      positive(sm.sft_seconds, "sft_seconds")
      positive(sm.rl_seconds, "rl_seconds")
      positive(sm.eval_seconds, "eval_seconds")
      within(sm.switch_step, s.switch_min + 1, s.switch_max + 1, "switch_step")
    end)

    check.case("main run metrics", function()
      local switch = read("run1/summary.json").switch_step
      local rows = egrc.jsonl(s.work .. "/run1/metrics.jsonl")
      steps_logged("run1", rows, s.base_steps, s.rl_steps)
      for i = s.base_steps + 1, #rows do
        check.eq(rows[i].stage, rows[i].step >= switch and 2 or 1, ("run1: RL step %d stage"):format(rows[i].step))
      end
    end)

    check.case("reused base", function()
      local sm = read("run2/summary.json")
      check.eq(sm.status, "ok", "run2 status")
      check.eq(sm.steps, s.rl_steps, "run2 steps: RL only")
      check.eq(sm.sft_seconds, 0, "run2 sft_seconds")
      steps_logged("run2", egrc.jsonl(s.work .. "/run2/metrics.jsonl"), 0, s.rl_steps)
    end)

    check.case("compare", function()
      local results = read("compare/compare.json")
      local names = { "base", "accuracy-only GRPO", "Kimi 1.5 length penalty", "entropy-guided" }
      for _, name in ipairs(names) do
        local r = results[name]
        if check.ok(r, "compare.json has " .. name) then
          evaluation(r, name)
          check.eq(r.n, results.base.n, name .. ": as many problems as the base")
          within(r.clipped, 0, 1, name .. " clipped share")
        end
      end
      steps_logged("compare", egrc.jsonl(s.work .. "/compare/metrics.jsonl"), 0, s.compare_steps, #names - 1)
    end)

    check.case("bench", function()
      local by_model = read("bench/bench.json")
      local model = s.work .. "/run1/model"
      check.ok(by_model[model], "bench.json has the model " .. model)
      for _, set in ipairs { "gsm8k/sample.jsonl", "math500/sample.jsonl" } do
        local r = (by_model[model] or {})[set] or {}
        check.eq(r.n, s.bench_limit, set .. ": n is the limit")
        within(r.accuracy, 0, 1, set .. " accuracy")
        within(r.mean_length, 1, s.bench_tokens, set .. " mean length")
        within(r.mean_reasoning, 0, r.mean_length or 0, set .. " mean reasoning tokens")
        within(r.clipped, 0, 1, set .. " clipped share")
      end
    end)

    check.case("analysis", function()
      local a = read("analyze/analysis.json")
      local samples = s.analyze_prompts * s.analyze_group
      within(a.tokens, samples, samples * s.analyze_budget, "analysis tokens")
      local binned = 0
      for i, bin in ipairs(a.bins) do
        binned = binned + bin.count
        check.ok(finite(bin.lo) and finite(bin.hi) and bin.lo <= bin.hi, ("bin %d: lo <= hi"):format(i))
      end
      check.eq(binned, a.tokens, "the bins hold every token")
      check.eq(a.high.count + a.low.count, a.tokens, "high- and low-entropy tokens make up all")
      positive(a.mean_entropy, "mean entropy")
      within(a.gradient_cosine.high, -1, 1, "gradient cosine, high-entropy tokens")
      within(a.gradient_cosine.low, -1, 1, "gradient cosine, low-entropy tokens")
    end)

    check.done("pipeline_outputs")
  end,
}
