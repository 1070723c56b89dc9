-- egrc.sft: supervised fine-tuning on prompt/response pairs. The loss covers
-- the response tokens (and the end-of-text token after them) only: the
-- prompt's positions are masked out.
local core = require("egrc.core")
local data = require("egrc.data")
local eval = require("egrc.eval")
local util = require("egrc.util")

local sft = {}

--- Token ids and loss mask of one example: prompt (mask 0), then response
-- and the end-of-text token (mask 1), cut to max_len tokens.
function sft.encode(tokenizer, item, eos, max_len, template)
  local ids = tokenizer:encode((template or data.prompt)(item))
  local mask = {}
  for i = 1, #ids do mask[i] = 0 end
  for _, id in ipairs(tokenizer:encode(item.response)) do
    ids[#ids + 1], mask[#mask + 1] = id, 1
  end
  if eos then ids[#ids + 1], mask[#mask + 1] = eos, 1 end
  while max_len and #ids > max_len do
    ids[#ids], mask[#mask] = nil, nil
  end
  return ids, mask
end

local train_options = { "model", "tokenizer", "trainer", "optim", "data", "steps", "batch", "micro_batches", "eos",
                        "max_len", "template", "rng", "eval", "checkpoint_every", "on_step" }

--- egrc.sft.train(run, opts) -> trainer. opts: model, tokenizer, data (list or
-- function(rng) -> {prompt|question, response}), steps (100), batch (8),
-- micro_batches (1), trainer or optim ({lr=3e-4, steps=steps, ...}),
-- eos (true: append the tokenizer's end-of-text; or an id; false: none),
-- max_len (the model's positions for learned-position models),
-- eval = {data=, every=, ...egrc.eval.run options}, checkpoint_every.
function sft.train(run, opts)
  opts = util.check_options("egrc.sft.train", opts, train_options)
  local model = opts.model or error("egrc.sft.train: opts.model is required", 2)
  local tok = opts.tokenizer or error("egrc.sft.train: opts.tokenizer is required", 2)
  local next_item = data.source(opts.data or error("egrc.sft.train: opts.data is required", 2))
  local steps, batch = opts.steps or 100, opts.batch or 8
  local trainer = opts.trainer or core.trainer(model, opts.optim or { lr = 3e-4, steps = steps })
  local rng = opts.rng or core.rng(run.settings.seed)
  local eos = opts.eos
  if eos == nil or eos == true then eos = util.eos_id(tok, model) elseif eos == false then eos = nil end
  local cfg = model:config()
  local max_len = opts.max_len or (cfg.arch == "gpt2" and cfg.max_seq + 1 or nil)
  local every = opts.checkpoint_every or 0
  local start = (run:restore(trainer, rng) or 0) + 1
  run:begin_steps(steps)
  for step = start, steps do
    local rows, masks, tokens = {}, {}, 0
    for b = 1, batch do
      rows[b], masks[b] = sft.encode(tok, next_item(rng), eos, max_len, opts.template)
      tokens = tokens + #rows[b]
    end
    local loss, grad_norm = trainer:sft_step(rows, masks, { micro_batches = opts.micro_batches })
    local m = { step = step, loss = loss, grad_norm = grad_norm, lr = trainer:lr(), tokens = tokens }
    local e = opts.eval
    if e and ((e.every and step % e.every == 0) or step == steps) then
      local e_opts = {}
      for key, value in pairs(e) do
        if key ~= "data" and key ~= "every" then e_opts[key] = value end
      end
      local r = eval.run(model, tok, e.data, e_opts)
      m.eval_accuracy, m.eval_length = r.accuracy, r.mean_length
    end
    if (every > 0 and step % every == 0) or step == steps then run:checkpoint(step, trainer, rng, { step = step }) end
    run:log(m)
    if opts.on_step then core.hook(opts.on_step, m) end
  end
  return trainer
end

return sft
