-- egrc.rewards: reward functions for one completion at a time, and the
-- combinators to build new ones. Each constructor returns a function
-- reward(s) -> number (the decomposed reward returns two: the accuracy term
-- and the length term), where s describes one completion:
--
--   s.text      the completion's text          s.correct  the grader's verdict
--   s.length    its length in tokens           s.answer   the extracted answer (or nil)
--   s.budget    the length budget L            s.gold     the reference answer
--   s.finish    "stop" or "length" (clipped)   s.stage    the training stage
--   s.index     its place in its group         s.item     the dataset item
--   s.group     stats of its group: size, lengths, correct, n_correct,
--               min_length, max_length, mean_length, max_correct_length,
--               mean_correct_length, std_correct_length (population)
--
-- This file is the one home of these formulas (docs/method.md): the RL loop
-- (egrc.rl) calls them once per completion, and tests/lua/rewards_test.lua
-- holds them to hand-computed values.
local rewards = {}

local function c(s) return s.correct and 1 or 0 end

local function check_range(name, value, lo, hi)
  if type(value) ~= "number" or value <= lo or value > hi then
    error(("egrc.rewards.%s: expected a number in (%g, %g], got %s"):format(name, lo, hi, tostring(value)), 3)
  end
end

--- Statistics of one group (the completions of one prompt).
function rewards.group_stats(lengths, correct)
  local g = { size = #lengths, lengths = lengths, correct = correct, n_correct = 0 }
  local sum, sum_correct = 0, 0
  g.min_length, g.max_length, g.max_correct_length = math.huge, -math.huge, 0
  for i, len in ipairs(lengths) do
    sum = sum + len
    g.min_length = math.min(g.min_length, len)
    g.max_length = math.max(g.max_length, len)
    if correct[i] then
      g.n_correct = g.n_correct + 1
      sum_correct = sum_correct + len
      g.max_correct_length = math.max(g.max_correct_length, len)
    end
  end
  g.mean_length = sum / g.size
  g.mean_correct_length = g.n_correct > 0 and sum_correct / g.n_correct or 0
  local sq = 0
  for i, len in ipairs(lengths) do
    if correct[i] then sq = sq + (len - g.mean_correct_length) ^ 2 end
  end
  g.std_correct_length = g.n_correct > 0 and math.sqrt(sq / g.n_correct) or 0
  return g
end

--- r = c: 1 for a correct answer, else 0.
function rewards.accuracy()
  return c
end

--- Stage 1 of the method: r^(len/L) for a correct answer (1 at length 0, r at
-- the budget L), 0 otherwise. opts.r (default 0.5), opts.budget (default s.budget).
function rewards.exp_length(opts)
  opts = opts or {}
  local r = opts.r or 0.5
  check_range("exp_length", r, 0, 1)
  return function(s)
    if not s.correct then return 0 end
    return math.exp(math.log(r) / (opts.budget or s.budget) * s.length)
  end
end

--- Stage 2 of the method: two terms, accuracy c and length c * (1 - len/L),
-- which the decomposed advantage normalises separately.
function rewards.decomposed(opts)
  opts = opts or {}
  return function(s)
    if not s.correct then return 0, 0 end
    return 1, 1 - s.length / (opts.budget or s.budget)
  end
end

--- Kimi 1.5: lam = 0.5 - (len - min)/(max - min) over the group;
-- c + lam when correct, min(0, lam) otherwise.
function rewards.kimi()
  return function(s)
    local g = s.group
    local lam = g.max_length == g.min_length and 0 or 0.5 - (s.length - g.min_length) / (g.max_length - g.min_length)
    return s.correct and 1 + lam or math.min(0, lam)
  end
end

--- ThinkPrune: c when len <= limit, else 0. opts.limit (default s.budget).
function rewards.thinkprune(opts)
  opts = opts or {}
  return function(s)
    return (s.correct and s.length <= (opts.limit or s.budget)) and 1 or 0
  end
end

--- L1 (LCPO, exact): c - alpha * |target - len|. opts.alpha, opts.target
-- (tokens, or a function of s; default s.budget).
function rewards.l1(opts)
  opts = opts or {}
  local alpha = opts.alpha or 0.0003
  return function(s)
    local target = opts.target or s.budget
    if type(target) == "function" then target = target(s) end
    return c(s) - alpha * math.abs(target - s.length)
  end
end

--- Arora & Zanette: c * (1 - alpha * sigmoid(z)), z the length's z-score
-- among the group's correct completions. opts.alpha (default 0.2).
function rewards.arora_zanette(opts)
  opts = opts or {}
  local alpha = opts.alpha or 0.2
  return function(s)
    if not s.correct then return 0 end
    local g = s.group
    local z = g.std_correct_length > 0 and (s.length - g.mean_correct_length) / g.std_correct_length or 0
    return 1 - alpha / (1 + math.exp(-z))
  end
end

--- LC-R1 style: c + (1 - len / longest correct length in the group) when correct.
function rewards.lc_r1()
  return function(s)
    if not s.correct then return 0 end
    local longest = s.group.max_correct_length
    return 1 + (1 - (longest > 0 and s.length / longest or 0))
  end
end

--- A linear length penalty: c * (1 - weight * len / L).
function rewards.linear_length(opts)
  opts = opts or {}
  local weight = opts.weight or 0.5
  return function(s)
    return c(s) * (1 - weight * s.length / (opts.budget or s.budget))
  end
end

--- -per_token * len, whatever the answer (add it to another reward with sum).
function rewards.length_penalty(opts)
  local per_token = assert(opts and opts.per_token, "egrc.rewards.length_penalty: opts.per_token is required")
  return function(s) return -per_token * s.length end
end

--- The sum of several rewards (first values only).
function rewards.sum(...)
  local parts = { ... }
  return function(s)
    local total = 0
    for _, f in ipairs(parts) do total = total + (f(s)) end
    return total
  end
end

--- k * f(s) (both terms of a decomposed reward are scaled).
function rewards.scale(f, k)
  return function(s)
    local a, b = f(s)
    return a * k, b and b * k
  end
end

--- f(s) for correct completions, 0 for wrong ones.
function rewards.when_correct(f)
  return function(s)
    if not s.correct then return 0 end
    return f(s)
  end
end

--- f(s) clamped to [lo, hi].
function rewards.clip(f, lo, hi)
  return function(s) return math.max(lo, math.min(hi, (f(s)))) end
end

return rewards
