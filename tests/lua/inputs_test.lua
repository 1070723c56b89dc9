-- Bad inputs to evaluation, planted by the test in its run folder: benchmark
-- lines that are not UTF-8 or absurdly long, and prompts longer than the
-- model's context (refused with FILE:LINE, or cut on the left when asked).
-- Run as: egrc run tests/lua/inputs_test.lua --set tests=tests/lua [--set case=NAME]
local egrc = require("egrc")

local context = 128 -- the positions of the models below

return {
  settings = { tests = "tests/lua", case = "" },

  main = function(run)
    local check = dofile(run.settings.tests .. "/check.lua")
    check.only(run.settings.case)
    local tok = egrc.tasks.tokenizer()
    local eos = tok:token_id(egrc.tasks.eos)
    -- a RoPE model, which no position table limits, and a learned-position one
    local rope = egrc.model.create("qwen2-tiny", { vocab_size = tok:vocab_size(), max_seq = context, seed = 3 })
    local gpt2 = egrc.model.create("gpt2-tiny", { vocab_size = tok:vocab_size(), max_seq = context, seed = 3 })
    local folder = run:path("planted")
    egrc.fs.mkdir(folder)

    -- Writes the lines (nil for a blank one) to planted/NAME; returns its path.
    local function plant(name, lines, count)
      local path = folder .. "/" .. name
      local text = {}
      for i = 1, count or #lines do text[i] = lines[i] or "" end
      egrc.fs.write(path, table.concat(text, "\n") .. "\n")
      return path
    end
    local function record(question, answer)
      return egrc.json.encode({ question = question, answer = answer })
    end

    -- A question of about `tokens` tokens in the task tokenizer.
    local function long_question(tokens)
      local unit = "1 + 2 = 3. "
      return unit:rep(tokens // #tok:encode(unit) + 1)
    end
    -- A benchmark whose line 3 holds a prompt far past the context (line 2 is blank).
    local long_path = plant("long.jsonl", { record("1 + 1 = ?", "2"), nil, record(long_question(1000), "3") }, 3)
    local long_items = egrc.data.benchmark(long_path)

    check.case("benchmark items know their file and line", function()
      check.eq(#long_items, 2, "items")
      check.eq(long_items[1].file, long_path, "item file")
      check.eq(long_items[1].line, 1, "first item's line")
      check.eq(long_items[2].line, 3, "line past the blank one")
    end)

    check.case("a line that is not UTF-8 names file line and byte", function()
      local path = plant("latin1.jsonl", { record("2 + 2 = ?", "4"), '{"question": "caf\xe9 au lait", "answer": "1"}' })
      check.raises(function() egrc.data.benchmark(path) end, "latin1.jsonl:2: byte 18 of the line (0xE9) is not valid UTF-8",
        "Latin-1 byte")
    end)

    check.case("a 50 MB line is refused at load", function()
      local huge = record(("9"):rep(50 << 20), "9")
      local path = plant("huge.jsonl", { record("1 + 1 = ?", "2"), huge })
      check.raises(function() egrc.data.benchmark(path) end,
        ("huge.jsonl:2: the line is %d bytes, more than the 1048576 bytes (1 MiB) allowed"):format(#huge), "huge line")
    end)

    local ids_of_long = #tok:encode(long_items[2].prompt)

    check.case("a prompt past the context is an error naming file and line", function()
      check.ok(ids_of_long > 1000, "the planted prompt is long")
      for _, m in ipairs { rope, gpt2 } do
        check.raises(function() egrc.eval.run(m, tok, long_items, { max_new_tokens = 8 }) end,
          ("%s:3: the prompt is %d tokens; with max_new_tokens = 8 it needs %d positions, more than the model's "
            .. "context of %d. Lower max_new_tokens, or set prompt_overflow = \"truncate_left\" to keep the last %d "
            .. "tokens of each such prompt"):format(long_path, ids_of_long, ids_of_long + 8, context, context - 8),
          "overflow of a " .. m:config().arch .. " model")
      end
      check.raises(function() egrc.eval.run(rope, tok, { long_items[2] }, {}) end,
        ("with at least one new token (no max_new_tokens given) it needs %d positions, more than the model's context "
          .. "of %d. Set prompt_overflow"):format(ids_of_long + 1, context), "overflow with the budget left to fit")
      -- refused before any generation, not when its batch comes
      local graded = 0
      local function count(_, _) graded = graded + 1 return false end
      check.raises(function() egrc.eval.run(rope, tok, long_items, { max_new_tokens = 8, batch = 1, grade = count }) end,
        long_path .. ":3:", "overflow in the second batch")
      check.eq(graded, 0, "items generated before the overflow was found")
      check.raises(function() egrc.eval.run(rope, tok, { { prompt = long_items[2].prompt } }, { max_new_tokens = 8 }) end,
        "item 1 of the list: the prompt is", "an item without a file")
      check.raises(function()
        egrc.eval.run(rope, tok, long_items, { max_new_tokens = context, prompt_overflow = "truncate_left" })
      end, long_path .. ":1: max_new_tokens = 128 leaves no room for a prompt", "a budget as large as the context")
      check.raises(function() egrc.eval.run(rope, tok, long_items, { prompt_overflow = "truncate" }) end,
        'prompt_overflow must be "error" or "truncate_left", got "truncate"',
        "unknown policy")
    end)

    check.case("truncate_left keeps the last tokens and counts the prompt", function()
      local seen = {}
      local function remember(item, text)
        seen[item.line] = text
        return false
      end
      local r = egrc.eval.run(rope, tok, long_items, { max_new_tokens = 8, stop = eos, grade = remember,
                                                       prompt_overflow = "truncate_left" })
      check.eq(r.truncated, 1, "truncated prompts")
      check.eq(r.n, 2, "items evaluated")
      -- the same greedy completion from the prompt's last 120 tokens, and not from its first
      local ids = tok:encode(long_items[2].prompt)
      local keep = context - 8
      local function complete(first)
        local rollout = egrc.generate(rope, { table.move(ids, first, first + keep - 1, 1, {}) },
          { temperature = 0, max_new_tokens = 8, stop = eos })
        local text = rollout:texts(tok)[1]
        rollout:free()
        return text
      end
      local from_end, from_start = complete(#ids - keep + 1), complete(1)
      check.eq(seen[3], from_end, "completion of the left-truncated prompt")
      check.ok(from_end ~= from_start, "the two sides complete differently (else this case proves nothing)")
    end)

    check.case("without max_new_tokens the budget fits the context", function()
      local item = { prompt = long_question(100) }
      local length = #tok:encode(item.prompt)
      -- no stop token: every completion runs to its budget
      local r = egrc.eval.run(rope, tok, { item }, { stop = {} })
      check.eq(r.mean_length, context - length, "budget left by a " .. length .. "-token prompt")
      r = egrc.eval.run(rope, tok, { long_items[2] }, { stop = {}, prompt_overflow = "truncate_left" })
      check.eq(r.mean_length, 1, "a truncated prompt leaves one token")
    end)

    check.case("eval.compare notes truncated prompts", function()
      local results, text = egrc.eval.compare(run, { { name = "rope", model = rope, tokenizer = tok } },
        { { name = "long", items = long_items } }, { name = "cmp", max_new_tokens = 4, prompt_overflow = "truncate_left" })
      check.eq(results.rope.long.truncated, 1, "compare results")
      check.ok(text:find("long acc", 1, true), "the table")
      local md = io.open(run:path("cmp.md")):read("a")
      check.ok(md:find('rope on long: 1 of 2 prompts truncated on the left to fit the context', 1, true),
        "cmp.md notes the truncation")
      check.eq(egrc.json.read(run:path("cmp.json")).rope.long.truncated, 1, "cmp.json")
    end)

    check.case("egrc.generate refuses a prompt past the context", function()
      local ids = tok:encode(long_question(200))
      check.raises(function() egrc.generate(rope, { { 1, 2 }, ids }, { max_new_tokens = 1 }) end,
        ("prompt 2 has %d tokens, more than the model's context of %d positions"):format(#ids, context), "generate")
    end)

    check.done("inputs_test")
  end,
}
