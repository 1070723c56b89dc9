-- Evaluates a Hugging Face model folder on math benchmark files (the six in
-- ../shared/benchmarks/math, or any JSONL with question/answer fields the
-- loaders know), pass@1 averaged over k samples, as a table and JSON:
--
--   egrc run recipes/bench.lua --set model=path/to/model \
--       --set root=path/to/benchmarks/math --set sets=gsm8k,math500 --set limit=50
--
-- Prompts use the ChatML template when the tokenizer has <|im_start|> (Qwen
-- and most reasoning models), with the assistant turn opened by <think>;
-- otherwise "Q: ...\nA: ". Answers are graded by egrc's math grader.
local egrc = require("egrc")

return {
  settings = {
    model = "", tokenizer = "", root = "benchmarks/math",
    sets = { "gsm8k", "math500", "aime24", "amc23", "olympiadbench", "minerva_math" },
    limit = 0, samples = 1, temperature = 0.6, top_p = 0.95, max_new_tokens = 1024, batch = 16,
  },
  main = function(run)
    local s = run.settings
    if s.model == "" then error("bench: set the model folder with --set model=DIR", 0) end
    local tok = run:tokenizer(s.tokenizer ~= "" and s.tokenizer or s.model)
    local model = egrc.model.load(s.model)
    local chat = tok:token_id("<|im_start|>") ~= nil
    local function template(item)
      if chat then
        return "<|im_start|>user\n" .. item.question .. "<|im_end|>\n<|im_start|>assistant\n<think>\n"
      end
      return "Q: " .. item.question .. "\nA: "
    end
    local datasets = {}
    for _, name in ipairs(s.sets) do
      local items = egrc.data.benchmark(s.root .. "/" .. name, { template = template,
                                                                 limit = s.limit > 0 and s.limit or nil })
      datasets[#datasets + 1] = { name = name, items = items }
    end
    egrc.eval.compare(run, { { name = s.model, model = model, tokenizer = tok } }, datasets, {
      name = "bench", samples = s.samples, temperature = s.temperature, top_p = s.top_p,
      max_new_tokens = s.max_new_tokens, batch = s.batch,
    })
  end,
}
