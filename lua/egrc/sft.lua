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
                        "max_len", "template", "rng", "eval", "checkpoint_every", "checkpoint_minutes", "phase",
                        "on_step", "bucket" }

-- Draws `bucket` batches' worth of examples, sorts them by length and cuts
-- them into batches (in random order), so each batch pads to a similar
-- length: with traces of very different lengths this cuts the padding the
-- forward pass computes for nothing from ~20% of tokens to a few percent.
-- Each batch's loss is a mean over its own targets, so a batch of short
-- examples would give each of its tokens several times the weight of a
-- token in a batch of long ones (and a model would learn short answers as
-- more likely than they are): each batch is weighted by its share of the
-- bucket's targets, which gives every target token the same weight.
local function bucketed_batches(next_item, rng, tok, eos, max_len, template, batch, bucket)
  local pool = {}
  for i = 1, batch * bucket do
    local ids, mask = sft.encode(tok, next_item(rng), eos, max_len, template)
    local targets = 0
    for t = 2, #mask do targets = targets + mask[t] end
    pool[i] = { ids = ids, mask = mask, targets = targets }
  end
  table.sort(pool, function(a, b) return #a.ids < #b.ids end)
  local batches, all_targets = {}, 0
  for b = 1, bucket do
    local rows, masks, targets = {}, {}, 0
    for i = 1, batch do
      local e = pool[(b - 1) * batch + i]
      rows[i], masks[i], targets = e.ids, e.mask, targets + e.targets
    end
    batches[b] = { rows = rows, masks = masks, targets = targets }
    all_targets = all_targets + targets
  end
  for b = 1, bucket do
    batches[b].loss_weight = all_targets > 0 and batches[b].targets * bucket / all_targets or 1
  end
  for i = bucket, 2, -1 do
    local j = rng:integer(1, i)
    batches[i], batches[j] = batches[j], batches[i]
  end
  return batches
end

--- egrc.sft.train(run, opts) -> trainer. opts: model, tokenizer, data (list or
-- function(rng) -> {prompt|question, response}), steps (100), batch (8),
-- micro_batches (1), trainer or optim ({lr=3e-4, steps=steps, ...}),
-- eos (true: append the tokenizer's end-of-text; or an id; false: none),
-- max_len (the model's positions for learned-position models),
-- eval = {data=, every=, ...egrc.eval.run options},
-- checkpoint_every (0: off) steps and/or checkpoint_minutes (5; 0: off), and
-- always at the last step and on a stop signal; phase ("sft"): the name its
-- checkpoints resume under, bucket (1): batches are drawn `bucket` at a time
-- and grouped by length (the batches not yet trained on are part of the
-- checkpoint, so a resumed run repeats the uninterrupted one exactly).
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
  local phase = opts.phase or "sft"
  local bucket = opts.bucket or 1
  local resumed, saved = run:restore(trainer, rng, phase)
  local start = (resumed or 0) + 1
  local pending = saved and saved.pending or {}
  run:begin_steps(steps)
  for step = start, steps do
    if #pending == 0 then
      pending = bucketed_batches(next_item, rng, tok, eos, max_len, opts.template, batch, bucket)
    end
    local next_batch = table.remove(pending)
    local rows, masks, tokens = next_batch.rows, next_batch.masks, 0
    for b = 1, batch do tokens = tokens + #rows[b] end
    local loss, grad_norm = trainer:sft_step(rows, masks, { micro_batches = opts.micro_batches,
                                                            loss_weight = next_batch.loss_weight })
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
    run:log(m)
    if opts.on_step then core.hook(opts.on_step, m) end
    run:step_done(step, { phase = phase, trainer = trainer, rng = rng, state = { step = step, pending = pending },
                          every = opts.checkpoint_every, minutes = opts.checkpoint_minutes or 5, last = step == steps })
  end
  return trainer
end

return sft
