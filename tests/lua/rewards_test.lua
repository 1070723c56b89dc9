-- egrc.rewards (per completion, Lua) against egrc.rewards.batch (core/rl/rewards.h,
-- C) on random groups, plus the combinators and the hand-computed values of
-- docs/method.md. Run as: egrc run tests/lua/rewards_test.lua --set tests=tests/lua
local egrc = require("egrc")
local R = egrc.rewards

return {
  settings = { tests = "tests/lua", samples = 64, group = 8, budget = 100 },

  main = function(run)
    local check = dofile(run.settings.tests .. "/check.lua")
    local n, G, L = run.settings.samples, run.settings.group, run.settings.budget
    local rng = egrc.rng(11)
    local correct, lengths = {}, {}
    for i = 1, n do
      correct[i] = rng:uniform() < 0.6
      lengths[i] = rng:integer(1, L)
    end
    lengths[3] = lengths[2] -- ties
    for i = 2 * G + 1, 3 * G do lengths[i] = 40 end -- a group of equal lengths
    for i = 3 * G + 1, 4 * G do correct[i] = false end -- a group with no correct answer

    -- per-completion values, with the group stats egrc.rl builds
    local function per_completion(f)
      local out, second = {}, {}
      for first = 1, n, G do
        local gl, gc = {}, {}
        for i = first, first + G - 1 do gl[#gl + 1], gc[#gc + 1] = lengths[i], correct[i] end
        local group = R.group_stats(gl, gc)
        for i = first, first + G - 1 do
          out[i], second[i] = f { correct = correct[i], length = lengths[i], budget = L, group = group }
        end
      end
      return out, second
    end
    local function same(got, want, what)
      for i = 1, n do check.near(got[i], want[i], 1e-5, ("%s[%d]"):format(what, i)) end
    end

    local B = R.batch
    same(per_completion(R.accuracy()), B.accuracy(correct), "accuracy")
    same(per_completion(R.exp_length { r = 0.5 }), B.exp_length(correct, lengths, 0.5, L), "exp_length")
    same(per_completion(R.exp_length { r = 0.25, budget = 50 }), B.exp_length(correct, lengths, 0.25, 50), "exp_length L")
    local acc, len = per_completion(R.decomposed())
    local bacc, blen = B.decomposed(correct, lengths, L)
    same(acc, bacc, "decomposed acc")
    same(len, blen, "decomposed len")
    same(per_completion(R.kimi()), B.kimi(correct, lengths, G), "kimi")
    same(per_completion(R.thinkprune { limit = 50 }), B.thinkprune(correct, lengths, 50), "thinkprune")
    same(per_completion(R.l1 { alpha = 0.01, target = 30 }), B.l1(correct, lengths, 30, 0.01), "l1")
    same(per_completion(R.arora_zanette { alpha = 0.3 }), B.arora_zanette(correct, lengths, G, 0.3), "arora_zanette")
    same(per_completion(R.lc_r1()), B.lc_r1(correct, lengths, G), "lc_r1")

    -- the method's stage-1 reward by hand: r^(x/L)
    local e = R.exp_length { r = 0.5 }
    check.near(e { correct = true, length = 0, budget = 100 }, 1, 1e-12, "exp_length at 0")
    check.near(e { correct = true, length = 100, budget = 100 }, 0.5, 1e-12, "exp_length at the budget")
    check.near(e { correct = true, length = 50, budget = 100 }, math.sqrt(0.5), 1e-12, "exp_length half way")
    check.eq(e { correct = false, length = 1, budget = 100 }, 0, "exp_length wrong answer")
    check.raises(function() R.exp_length { r = 1.5 } end, "expected a number in (0, 1]", "exp_length r")
    check.raises(function() B.exp_length({ true }, { 1 }, 0.5, 0) end, "budget must be positive", "batch error")
    check.raises(function() B.kimi({ true, true }, { 1, 2 }, 3) end, "groups of 3", "batch groups")
    check.raises(function() B.l1({ true }, { 1, 2 }, 3, 0.1) end, "one length per sample", "batch lengths")

    -- combinators
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
    local g = R.group_stats({ 10, 20, 30 }, { true, false, true })
    check.eq(g.n_correct, 2, "group n_correct")
    check.eq(g.max_correct_length, 30, "group max correct")
    check.near(g.std_correct_length, 10, 1e-12, "group std (population)")

    check.done("rewards_test")
  end,
}
