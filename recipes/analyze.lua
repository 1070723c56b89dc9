-- The entropy-conflict analysis of docs/method.md on a model's own rollouts: the
-- entropy histogram of generated tokens, the tokens that dominate the
-- high-entropy tail (connectors such as "Wait"?), and, per entropy bucket,
-- the gradient magnitude under the accuracy objective (group-normalised
-- correctness, as GRPO) vs the compression objective (r^(len/L) on correct
-- answers, as stage 1), with the cosine between their parameter gradients on
-- high- vs low-entropy tokens. Prints a table; writes analysis.json.
--
--   egrc run recipes/analyze.lua                  (the base reasoner)
--   egrc run recipes/analyze.lua --set model=runs/<run>/model
local egrc = require("egrc")
local reasoner = require("egrc.reasoner")

local settings = { base = reasoner.add_defaults({}).base, model = "", prompts = 32, group = 8, temperature = 1.0,
                   budget = 250, r = 0.2, high_fraction = 0.2, top_tokens = 15 }

return {
  settings = settings,
  main = function(run)
    local s = run.settings
    local model, tok
    if s.model ~= "" then
      model, tok = egrc.model.load(s.model), run:tokenizer("tasks")
    else
      model, tok = reasoner.ensure(run, s.base)
    end
    local rng = egrc.rng(run.settings.seed)
    local problems, items, prompts = egrc.data.tasks(), {}, {}
    for i = 1, s.prompts do
      items[i] = problems(rng)
      prompts[i] = tok:encode(egrc.data.prompt(items[i]))
    end
    local rollout = egrc.generate(model, prompts, { temperature = s.temperature, max_new_tokens = s.budget,
                                                    stop = tok:token_id("<|endoftext|>"), seed = run.settings.seed,
                                                    ["repeat"] = s.group })
    local texts, lengths = rollout:texts(tok), rollout:lengths()
    local acc, comp = {}, {}
    for first = 1, #texts, s.group do
      local correct, sum, sq = {}, 0, 0
      for i = first, first + s.group - 1 do
        correct[i] = egrc.eval.grade(items[(i - 1) // s.group + 1], texts[i]) and 1 or 0
        sum = sum + correct[i]
      end
      local mean = sum / s.group
      for i = first, first + s.group - 1 do sq = sq + (correct[i] - mean) ^ 2 end
      local std = math.sqrt(sq / math.max(1, s.group - 1))
      for i = first, first + s.group - 1 do
        acc[i] = (correct[i] - mean) / (std + 1e-6)
        comp[i] = correct[i] * s.r ^ (lengths[i] / s.budget)
      end
    end
    local result, text = egrc.analyze(model, rollout, acc, comp,
                                      { high_fraction = s.high_fraction, top_tokens = s.top_tokens })
    rollout:free()
    print(text)
    for _, t in ipairs(result.top_tokens) do t.text = tok:decode({ t.token }) end
    print("high-entropy tokens: " .. table.concat((function()
      local out = {}
      for i, t in ipairs(result.top_tokens) do out[i] = ("%q x%d"):format(t.text, t.high) end
      return out
    end)(), ", "))
    egrc.json.write(run:path("analysis.json"), result)
    run.summary.analysis = result
  end,
}
