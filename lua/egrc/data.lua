-- egrc.data: where prompts come from. An item is a table with a `prompt`
-- (text) and an `answer` (the gold final answer); SFT items also carry a
-- `response`. A source is either a list of items or a function(rng) -> item.
local core = require("egrc.core")
local util = require("egrc.util")

local data = {}

--- egrc.data.jsonl(path): one decoded JSON value per line.
data.jsonl = core.jsonl

--- The prompt text of an item: item.prompt, else "Q: <question>\nA: ".
function data.prompt(item)
  if item.prompt then return item.prompt end
  if item.question then return "Q: " .. item.question .. "\nA: " end
  error("egrc.data.prompt: the item has neither 'prompt' nor 'question'", 2)
end

--- A function(rng) drawing uniformly from a list of items.
function data.sampler(items)
  if type(items) ~= "table" or #items == 0 then error("egrc.data.sampler: a non-empty list of items expected", 2) end
  return function(rng) return items[rng:integer(1, #items)] end
end

--- A source as a function(rng) -> item (lists are sampled uniformly).
function data.source(src)
  if type(src) == "function" then return src end
  if type(src) == "table" then return data.sampler(src) end
  error(("egrc.data: a list of items or a function(rng) expected, got %s"):format(type(src)), 3)
end

--- Training problems of the built-in task suite: a function(rng) -> problem.
-- opts: split ("train"), family (all), difficulty (0 = all), max_difficulty
-- (levels 1..max, drawn uniformly; nil = all), eval_seed (0).
function data.tasks(opts)
  opts = util.check_options("egrc.data.tasks", opts, { "split", "family", "difficulty", "max_difficulty", "eval_seed" })
  local sample_opts = { split = opts.split or "train", family = opts.family, difficulty = opts.difficulty,
                        eval_seed = opts.eval_seed }
  local max = opts.max_difficulty
  if max and not opts.difficulty then
    return function(rng)
      sample_opts.difficulty = rng:integer(1, max)
      return core.tasks.sample(rng, sample_opts)
    end
  end
  return function(rng) return core.tasks.sample(rng, sample_opts) end
end

--- The task suite's fixed evaluation list. opts: eval_seed (0), per_cell (4),
-- max_difficulty (keep levels 1..max; nil = all).
function data.task_eval(opts)
  opts = util.check_options("egrc.data.task_eval", opts, { "eval_seed", "per_cell", "max_difficulty" })
  local items = core.tasks.eval_set(opts.eval_seed or 0, opts.per_cell or 4)
  if not opts.max_difficulty then return items end
  local kept = {}
  for _, item in ipairs(items) do
    if item.difficulty <= opts.max_difficulty then kept[#kept + 1] = item end
  end
  return kept
end

--- SFT examples from the task suite: a function(rng) -> problem with a
-- `response` trace. opts: style "verbose", "concise" or "mixed" (default),
-- verbose_fraction (0.5, for "mixed"), and data.tasks's options.
function data.task_sft(opts)
  opts = util.check_options("egrc.data.task_sft", opts,
    { "style", "verbose_fraction", "split", "family", "difficulty", "max_difficulty", "eval_seed" })
  local style, fraction = opts.style or "mixed", opts.verbose_fraction or 0.5
  if style ~= "verbose" and style ~= "concise" and style ~= "mixed" then
    error(("egrc.data.task_sft: style must be 'verbose', 'concise' or 'mixed', got '%s'"):format(tostring(style)), 2)
  end
  local problems = data.tasks { split = opts.split, family = opts.family, difficulty = opts.difficulty,
                                max_difficulty = opts.max_difficulty, eval_seed = opts.eval_seed }
  return function(rng)
    local p = problems(rng)
    local s = style
    if s == "mixed" then s = rng:uniform() < fraction and "verbose" or "concise" end
    p.response = core.tasks.trace(p, s, rng)
    p.style = s
    return p
  end
end

--- A math benchmark (a folder with test.jsonl, or a .jsonl file) as a list of
-- items {id, question, answer, prompt, file, line} (file and line: where the
-- record is, for messages about it); opts.template(item) -> prompt text;
-- opts.question_field and opts.answer_field name a JSONL file's fields
-- (otherwise known benchmarks' fields, or the first record's, are used).
function data.benchmark(path, opts)
  opts = util.check_options("egrc.data.benchmark", opts, { "template", "limit", "question_field", "answer_field" })
  if (opts.question_field == nil) ~= (opts.answer_field == nil) then
    error("egrc.data.benchmark: give both question_field and answer_field, or neither", 2)
  end
  local bench = opts.question_field and core.benchmarks.load_jsonl(path, opts.question_field, opts.answer_field)
    or core.benchmarks.load(path)
  local items = {}
  for i, item in ipairs(bench.items) do
    if opts.limit and i > opts.limit then break end
    item.prompt = (opts.template or data.prompt)(item)
    item.file = bench.file
    items[i] = item
  end
  return items, bench.name
end

return data
