-- egrc.eval: accuracy and length of a model over a dataset, and tables
-- comparing models on several datasets.
local core = require("egrc.core")
local data = require("egrc.data")
local util = require("egrc.util")

local eval = {}

--- The default grader: correct (boolean) and the marked answer (or nil).
-- Task-suite problems (items with a `family`) need "</think> ... \boxed{x}"
-- with x exactly the answer; other items are graded as math answers by
-- egrc_grade_response (grade.h, docs/grading.md), the one grader that
-- `egrc grade` and `egrc bench grade` use too.
function eval.grade(item, text)
  local answer = core.grade.extract(text)
  if item.family then return core.tasks.check(item, text), answer end
  return item.answer ~= nil and core.grade.response(item.answer, text), answer
end

local eval_options = { "batch", "samples", "temperature", "top_p", "max_new_tokens", "stop", "template", "grade", "seed",
                       "think_open", "prompt_overflow" }

-- Where an item comes from, for messages: FILE:LINE for a benchmark record
-- (egrc.data.benchmark), else its place in the list.
local function item_where(item, index)
  if item.file and item.line then return ("%s:%d"):format(item.file, item.line) end
  return ("item %d of the list"):format(index)
end

local function check_overflow_policy(policy)
  if policy == "error" or policy == "truncate_left" then return policy end
  error(("egrc.eval.run: prompt_overflow must be \"error\" or \"truncate_left\", got %s"):format(
    type(policy) == "string" and ('"' .. policy .. '"') or tostring(policy)), 3)
end

--- A prompt's token ids fitted to the model's context. fit: context (its
-- positions), reserve (the room for new tokens: max_new_tokens, or 1 when
-- the budget shrinks to fit), policy, budget (the budget in words), explicit
-- (max_new_tokens was given). Returns the ids unchanged when they fit; else,
-- with policy "truncate_left", their last tokens and true; else raises an
-- error naming the item, the counts and the setting.
local function fit_prompt(ids, fit, where)
  if #ids + fit.reserve <= fit.context then return ids, false end
  local keep = fit.context - fit.reserve
  if keep < 1 then
    error(("%s: max_new_tokens = %d leaves no room for a prompt in the model's context of %d positions; "
      .. "lower max_new_tokens"):format(where, fit.reserve, fit.context), 0)
  end
  if fit.policy == "error" then
    error(("%s: the prompt is %d tokens; with %s it needs %d positions, more than the model's context of %d. "
      .. "%s prompt_overflow = \"truncate_left\" to keep the last %d tokens of each such prompt"):format(
      where, #ids, fit.budget, #ids + fit.reserve, fit.context,
      fit.explicit and "Lower max_new_tokens, or set" or "Set", keep), 0)
  end
  -- Cut from the left, as evaluation harnesses do (lm-evaluation-harness;
  -- truncation_side = "left" in HF tokenizers): a prompt's end holds the
  -- question's last words, the instruction and the opened assistant turn
  -- that the model continues from, where cutting the right would leave it
  -- continuing mid-question. The template's opening and the question's start
  -- are lost, so such results are not like the others: eval.run counts them.
  return table.move(ids, #ids - keep + 1, #ids, 1, {}), true
end

-- Every item's prompt as token ids fitted to the context, and how many were
-- cut: all before the first generation, so an overflow stops the run before
-- it spends time on the items ahead of it (and before generation allocates
-- for a prompt).
local function fitted_prompts(items, tokenizer, template, fit)
  local prompts, truncated = {}, 0
  for i, item in ipairs(items) do
    local cut
    prompts[i], cut = fit_prompt(tokenizer:encode(template(item)), fit, item_where(item, i))
    if cut then truncated = truncated + 1 end
  end
  return prompts, truncated
end

--- Reasoning tokens of one completion (a list of token ids): from its
-- <think> (or its first token when the prompt opened the block) through
-- </think>, or to the end when the block never closes; 0 for a completion
-- that never reasons.
function eval.reasoning_tokens(tokens, open_id, close_id, opened)
  local start = opened and 1 or nil
  for i, id in ipairs(tokens) do
    if not start and id == open_id then start = i end
    if start and id == close_id then return i - start + 1 end
  end
  return start and #tokens - start + 1 or 0
end

--- egrc.eval.run(model, tokenizer, items, opts) -> {n, samples, accuracy,
-- mean_length, mean_reasoning, clipped, truncated, by_family}. Greedy by
-- default; with samples = k and a temperature, accuracy is pass@1 averaged
-- over k samples. mean_reasoning counts the tokens of the <think>...</think>
-- block (needs both tags as single tokens; 0 otherwise). opts: batch (32),
-- samples (1), temperature (0), top_p, max_new_tokens (256, or what the
-- model's context has room for), stop (token id or list), template, grade,
-- seed, think_open (the prompt already opens the <think> block),
-- prompt_overflow: what to do with a prompt that, with max_new_tokens, does
-- not fit the model's context (its max positions): "error" (the default;
-- the message names the item's FILE:LINE) or "truncate_left" (keep its last
-- tokens; `truncated` counts such prompts).
function eval.run(model, tokenizer, items, opts)
  opts = util.check_options("egrc.eval.run", opts, eval_options)
  local batch, k = opts.batch or 32, opts.samples or 1
  local template, grade = opts.template or data.prompt, opts.grade or eval.grade
  local stop = opts.stop or util.eos_id(tokenizer, model)
  -- Without an explicit budget, the budget shrinks to what fits, down to one token.
  local context = model:config().max_seq
  local all_prompts, truncated = fitted_prompts(items, tokenizer, template, {
    context = context, reserve = opts.max_new_tokens or 1,
    policy = check_overflow_policy(opts.prompt_overflow or "error"), explicit = opts.max_new_tokens ~= nil,
    budget = opts.max_new_tokens and ("max_new_tokens = %d"):format(opts.max_new_tokens)
      or "at least one new token (no max_new_tokens given)" })
  local open_id, close_id = tokenizer:token_id("<think>"), tokenizer:token_id("</think>")
  local total, correct, tokens, clipped, reasoning = 0, 0, 0, 0, 0
  local by_family = {}
  for first = 1, #items, batch do
    -- a stop signal ends an evaluation between batches: it has no checkpoint, a resume repeats it
    local signal = core.interrupted()
    if signal then error(("interrupted by %s during an evaluation, at item %d of %d"):format(signal, first, #items), 0) end
    local prompts, chunk, longest = {}, {}, 0
    for i = first, math.min(first + batch - 1, #items) do
      chunk[#chunk + 1] = items[i]
      prompts[#prompts + 1] = all_prompts[i]
      longest = math.max(longest, #all_prompts[i])
    end
    local max_new = opts.max_new_tokens or math.min(256, context - longest)
    local rollout = core.generate(model, prompts, {
      temperature = opts.temperature or 0, top_p = opts.top_p, max_new_tokens = max_new,
      stop = stop, seed = (opts.seed or 0) + first, ["repeat"] = k })
    local texts, lengths = rollout:texts(tokenizer), rollout:lengths()
    for i = 1, #texts do
      if rollout:finish(i) == "length" then clipped = clipped + 1 end
      if close_id then reasoning = reasoning + eval.reasoning_tokens(rollout:tokens(i), open_id, close_id, opts.think_open) end
    end
    rollout:free()
    for i, text in ipairs(texts) do
      local item = chunk[(i - 1) // k + 1]
      local ok = grade(item, text) and 1 or 0
      local len = lengths[i]
      total, correct, tokens = total + 1, correct + ok, tokens + len
      if item.family then
        local f = by_family[item.family] or { n = 0, correct = 0, tokens = 0 }
        f.n, f.correct, f.tokens = f.n + 1, f.correct + ok, f.tokens + len
        by_family[item.family] = f
      end
    end
  end
  for _, f in pairs(by_family) do
    f.accuracy, f.mean_length = f.correct / f.n, f.tokens / f.n
  end
  return { n = #items, samples = k, accuracy = total > 0 and correct / total or 0,
           mean_length = total > 0 and tokens / total or 0, mean_reasoning = total > 0 and reasoning / total or 0,
           clipped = total > 0 and clipped / total or 0, truncated = truncated,
           by_family = by_family }
end

--- A plain-text table: rows is a list of lists (the first row the header).
function eval.table(rows)
  local widths = {}
  for _, row in ipairs(rows) do
    for j, cell in ipairs(row) do widths[j] = math.max(widths[j] or 0, #tostring(cell)) end
  end
  local lines = {}
  for i, row in ipairs(rows) do
    local cells = {}
    for j, cell in ipairs(row) do
      local s = tostring(cell)
      cells[j] = (j == 1 and s .. (" "):rep(widths[j] - #s)) or ((" "):rep(widths[j] - #s) .. s)
    end
    lines[#lines + 1] = table.concat(cells, "  ")
    if i == 1 then lines[#lines + 1] = ("-"):rep(#lines[1]) end
  end
  return table.concat(lines, "\n")
end

--- The same rows as a Markdown table (numbers right-aligned).
function eval.markdown(rows)
  local lines = {}
  for i, row in ipairs(rows) do
    local cells = {}
    for j, cell in ipairs(row) do cells[j] = tostring(cell):gsub("|", "\\|") end
    lines[#lines + 1] = "| " .. table.concat(cells, " | ") .. " |"
    if i == 1 then
      local rule = {}
      for j = 1, #row do rule[j] = j == 1 and "---" or "---:" end
      lines[#lines + 1] = "| " .. table.concat(rule, " | ") .. " |"
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

--- Evaluates each model on each dataset and prints a table: accuracy, mean
-- generated tokens and mean reasoning tokens per dataset. With a run, saves
-- the results to OUT/<name>.json and the table to OUT/<name>.md.
-- models: list of {name=, model=, tokenizer=}; datasets: list of {name=, items=};
-- opts: as egrc.eval.run, plus name ("eval").
function eval.compare(run, models, datasets, opts)
  opts = opts or {}
  local name = opts.name or "eval"
  local run_opts = {}
  for key, value in pairs(opts) do
    if key ~= "name" then run_opts[key] = value end
  end
  local header, rows, results, notes = { "model" }, {}, {}, {}
  for _, d in ipairs(datasets) do
    header[#header + 1] = d.name .. " acc"
    header[#header + 1] = d.name .. " tokens"
    header[#header + 1] = d.name .. " think"
  end
  rows[1] = header
  for _, m in ipairs(models) do
    local row = { m.name }
    results[m.name] = {}
    for _, d in ipairs(datasets) do
      local r = eval.run(m.model, m.tokenizer, d.items, run_opts)
      results[m.name][d.name] = r
      row[#row + 1] = ("%.3f"):format(r.accuracy)
      row[#row + 1] = ("%.1f"):format(r.mean_length)
      row[#row + 1] = ("%.1f"):format(r.mean_reasoning)
      if r.truncated > 0 then
        notes[#notes + 1] = ("%s on %s: %d of %d prompts truncated on the left to fit the context "
          .. "(prompt_overflow = \"truncate_left\")"):format(m.name, d.name, r.truncated, r.n)
      end
    end
    rows[#rows + 1] = row
  end
  local text = eval.table(rows)
  print(text)
  local note_text = table.concat(notes, "\n")
  if #notes > 0 then print(note_text) end
  if run then
    core.json.write(run:path(name .. ".json"), results)
    core.fs.write(run:path(name .. ".md"), eval.markdown(rows) .. (#notes > 0 and "\n" .. note_text .. "\n" or ""))
    run.summary[name] = results
  end
  return results, text
end

return eval
