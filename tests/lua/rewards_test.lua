-- egrc.rewards, the reward formulas the RL loop runs: the hand-computed values
-- of docs/method.md's formulas, every reward in its range on random groups
-- (ties, equal lengths, no correct answer), and the combinators.
-- Run as: egrc run tests/lua/rewards_test.lua --set tests=tests/lua [--set case=NAME]
local egrc = require("egrc")
local R = egrc.rewards

-- f's values over completions given as parallel lists (correct as 1/0), in
-- consecutive groups of group_size, with the per-completion table egrc.rl
-- builds; `second` holds the second values (the decomposed length term).
local function score(f, correct, lengths, opts)
  local size, budget = opts.group_size or #lengths, opts.budget or 100
  local first_values, second = {}, {}
  for first = 1, #lengths, size do
    local gl, gc = {}, {}
    for i = first, first + size - 1 do gl[#gl + 1], gc[#gc + 1] = lengths[i], correct[i] == 1 end
    local group = R.group_stats(gl, gc)
    for i = first, first + size - 1 do
      first_values[i], second[i] = f { correct = correct[i] == 1, length = lengths[i], budget = budget,
                                       group = group, index = i - first + 1 }
    end
  end
  return first_values, second
end

return {
  settings = { tests = "tests/lua", case = "", samples = 64, group = 8, budget = 100 },

  main = function(run)
    local check = dofile(run.settings.tests .. "/check.lua")
    check.only(run.settings.case)
    -- the tolerance of the hand-computed values: relative, 1e-6
    local function all_near(got, want, what)
      for i = 1, #want do check.near(got[i], want[i], 1e-6, ("%s[%d]"):format(what, i)) end
    end

    check.case("exp_length by hand", function()
      -- r = 0.5, L = 100: 1 at length 0, 0.5 at the budget, 0.5^0.5 halfway, 0.5^0.37; wrong: 0
      local correct, lengths = { 1, 1, 1, 1, 0, 0 }, { 0, 100, 50, 37, 10, 100 }
      all_near(score(R.exp_length { r = 0.5 }, correct, lengths, {}),
        { 1.0, 0.5, 0.7071067811865476, 0.7737824967711949, 0.0, 0.0 }, "exp_length")
      check.raises(function() R.exp_length { r = 0 } end, "expected a number in (0, 1]", "exp_length r = 0")
      check.raises(function() R.exp_length { r = 1.5 } end, "expected a number in (0, 1]", "exp_length r = 1.5")
      -- r = 1: no length pressure
      local flat = score(R.exp_length { r = 1 }, correct, lengths, {})
      check.eq(flat[2], 1, "exp_length r = 1 at the budget")
      check.eq(flat[5], 0, "exp_length r = 1, wrong answer")
      -- the method's stage-1 reward as a formula: r^(x/L)
      local e = R.exp_length { r = 0.5 }
      check.near(e { correct = true, length = 0, budget = 100 }, 1, 1e-12, "exp_length at 0")
      check.near(e { correct = true, length = 100, budget = 100 }, 0.5, 1e-12, "exp_length at the budget")
      check.near(e { correct = true, length = 50, budget = 100 }, math.sqrt(0.5), 1e-12, "exp_length half way")
      check.eq(e { correct = false, length = 1, budget = 100 }, 0, "exp_length wrong answer")
    end)

    check.case("decomposed by hand", function()
      local acc, len = score(R.decomposed(), { 1, 0, 1 }, { 25, 10, 100 }, {})
      all_near(acc, { 1, 0, 1 }, "decomposed.acc")
      all_near(len, { 0.75, 0, 0 }, "decomposed.len")
    end)

    check.case("accuracy thinkprune l1 by hand", function()
      local correct, lengths, targets = { 1, 1, 0, 1 }, { 20, 21, 5, 100 }, { 100, 70, 130, 100 }
      all_near(score(R.accuracy(), correct, lengths, {}), { 1, 1, 0, 1 }, "accuracy")
      all_near(score(R.thinkprune { limit = 20 }, correct, lengths, {}), { 1, 0, 0, 0 }, "thinkprune")
      -- alpha 0.01: 1 - 0.8, 1 - 0.49, 0 - 1.25, 1 - 0
      local l1 = R.l1 { alpha = 0.01, target = function(s) return targets[s.index] end }
      all_near(score(l1, correct, lengths, {}), { 0.2, 0.51, -1.25, 1.0 }, "l1")
    end)

    check.case("kimi by hand", function()
      -- group 1: Lmin 10, Lmax 50: lam = 0.5, 0.25, 0, -0.5; correct get c + lam, wrong min(0, lam).
      -- group 2: equal lengths, lam = 0.
      local out = score(R.kimi(), { 1, 1, 0, 0, 1, 0, 0, 1 }, { 10, 20, 30, 50, 7, 7, 7, 7 }, { group_size = 4 })
      all_near(out, { 1.5, 1.25, 0.0, -0.5, 1, 0, 0, 1 }, "kimi")
      -- a wrong short answer is never rewarded: lam > 0 is clipped to 0
      check.eq(out[3], 0, "kimi: a wrong answer gets no bonus")
    end)

    check.case("arora_zanette by hand", function()
      -- group 1: correct lengths 10, 20, 30: mean 20, population std sqrt(200/3);
      -- alpha 0.2: 1 - 0.2 sigmoid(-+1.2247..), 1 - 0.1 at the mean; wrong 0.
      -- group 2: a single correct sample: z = 0.
      all_near(score(R.arora_zanette { alpha = 0.2 }, { 1, 1, 1, 0, 0, 1, 0, 0 }, { 10, 20, 30, 5, 3, 9, 4, 4 },
        { group_size = 4 }), { 0.9545794961128632, 0.9, 0.8454205038871369, 0, 0, 0.9, 0, 0 }, "arora_zanette")
    end)

    check.case("lc_r1 by hand", function()
      -- group 1: longest correct 40: 1 + (1 - 10/40), 1 + 0, wrong 0, 1 + (1 - 20/40); group 2: none correct
      all_near(score(R.lc_r1(), { 1, 1, 0, 1, 0, 0, 0, 0 }, { 10, 40, 100, 20, 1, 2, 3, 4 }, { group_size = 4 }),
        { 1.75, 1.0, 0, 1.5, 0, 0, 0, 0 }, "lc_r1")
    end)

    check.case("ranges on random groups", function()
      local n, G, L = run.settings.samples, run.settings.group, run.settings.budget
      local rng = egrc.rng(11)
      local correct, lengths = {}, {}
      for i = 1, n do
        correct[i] = rng:uniform() < 0.6 and 1 or 0
        lengths[i] = rng:integer(1, L)
      end
      lengths[3] = lengths[2] -- ties
      for i = 2 * G + 1, 3 * G do lengths[i] = 40 end -- a group of equal lengths
      for i = 3 * G + 1, 4 * G do correct[i] = 0 end -- a group with no correct answer
      local opts = { group_size = G, budget = L }
      -- every value a finite number in [lo, hi], and wrong answers at `wrong` (nil: any value in range)
      local function in_range(values, lo, hi, wrong, what)
        for i = 1, n do
          local v = values[i]
          local ok = type(v) == "number" and v >= lo and v <= hi
          if wrong and correct[i] == 0 then ok = v == wrong end
          check.ok(ok, ("%s[%d] = %s, wanted %s"):format(what, i, tostring(v),
            (wrong and correct[i] == 0) and tostring(wrong) or ("[%g, %g]"):format(lo, hi)))
        end
      end
      in_range(score(R.accuracy(), correct, lengths, opts), 1, 1, 0, "accuracy")
      in_range(score(R.exp_length { r = 0.5 }, correct, lengths, opts), 0.5, 1, 0, "exp_length")
      in_range(score(R.exp_length { r = 0.25, budget = 50 }, correct, lengths, opts), 0.25 ^ (L / 50), 1, 0,
        "exp_length L")
      local acc, len = score(R.decomposed(), correct, lengths, opts)
      in_range(acc, 1, 1, 0, "decomposed acc")
      in_range(len, 0, 1, 0, "decomposed len")
      in_range(score(R.kimi(), correct, lengths, opts), -0.5, 1.5, nil, "kimi")
      in_range(score(R.thinkprune { limit = 50 }, correct, lengths, opts), 0, 1, 0, "thinkprune")
      in_range(score(R.l1 { alpha = 0.01, target = 30 }, correct, lengths, opts), -0.01 * (L - 30), 1, nil, "l1")
      in_range(score(R.arora_zanette { alpha = 0.3 }, correct, lengths, opts), 0.7, 1, 0, "arora_zanette")
      in_range(score(R.lc_r1(), correct, lengths, opts), 1, 2, 0, "lc_r1")
    end)

    check.case("combinators", function()
      local s = { correct = true, length = 20, budget = 100 }
      check.near(R.linear_length { weight = 0.5 }(s), 0.9, 1e-12, "linear_length")
      check.near(R.length_penalty { per_token = 0.01 }(s), -0.2, 1e-12, "length_penalty")
      check.near(R.sum(R.accuracy(), R.length_penalty { per_token = 0.01 })(s), 0.8, 1e-12, "sum")
      local a2, l2 = R.scale(R.decomposed(), 2)(s)
      check.near(a2, 2, 1e-12, "scale first term")
      check.near(l2, 1.6, 1e-12, "scale second term")
      check.eq(R.when_correct(function() return 5 end) { correct = false }, 0, "when_correct")
      check.eq(R.clip(function() return 5 end, 0, 1)(s), 1, "clip")
      check.raises(function() R.length_penalty {} end, "per_token is required", "length_penalty needs per_token")
    end)

    check.case("group_stats", function()
      local g = R.group_stats({ 10, 20, 30 }, { true, false, true })
      check.eq(g.n_correct, 2, "group n_correct")
      check.eq(g.max_correct_length, 30, "group max correct")
      check.near(g.std_correct_length, 10, 1e-12, "group std (population)")
    end)

    check.done("rewards_test")
  end,
}
