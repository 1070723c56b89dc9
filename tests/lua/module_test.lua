-- Every public function of the egrc Lua module, with its results checked, as
-- named cases (tests/lua/check.lua). Run by ctest as:
--   egrc run tests/lua/module_test.lua --set tests=tests/lua --set data=tests/data [--set case=NAME]
local egrc = require("egrc")

-- A value built on first use and shared after, so that each case can run
-- alone (--set case=NAME) and still find what it needs.
local function once(build)
  local value
  return function()
    if value == nil then value = build() end
    return value
  end
end

return {
  settings = { tests = "tests/lua", data = "tests/data", case = "", nested = { value = 1.5 } },

  main = function(run)
    local check = dofile(run.settings.tests .. "/check.lua")
    local s = run.settings
    check.only(s.case)

    -- shared fixtures
    local tok = once(function() return egrc.tasks.tokenizer() end)
    local function eos() return tok():token_id(egrc.tasks.eos) end
    local gpt_tok = once(function() return egrc.tokenizer.load(s.data .. "/tokenizer/tokenizer.json") end)
    local model = once(function()
      return egrc.model.create("gpt2-tiny", { vocab_size = 544, max_seq = 128, seed = 3 })
    end)
    -- a copy of the model: the reference model of the KL term (the models case
    -- makes it, in a full run, before any training)
    local reference = once(function() return model():clone() end)
    -- SFT with a response mask, one step and then ten in two micro-batches;
    -- what the "sft training" case checks is noted on the way
    local sft = once(function()
      local t = { rows = {}, masks = {} }
      for i = 1, 4 do
        t.rows[i] = { 10 + i, 20, 30, 40, 50 + i, eos() }
        t.masks[i] = { 0, 0, 0, 1, 1, 1 }
      end
      t.trainer = egrc.trainer(model(), { lr = 1e-3, steps = 20, warmup = 0, weight_decay = 0 })
      t.first_step, t.first_lr = t.trainer:step(), t.trainer:lr()
      t.loss0 = t.trainer:loss(t.rows, t.masks)
      t.loss, t.grad_norm = t.trainer:sft_step(t.rows, t.masks)
      t.step_after_one = t.trainer:step()
      for _ = 1, 10 do t.trainer:sft_step(t.rows, t.masks, { micro_batches = 2 }) end
      return t
    end)
    local function sample(prompts)
      return egrc.generate(model(), prompts, { temperature = 1.0, max_new_tokens = 8, seed = 5, ["repeat"] = 3 })
    end
    -- two prompts, three samples each
    local rollout = once(function()
      local g = { prompts = { tok():encode("Q: 1 + 1 = ?\nA: "), tok():encode("Q: 2 * 3 = ?\nA: ") }, tokens = 0 }
      g.r = sample(g.prompts)
      for i = 1, #g.r do g.tokens = g.tokens + g.r:length(i) end
      return g
    end)
    local chain = once(function()
      local p = egrc.tasks.sample(egrc.rng(1), { split = "train", family = "chain", difficulty = 1 })
      return { problem = p, concise = egrc.tasks.trace(p, "concise") }
    end)
    local eval_set = once(function() return egrc.tasks.eval_set(0, 1) end)

    check.case("module", function()
      check.ok(type(egrc.version) == "string" and egrc.version:match("^%d+%.%d+%.%d+"), "version")
      check.eq(egrc.sandboxed, false, "sandboxed")
      local t0 = egrc.clock()
      check.ok(type(t0) == "number" and egrc.clock() >= t0, "clock is monotonic")
      check.eq(egrc.closest("tempature", { "temperature", "top_p" }), "temperature", "closest")
      check.eq(egrc.closest("zzz", { "temperature" }), nil, "closest: nothing near")
      check.raises(function() return egrc.modle end, "egrc.modle does not exist (did you mean egrc.model?)",
        "strict module")
      check.eq(require("egrc"), egrc, "require returns the same module")
      local before = select(1, egrc.hook_stats())
      local a, b = egrc.hook(function(x, y) return x + y, x * y end, 3, 4)
      check.eq(a, 7, "hook result 1")
      check.eq(b, 12, "hook result 2")
      local after, calls = egrc.hook_stats()
      check.ok(after >= before and calls >= 1, "hook time is counted")
      check.raises(function() egrc.hook(function() error("inner") end) end, "inner", "hook propagates errors")
      check.eq(egrc.hook(egrc.hook, function() return "nested" end), "nested", "nested hooks")
    end)

    check.case("settings and run", function()
      check.eq(s.backend, "cpu", "default backend setting")
      check.eq(s.device, 0, "default device setting")
      check.eq(math.type(s.seed), "integer", "seed setting")
      check.eq(s.nested.value, 1.5, "nested setting")
      check.eq(run:path("x.json"), run.out .. "/x.json", "run:path")
      check.eq(run.resume, nil, "no resume")
      check.eq(run.name, "module_test", "run.name")
    end)

    check.case("backends", function()
      local be = egrc.default_backend()
      check.eq(be:name(), "cpu", "backend name")
      check.eq(be:info().backend, "cpu", "backend info")
      check.ok(be:info().compute_units >= 1, "backend compute units")
      check.ok(tostring(be):find("cpu:0", 1, true), "backend tostring")
      local be2 = egrc.backend("cpu", 0)
      check.eq(be2:name(), "cpu", "egrc.backend")
      check.raises(function() egrc.backend("nosuch") end, "nosuch", "unknown backend")
      check.raises(function() egrc.set_default_backend(42) end, "egrc.backend expected", "set_default_backend type")
      egrc.set_default_backend(be)
    end)

    check.case("tokenizers", function()
      check.eq(tok():vocab_size(), 544, "task tokenizer size")
      local ids = tok():encode("Q: 12 + 7 = ?\nA: ")
      check.ok(#ids > 5, "encode")
      check.eq(tok():decode(ids), "Q: 12 + 7 = ?\nA: ", "decode round trip")
      check.eq(eos(), 541, "token_id of eos")
      check.eq(tok():token_id("no such token"), nil, "token_id missing")
      check.eq(tok():is_special(eos()), true, "eos is special")
      check.eq(tok():is_special(ids[1]), false, "a letter is not special")
      check.eq(tok():is_special(99999), false, "out of range is not special")
      check.eq(tok():decode({ ids[1], eos() }), tok():decode({ ids[1] }), "decode drops special tokens")
      check.ok(tok():decode({ ids[1], eos() }, true):find(egrc.tasks.eos, 1, true), "decode keeps special tokens")
      check.raises(function() tok():decode({ 1, "x" }) end, "element 2: 32-bit integer expected", "decode type")
      check.raises(function() tok():decode({ 100000 }) end, "100000", "decode out of range")
      check.raises(function() egrc.tokenizer.load(s.data .. "/nope.json") end, "nope.json", "missing tokenizer")
      check.eq(table.concat(gpt_tok():encode("Hello world"), " "), "44 351 303 337 268 1635", "HF tokenizer ids")
      check.ok(tostring(tok()):find("544"), "tokenizer tostring")
      check.raises(function() tok().encode(42, "x") end, "egrc.tokenizer expected", "bad self")
    end)

    check.case("models", function()
      local presets = egrc.model.presets()
      check.eq(presets[2], "gpt2-tiny", "presets")
      local cfg = model():config()
      check.eq(cfg.arch, "gpt2", "config arch")
      check.eq(cfg.vocab_size, 544, "config override vocab")
      check.eq(cfg.max_seq, 128, "config override max_seq")
      check.eq(cfg.tied_embeddings, true, "config bool")
      check.ok(model():num_params() > 100000, "num_params")
      check.eq(model():backend():name(), "cpu", "model backend")
      check.ok(tostring(model()):find("gpt2", 1, true), "model tostring")
      local custom = egrc.model.create { arch = "llama", vocab_size = 64, n_layer = 1, n_head = 2, d_model = 16,
                                         d_ff = 32, max_seq = 32 }
      check.eq(custom:config().n_kv_head, 2, "config table: n_kv_head defaults to n_head")
      check.eq(custom:config().head_dim, 8, "config table: head_dim")
      check.raises(function() egrc.model.create("gpt2-tiny", { vocab_sise = 5 }) end,
        "unknown option 'vocab_sise' (did you mean 'vocab_size'?)", "create option typo")
      check.raises(function() egrc.model.create("nope") end, "unknown model preset 'nope'", "unknown preset")
      check.raises(function() egrc.model.create("gpt2-tiny", { n_head = 3 }) end, "model config", "invalid config")
      check.raises(function() egrc.model.create("gpt2-tiny", { max_seq = "x" }) end,
        "field 'max_seq': integer expected, got string", "option type")
      local hf = egrc.model.load(s.data .. "/tiny-gpt2")
      check.eq(hf:config().n_layer, 2, "load HF folder")
      check.raises(function() egrc.model.load(s.data .. "/missing") end, "config.json", "load missing folder")
      model():save(run:path("model"))
      check.ok(egrc.fs.exists(run:path("model/config.json")), "save writes config.json")
      local reloaded = egrc.model.load(run:path("model"))
      check.eq(reloaded:num_params(), model():num_params(), "save/load round trip")
      check.eq(reference():num_params(), model():num_params(), "clone")
    end)

    check.case("rng", function()
      local rng = egrc.rng(7)
      local u = rng:uniform()
      check.ok(u >= 0 and u < 1, "uniform")
      check.eq(math.type(rng:integer(1, 6)), "integer", "integer type")
      for _ = 1, 50 do
        local k = rng:integer(2, 4)
        check.ok(k >= 2 and k <= 4, "integer in range")
      end
      check.eq(type(rng:normal()), "number", "normal")
      local st = rng:state()
      local x1 = rng:uniform()
      rng:set_state(st)
      check.eq(rng:uniform(), x1, "state/set_state replays")
      check.raises(function() rng:set_state({ "zz" }) end, "four hex strings", "bad rng state")
      check.raises(function() rng:integer(3, 2) end, "interval", "empty interval")
      check.eq(egrc.rng(7):uniform(), u, "same seed, same numbers")
    end)

    check.case("sft training", function()
      local t = sft()
      local trainer, rows, masks = t.trainer, t.rows, t.masks
      check.eq(t.first_step, 0, "trainer step 0")
      check.near(t.first_lr, 1e-3, 1e-6, "trainer lr")
      check.eq(trainer:model(), model(), "trainer model")
      check.near(t.loss0, math.log(544), 0.05, "initial loss near ln V")
      check.near(t.loss, t.loss0, 1e-5, "sft_step reports the pre-update loss")
      check.ok(t.grad_norm > 0, "grad norm")
      check.eq(t.step_after_one, 1, "step advanced")
      check.ok(trainer:loss(rows, masks) < t.loss0 - 0.5, "SFT lowers the masked loss")
      -- the mask matters: masked-out positions are not trained on
      local unmasked = trainer:loss(rows)
      check.ok(unmasked > trainer:loss(rows, masks), "prompt tokens were not trained")
      check.raises(function() trainer:sft_step(rows, masks, { micro_batches = 3 }) end, "must divide", "micro batches")
      check.raises(function() trainer:sft_step({ { 1 } }) end, "at least 2 needed", "short row")
      check.raises(function() trainer:sft_step(rows, { { 1 } }) end, "one mask row per token row", "mask rows")
      check.raises(function() trainer:sft_step({ { 1, 2 } }, { { 0, 0 } }) end, "selects no target", "empty mask")
      check.raises(function() trainer:sft_step({ { 1, 2.5 } }) end, "row 1, element 2: token id expected", "bad id")
      trainer:set { lr = 5e-4 }
      check.ok(trainer:lr() < 5e-4 + 1e-9, "trainer:set")
      check.ok(tostring(trainer):find("step 11", 1, true), "trainer tostring")
      check.raises(function() egrc.trainer(model(), { lr = -1 }) end, "lr must be", "bad lr")
    end)

    check.case("checkpoints", function()
      local t = sft()
      local trainer, rows, masks = t.trainer, t.rows, t.masks
      local ckpt = run:path("ckpt.safetensors")
      local crng = egrc.rng(99)
      trainer:save(ckpt, crng)
      local next_u = crng:uniform()
      local snapshot = trainer:loss(rows, masks)
      trainer:sft_step(rows, masks)
      local t2 = egrc.trainer(model(), { lr = 1e-3, steps = 20 })
      local back = egrc.rng(0)
      check.eq(t2:load(ckpt, back), 11, "checkpoint step")
      check.eq(t2:step(), 11, "trainer step restored")
      check.eq(back:uniform(), next_u, "checkpoint restores the rng")
      check.near(t2:loss(rows, masks), snapshot, 1e-6, "checkpoint restores the weights")
      check.raises(function() t2:load(run:path("missing.safetensors")) end, "missing.safetensors", "missing checkpoint")
    end)

    check.case("generation", function()
      local g = rollout()
      local r, prompts = g.r, g.prompts
      check.eq(#r, 6, "rollout size")
      check.eq(r:prompt_length(1), #prompts[1], "prompt_length")
      check.eq(table.concat(r:prompt(4), ","), table.concat(prompts[2], ","), "prompt of a repeated row")
      for i = 1, #r do
        local len = r:length(i)
        check.ok(len >= 1 and len <= 8, "length in budget")
        check.eq(#r:tokens(i), len, "tokens")
        check.eq(#r:logprobs(i), len, "logprobs")
        check.eq(#r:entropies(i), len, "entropies")
        check.ok(r:logprobs(i)[1] <= 0, "log-prob <= 0")
        check.ok(r:finish(i) == "stop" or r:finish(i) == "length", "finish")
      end
      check.eq(#r:lengths(), 6, "lengths")
      local texts = r:texts(tok())
      check.eq(#texts, 6, "texts")
      check.eq(texts[1], tok():decode(r:tokens(1)), "text is the decoded completion")
      local rs = r:stats()
      check.eq(rs.tokens, g.tokens, "stats tokens")
      check.near(rs.mean_length, g.tokens / 6, 1e-9, "stats mean length")
      check.ok(rs.mean_entropy > 0 and rs.tokens_per_second > 0, "stats entropy, speed")
      local again = sample(prompts)
      check.eq(table.concat(again:tokens(5), ","), table.concat(r:tokens(5), ","), "generation is seeded")
      local greedy = egrc.generate(model(), prompts, { temperature = 0, max_new_tokens = 4, stop = { eos() } })
      check.eq(#greedy, 2, "greedy rollout")
      check.raises(function() r:length(7) end, "index 7 is outside 1..6", "rollout index")
      local freed = egrc.generate(model(), prompts, { max_new_tokens = 2 })
      freed:free()
      check.raises(function() freed:length(1) end, "rollout was freed", "rollout:free")
      check.raises(function() egrc.generate(model(), prompts, { temprature = 1 }) end,
        "unknown option 'temprature' (did you mean 'temperature'?)", "generate option typo")
      check.raises(function() egrc.generate(model(), { {} }) end, "prompt 1 is empty", "empty prompt")
      check.raises(function() egrc.generate(model(), prompts, { max_new_tokens = 200 }) end, "positions", "too long")
    end)

    check.case("grpo and analysis", function()
      local adv, keep, zero = egrc.advantages({ 1, 0, 0, 1, 2, 2 }, nil, { advantage = "dr_grpo", group = 2 })
      check.near(adv[1], 0.5, 1e-6, "dr_grpo advantage")
      check.near(adv[2], -0.5, 1e-6, "dr_grpo advantage 2")
      check.eq(keep[1], true, "keep")
      check.eq(zero, 1, "zero-variance groups")
      check.raises(function() egrc.advantages({ 1, 0, 1 }, nil, { group = 2 }) end, "groups of 2", "group size")
      check.raises(function() egrc.advantages({ 1, 0 }, nil, { advantage = "decomposed", group = 2 }) end,
        "length rewards", "decomposed needs length rewards")
      check.raises(function() egrc.advantages({ 1, 0 }, nil, { advantage = "grop" }) end, "'grop' is not one of",
        "enum")
      local copy = reference() -- cloned before the training below
      local g = rollout()
      local r = g.r
      local rewards = {}
      for i = 1, #r do rewards[i] = r:length(i) / 8 + 0.1 * (i % 3) end
      local gt = egrc.trainer(model(), { lr = 1e-4, steps = 10 })
      local stats = gt:grpo_step(r, rewards, nil, { advantage = "grpo", group = 3 })
      check.eq(stats.optimizer_steps, 1, "grpo optimizer step")
      check.ok(stats.grad_norm > 0 and stats.entropy > 0, "grpo stats")
      check.near(stats.reward_mean, r:stats().mean_length / 8 + 0.1, 1e-5, "grpo reward mean")
      check.eq(gt:step(), 1, "grpo advances the step")
      local len_terms = {}
      for i = 1, #r do len_terms[i] = 1 - rewards[i] end
      stats = gt:grpo_step(r, rewards, len_terms, { advantage = "decomposed", group = 3, kl_coef = 0.1 }, copy)
      check.ok(stats.kl >= 0, "grpo with a reference model")
      check.raises(function() gt:grpo_step(r, { 1 }) end, "6 numbers expected", "reward count")
      check.raises(function() gt:grpo_step(r, rewards, nil, { kl_coef = 0.1, group = 3 }) end, "reference model",
        "kl without ref")
      check.raises(function() gt:grpo_step(r, rewards) end, "do not split into groups of 8", "default group of 8")
      local result, text = egrc.analyze(model(), r, rewards, len_terms, { bins = 4, gradients = false })
      check.eq(result.tokens, g.tokens, "analysis tokens")
      check.eq(#result.bins, 4, "analysis bins")
      check.ok(type(text) == "string" and #text > 0, "analysis text")
    end)

    check.case("tasks and grading", function()
      local families = egrc.tasks.families()
      check.eq(#families, 6, "six families")
      check.eq(egrc.tasks.difficulties, 3, "difficulties")
      local p, concise = chain().problem, chain().concise
      check.eq(p.family, "chain", "sample family")
      check.eq(p.prompt, "Q: " .. p.question .. "\nA: ", "problem prompt")
      check.eq(egrc.tasks.prompt(p), p.prompt, "tasks.prompt")
      check.eq(egrc.tasks.is_eval(p, 0), false, "train problem is not eval")
      check.ok(egrc.tasks.check(p, concise), "concise trace is correct")
      local verbose = egrc.tasks.trace(p, "verbose", egrc.rng(2))
      check.ok(#verbose > #concise and egrc.tasks.check(p, verbose), "verbose trace is longer and correct")
      check.eq(egrc.tasks.check(p, "</think> \\boxed{-1}"), false, "wrong answer")
      check.eq(egrc.tasks.generate(egrc.rng(1), "mod", 2).family, "mod", "tasks.generate")
      check.eq(#eval_set(), 18, "eval set: one per family and level")
      check.ok(egrc.tasks.is_eval(eval_set()[1], 0), "eval problem")
      check.raises(function() egrc.tasks.sample(egrc.rng(1), { family = "chian" }) end,
        "unknown task family 'chian' (did you mean 'chain'?)", "family typo")
      check.raises(function() egrc.tasks.trace(p, "short") end, "invalid option 'short'", "trace style")
      check.eq(egrc.tasks.think_close, "</think>", "think_close")
      check.eq(egrc.grade.extract("so \\boxed{\\frac{1}{2}}"), "\\frac{1}{2}", "extract")
      check.eq(egrc.grade.extract("no answer here"), nil, "extract: none")
      check.eq(egrc.grade.equivalent("0.5", "\\frac{1}{2}"), true, "equivalent")
      check.eq(egrc.grade.equivalent("2", "3"), false, "not equivalent")
      check.eq(egrc.grade.response("18", "The answer is 18."), true, "grade.response")
      local bench = egrc.benchmarks.load(s.data .. "/benchmarks/gsm8k/sample.jsonl")
      check.eq(#bench.items, 20, "benchmark items")
      check.eq(bench.items[1].answer, "18", "benchmark gold answer")
      local bj = egrc.benchmarks.load_jsonl(s.data .. "/benchmarks/gsm8k/sample.jsonl", "question", "answer")
      check.eq(bj.items[2].answer, bench.items[2].answer, "load_jsonl")
      check.raises(function() egrc.benchmarks.load(s.data .. "/nope.jsonl") end, "nope.jsonl", "missing benchmark")
    end)

    check.case("json and files", function()
      local obj = { b = 1, a = { 1, 2, 3 }, c = { x = true, y = "s" }, f = 0.25 }
      check.eq(egrc.json.encode(obj), '{"a":[1,2,3],"b":1,"c":{"x":true,"y":"s"},"f":0.25}', "encode sorts keys")
      local back_obj = egrc.json.decode(egrc.json.encode(obj, true))
      check.eq(back_obj.c.y, "s", "decode")
      check.eq(math.type(back_obj.b), "integer", "integers stay integers")
      check.eq(egrc.json.encode(0 / 0), "null", "NaN is null")
      check.raises(function() egrc.json.encode({ f = print }) end, "cannot encode a function (at 'f')",
        "encode function")
      local cyc = {}
      cyc.self = cyc
      check.raises(function() egrc.json.encode(cyc) end, "a cycle?", "encode cycle")
      check.raises(function() egrc.json.decode("{bad") end, "not valid JSON", "decode bad")
      egrc.json.write(run:path("obj.json"), obj)
      check.eq(egrc.json.read(run:path("obj.json")).f, 0.25, "json write/read")
      egrc.fs.write(run:path("rows.jsonl"), '{"q":"a","n":1}\n\n{"q":"b","n":2}\n')
      local rows_read = egrc.jsonl(run:path("rows.jsonl"))
      check.eq(#rows_read, 2, "jsonl skips blank lines")
      check.eq(rows_read[2].q, "b", "jsonl values")
      check.eq(egrc.data.jsonl, egrc.jsonl, "data.jsonl")
      egrc.fs.write(run:path("bad.jsonl"), '{"q":1}\n{oops\n')
      check.raises(function() egrc.jsonl(run:path("bad.jsonl")) end, "bad.jsonl:2: not valid JSON",
        "jsonl names the line")
      egrc.fs.mkdir(run:path("a/b/c"))
      check.ok(egrc.fs.exists(run:path("a/b/c")), "mkdir -p")
      egrc.fs.remove(run:path("obj.json"))
      check.eq(egrc.fs.exists(run:path("obj.json")), false, "remove")
      local metrics = egrc.metrics.open(run:path("extra.jsonl"))
      metrics:write { step = 1, v = 0.5 }
      metrics:close()
      check.eq(egrc.jsonl(run:path("extra.jsonl"))[1].v, 0.5, "metrics writer")
      check.raises(function() metrics:write { step = 2 } end, "closed", "closed metrics")
    end)

    check.case("buffers", function()
      local buf = egrc.buffer(3)
      check.eq(#buf, 3, "buffer size")
      buf[2] = 1.5
      check.eq(buf[2], 1.5, "buffer set/get")
      check.eq(buf:fill(2)[3], 2, "buffer fill")
      check.eq(table.concat(egrc.buffer({ 1, 2 }):totable(), ","), "1.0,2.0", "buffer from table")
      check.raises(function() return buf[4] end, "buffer index 4 is outside 1..3", "buffer bounds")
      check.raises(function() buf:nothing() end, "no method 'nothing'", "buffer method")
    end)

    check.case("console", function()
      check.eq(egrc.console.is_live(), false, "not a live terminal under ctest")
      egrc.console.progress("progress line")
      egrc.console.print("a printed line")
      egrc.console.finish()
    end)

    check.case("data and sft.encode", function()
      local drng = egrc.rng(4)
      check.eq(egrc.data.prompt({ question = "2+2?" }), "Q: 2+2?\nA: ", "data.prompt")
      check.raises(function() egrc.data.prompt({}) end, "neither", "data.prompt needs a question")
      check.ok(egrc.data.sampler({ "x" })(drng) == "x", "data.sampler")
      check.eq(egrc.data.tasks { family = "mul" }(drng).family, "mul", "data.tasks")
      local two = #egrc.data.task_eval { per_cell = 2 }
      check.ok(two > 30 and two <= 36, "data.task_eval")
      local ex = egrc.data.task_sft { style = "verbose" }(drng)
      check.ok(ex.response and ex.style == "verbose" and egrc.tasks.check(ex, ex.response), "data.task_sft")
      check.raises(function() egrc.data.task_sft { style = "loud" } end, "style must be", "task_sft style")
      check.raises(function() egrc.data.tasks { famly = "mul" } end, "unknown option 'famly' (did you mean 'family'?)",
        "Lua-side option typo")
      local items, bname = egrc.data.benchmark(s.data .. "/benchmarks/gsm8k/sample.jsonl", { limit = 3 })
      check.eq(#items, 3, "data.benchmark limit")
      check.eq(bname, "gsm8k", "benchmark name")
      check.ok(items[1].prompt:find("^Q: Janet"), "benchmark prompt")
      local ids2, mask2 = egrc.sft.encode(tok(), ex, eos(), nil)
      check.eq(#ids2, #mask2, "sft.encode mask length")
      check.eq(mask2[1], 0, "prompt masked")
      check.eq(mask2[#mask2], 1, "eos trained")
      check.eq(ids2[#ids2], eos(), "eos appended")
    end)

    check.case("eval helpers", function()
      local p = chain().problem
      local ok_grade, answer = egrc.eval.grade(p, chain().concise)
      check.eq(ok_grade, true, "eval.grade task")
      check.eq(answer, p.answer, "eval.grade answer")
      check.eq(egrc.eval.grade({ answer = "18" }, "so \\boxed{18}"), true, "eval.grade math")
      check.eq(egrc.eval.reasoning_tokens({ 5, 1, 7, 7, 2, 9 }, 1, 2, false), 4, "reasoning: <think> through </think>")
      check.eq(egrc.eval.reasoning_tokens({ 7, 7, 2, 9 }, 1, 2, true), 3, "reasoning: opened by the prompt")
      check.eq(egrc.eval.reasoning_tokens({ 1, 7, 7 }, 1, 2, false), 3, "reasoning: never closed")
      check.eq(egrc.eval.reasoning_tokens({ 7, 7, 9 }, 1, 2, false), 0, "reasoning: none")
      check.eq(egrc.eval.markdown({ { "model", "acc" }, { "a|b", "0.5" } }),
        "| model | acc |\n| --- | ---: |\n| a\\|b | 0.5 |\n", "eval.markdown")
    end)

    check.case("chat templates", function()
      check.eq(egrc.chat.detect(nil, gpt_tok()), "chatml", "chat.detect by special tokens")
      check.eq(egrc.chat.detect(nil, tok()), "plain", "chat.detect: no chat tokens")
      local llama_dir = run:path("llama3-config")
      egrc.fs.mkdir(llama_dir)
      egrc.json.write(llama_dir .. "/tokenizer_config.json",
        { chat_template = "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>' }}" })
      check.eq(egrc.chat.detect(llama_dir, gpt_tok()), "llama3", "chat.detect by tokenizer_config.json")
      local build, stop, family = egrc.chat.prompt_builder { tokenizer = gpt_tok(), instruction = "Box it." }
      check.eq(build({ question = "1+1?" }),
        "<|im_start|>user\n1+1?\nBox it.<|im_end|>\n<|im_start|>assistant\n<think>\n",
        "chatml prompt with <think> opened")
      check.eq(stop, gpt_tok():token_id("<|im_end|>"), "chatml stop token")
      check.eq(family, "chatml", "chatml family")
      build = egrc.chat.prompt_builder { tokenizer = gpt_tok(), template = "chatml", think = false }
      check.eq(build({ question = "q" }), "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n", "chatml, think off")
      build = egrc.chat.prompt_builder { tokenizer = gpt_tok(), template = "Problem: {question}\nSolution:" }
      check.eq(build({ question = "q" }), "Problem: q\nSolution:", "custom template")
      check.raises(function() egrc.chat.prompt_builder { tokenizer = gpt_tok(), template = "chatlm" } end,
        "template 'chatlm': expected auto, chatml, deepseek, llama3, plain, or a format containing {question}",
        "unknown template")
    end)

    check.case("eval runs", function()
      local items = eval_set()
      local er = egrc.eval.run(model(), tok(), items, { max_new_tokens = 6, batch = 7 })
      check.eq(er.n, 18, "eval.run n")
      check.ok(er.accuracy >= 0 and er.accuracy <= 1 and er.mean_length > 0, "eval.run numbers")
      check.ok(er.by_family.chain.n == 3, "eval.run by family")
      local fit = egrc.eval.run(model(), tok(), { items[1] }, { samples = 2, temperature = 1, seed = 3 })
      check.eq(fit.samples, 2, "eval.run samples")
      check.ok(fit.mean_length <= 128 - #tok():encode(items[1].prompt), "eval.run budget fits the positions")
      check.eq(egrc.eval.table { { "model", "acc" }, { "m", "0.5" } }, "model  acc\n----------\nm      0.5",
        "eval.table")
      local results, table_text = egrc.eval.compare(run, { { name = "tiny", model = model(), tokenizer = tok() } },
        { { name = "tasks", items = { items[1], items[2] } } }, { max_new_tokens = 4, name = "cmp" })
      check.ok(results.tiny.tasks.n == 2 and table_text:find("tasks acc", 1, true), "eval.compare")
      check.ok(egrc.fs.exists(run:path("cmp.json")), "eval.compare saves")
    end)

    check.case("schedules", function()
      check.near(egrc.schedule.slope({ 1, 3, 5, 7 }), 2, 1e-12, "slope")
      check.near(egrc.schedule.slope({ 9, 9, 1, 2, 3 }, 3), 1, 1e-12, "slope window")
      check.eq(egrc.schedule.slope({ 1 }), nil, "slope needs 2")
      local sched = egrc.schedule.entropy_guided { window = 3, eps = 0.01, max_step = 50 }
      local state = { stage = 1, step = 5, entropy_slope = -0.5, history = { entropy = { 3, 2, 1 } } }
      sched(state)
      check.eq(state.stage, 1, "entropy still falling")
      state.entropy_slope, state.step = -0.001, 6
      sched(state)
      check.eq(state.stage, 2, "entropy flat: stage 2")
      check.ok(state.switch_reason:find("flattened"), "switch reason")
      local capped = { stage = 1, step = 51, history = { entropy = {} } }
      sched(capped)
      check.eq(capped.stage, 2, "step cap")
      local fixed = { stage = 1, step = 4 }
      egrc.schedule.fixed { step = 4 }(fixed)
      check.eq(fixed.stage, 2, "fixed schedule")
      egrc.schedule.constant()(fixed)
    end)

    check.case("run methods", function()
      local m2 = run:model({ preset = "qwen2-tiny", path = "", vocab_size = 0 }, { vocab_size = 544 })
      check.eq(m2:config().arch, "qwen2", "run:model preset")
      check.eq(m2:config().vocab_size, 544, "run:model override")
      check.eq(run:model(s.data .. "/tiny-gpt2"):config().max_seq, 64, "run:model folder")
      check.eq(run:tokenizer("tasks"):vocab_size(), 544, "run:tokenizer tasks")
      check.eq(run:tokenizer(s.data .. "/tokenizer"):vocab_size(), gpt_tok():vocab_size(), "run:tokenizer folder")
      check.raises(function() run:log { loss = 1 } end, "integer 'step'", "run:log needs a step")
      check.ok(run:progress_line({ step = 3, loss = 0.5, stage = 2 }):find("step 3 | stage 2 | loss 0.5000", 1, true),
        "progress line")
      local trainer = sft().trainer
      check.eq(run:restore(trainer), nil, "nothing to restore")
      run:checkpoint(1, trainer, egrc.rng(7), { note = "x" })
      check.eq(egrc.json.read(run:path("checkpoints/latest.json")).step, 1, "run:checkpoint")
      check.eq(egrc.json.read(run:path("checkpoints/train-step-000001.json")).note, "x", "checkpoint state")
    end)

    run.summary.checks = check.checks
    check.done("module_test")
  end,
}
