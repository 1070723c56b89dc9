-- egrc.reasoner: the verbose base reasoner of the built-in task suite, the
-- starting point of the main job. SFT on reasoning traces, mostly verbose
-- (connectors, re-checks, restated steps) with some concise ones, so the
-- base model's distribution holds both modes, as real reasoning models do.
-- Trained once and kept as a Hugging Face folder; recipes reuse it.
local core = require("egrc.core")
local data = require("egrc.data")
local eval = require("egrc.eval")
local sft = require("egrc.sft")
local util = require("egrc.util")

local reasoner = {}

--- Default settings (a recipe's settings.base): the model shape, the SFT run
-- (checkpointed every checkpoint_every steps, so a stopped run resumes its
-- base training too) and the task mix. `dir` is where the trained model lives; "" derives a
-- folder under runs/ from the settings, so changing them trains anew.
-- The defaults were tuned to fit 10 minutes of SFT on 2 CPU cores: levels 1
-- and 2 of the suite (level 3 is out of reach of this model in that budget),
-- 80% verbose traces. Every verbose trace opens with the same token, so
-- greedy decoding starts verbose on every prompt, while the concise share is
-- large enough for the concise mode to be learned well: it is the mode the
-- compressed model ends up using.
reasoner.defaults = {
  dir = "",
  model = { n_layer = 4, d_model = 128, n_head = 4, n_kv_head = 2, head_dim = 32, d_ff = 384, max_seq = 512,
            tied_embeddings = true },
  steps = 1200, batch = 16, lr = 3e-3, warmup = 60, verbose_fraction = 0.8, max_difficulty = 2,
  checkpoint_every = 200,
}

--- Default evaluation settings (a recipe's settings.eval): the evaluation
-- split chosen by `seed`, `per_cell` problems per family and level (3600 in
-- all at levels 1-2: the accuracy's standard error is below 0.01), greedy.
reasoner.eval_defaults = { seed = 1, per_cell = 300, max_difficulty = 2, max_new_tokens = 400, batch = 96 }

--- What a GPU backend affords over the CPU defaults (a recipe's
-- gpu_settings, merged over its settings when the run's backend is not the
-- CPU): a model about 6x larger (8 layers of width 256), 4x larger SFT
-- batches for 2000 steps, and 5x larger evaluation batches. Not yet run on a
-- GPU: the CPU defaults are the ones measured against the targets.
reasoner.gpu_defaults = {
  base = { model = { n_layer = 8, d_model = 256, n_head = 8, n_kv_head = 2, head_dim = 32, d_ff = 768 },
           steps = 2000, batch = 64, lr = 2e-3, warmup = 100 },
  eval = { batch = 512 },
}

local function merge_into(dst, src)
  for key, value in pairs(src) do
    if type(value) == "table" and type(dst[key]) == "table" then merge_into(dst[key], value)
    else dst[key] = type(value) == "table" and util.copy(value) or value end
  end
  return dst
end

--- A recipe's gpu_settings: reasoner.gpu_defaults (copied) with `extra`
-- (e.g. the recipe's own RL batch) merged in, key by key.
function reasoner.gpu_settings(extra)
  return merge_into(util.copy(reasoner.gpu_defaults), extra or {})
end

--- Copies the defaults into a recipe's settings as settings.base and
-- settings.eval (where --set can change them); returns settings.
function reasoner.add_defaults(settings)
  settings.base, settings.eval = util.copy(reasoner.defaults), util.copy(reasoner.eval_defaults)
  return settings
end

-- The folder name holds every setting that changes the trained weights,
-- the run's seed and the version of the suite's traces included, so another
-- seed trains another base.
local function folder(s, seed)
  if s.dir ~= "" then return s.dir end
  local m = s.model
  return ("runs/base-reasoner-t%d-L%d-C%d-H%d-F%d%s-s%d-b%d-lr%g-v%g-d%d-seed%d"):format(core.tasks.traces_version,
    m.n_layer, m.d_model, m.n_head, m.d_ff, m.tied_embeddings and "-tied" or "", s.steps, s.batch, s.lr,
    s.verbose_fraction, s.max_difficulty, seed)
end

--- Trains the base reasoner into its folder (run's logging shows the SFT
-- steps). Returns the model, the tokenizer and the seconds spent.
function reasoner.train(run, s)
  local tok = run:tokenizer("tasks")
  local opts = { seed = run.settings.seed, vocab_size = tok:vocab_size() }
  for key, value in pairs(s.model) do opts[key] = value end
  local model = core.model.create("qwen2-tiny", opts)
  local start = core.clock()
  sft.train(run, {
    model = model, tokenizer = tok, steps = s.steps, batch = s.batch, bucket = 8,
    data = data.task_sft { style = "mixed", verbose_fraction = s.verbose_fraction,
                           max_difficulty = s.max_difficulty },
    optim = { lr = s.lr, min_lr = s.lr * 0.1, warmup = s.warmup, steps = s.steps },
    checkpoint_every = s.checkpoint_every,
  })
  local seconds = core.clock() - start
  local dir = folder(s, run.settings.seed)
  core.fs.mkdir(dir)
  model:save(dir)
  return model, tok, seconds, dir
end

--- The base reasoner: loaded from its folder when it exists, trained (and
-- saved) otherwise. Returns model, tokenizer, SFT seconds (0 when reused), folder.
function reasoner.ensure(run, s)
  local dir = folder(s, run.settings.seed)
  if core.fs.exists(dir .. "/config.json") then
    print(("egrc: reusing the base reasoner in %s"):format(dir))
    return core.model.load(dir), run:tokenizer("tasks"), 0, dir
  end
  print(("egrc: training the base reasoner (first run; saved to %s for later runs)"):format(dir))
  return reasoner.train(run, s)
end

--- Accuracy and mean generated tokens of a model on the task evaluation
-- set, overall and per family, greedy.
function reasoner.evaluate(model, tok, s)
  local items = data.task_eval { eval_seed = s.seed, per_cell = s.per_cell, max_difficulty = s.max_difficulty }
  return eval.run(model, tok, items, { max_new_tokens = s.max_new_tokens, batch = s.batch })
end

return reasoner
