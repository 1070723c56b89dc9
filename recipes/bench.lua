-- Evaluates a Hugging Face model folder on math benchmark files (the six in
-- ../shared/benchmarks/math, or any JSONL file), pass@1 averaged over k
-- samples, mean generated tokens and mean reasoning (<think>) tokens per
-- benchmark, as a table, OUT/bench.json and OUT/bench.md:
--
--   egrc run recipes/bench.lua --set model=path/to/model \
--       --set root=path/to/benchmarks/math --set sets=gsm8k,math500 --set limit=50
--   egrc run recipes/bench.lua --set model=DIR --set root=. --set sets=my.jsonl \
--       --set question_field=prompt --set answer_field=target
--
-- The prompt follows the model's chat template (template=auto: ChatML, Llama 3
-- or DeepSeek-R1, recognised from tokenizer_config.json or the tokenizer's
-- special tokens; see lua/egrc/chat.lua), or template="...{question}...".
-- With think=auto the assistant turn opens with "<think>\n" when the
-- tokenizer has that token, as reasoning models' templates do. Generation
-- stops at the template's end-of-turn token or the end of text. Answers are
-- graded by egrc's math grader (`egrc grade`).
--
-- A prompt that, with max_new_tokens, does not fit the model's context (its
-- max_position_embeddings) stops the run with its FILE:LINE and token counts;
-- --set prompt_overflow=truncate_left keeps such prompts' last tokens instead
-- (lua/egrc/eval.lua says why the left), and the table notes how many.
local egrc = require("egrc")

return {
  settings = {
    model = "", tokenizer = "", root = "benchmarks/math",
    sets = { "gsm8k", "math500", "aime24", "amc23", "olympiadbench", "minerva_math" },
    question_field = "", answer_field = "",
    template = "auto", think = "auto",
    instruction = "Please reason step by step, and put your final answer within \\boxed{}.",
    limit = 0, samples = 1, temperature = 0.6, top_p = 0.95, max_new_tokens = 1024, batch = 16,
    prompt_overflow = "error",
  },
  main = function(run)
    local s = run.settings
    if s.model == "" then error("bench: set the model folder with --set model=DIR", 0) end
    if (s.question_field == "") ~= (s.answer_field == "") then
      error("bench: set both question_field and answer_field, or neither", 0)
    end
    if s.prompt_overflow ~= "error" and s.prompt_overflow ~= "truncate_left" then
      error(("bench: prompt_overflow must be error or truncate_left, got '%s'"):format(s.prompt_overflow), 0)
    end
    local tok = run:tokenizer(s.tokenizer ~= "" and s.tokenizer or s.model)
    local model = egrc.model.load(s.model)
    local think = s.think
    if think == "true" or think == "false" then think = think == "true" end
    local template, end_of_turn, family = egrc.chat.prompt_builder {
      template = s.template, model_dir = s.model, tokenizer = tok, instruction = s.instruction, think = think }
    local think_open = template({ question = "" }):find("<think>\n$") ~= nil
    local stop, eos = {}, model:config().eos_token_id
    if end_of_turn then stop[#stop + 1] = end_of_turn end
    if eos >= 0 and eos ~= end_of_turn then stop[#stop + 1] = eos end
    print(("bench: %s template%s"):format(family, think_open and ", <think> opened" or ""))
    local datasets = {}
    for _, name in ipairs(s.sets) do
      local items = egrc.data.benchmark(s.root .. "/" .. name, {
        template = template, limit = s.limit > 0 and s.limit or nil,
        question_field = s.question_field ~= "" and s.question_field or nil,
        answer_field = s.answer_field ~= "" and s.answer_field or nil })
      datasets[#datasets + 1] = { name = name, items = items }
    end
    egrc.eval.compare(run, { { name = s.model, model = model, tokenizer = tok } }, datasets, {
      name = "bench", samples = s.samples, temperature = s.temperature, top_p = s.top_p,
      max_new_tokens = s.max_new_tokens, batch = s.batch, stop = #stop > 0 and stop or nil, think_open = think_open,
      prompt_overflow = s.prompt_overflow,
    })
  end,
}
