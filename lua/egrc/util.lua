-- Internal helpers of the egrc Lua library.
local core = require("egrc.core")

local util = {}

--- Errors (at the caller's caller) for an option not in `allowed`,
-- suggesting the closest one, like the C functions do.
function util.check_options(fname, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("%s: options table expected, got %s"):format(fname, type(opts)), 3)
  end
  local set = {}
  for _, name in ipairs(allowed) do set[name] = true end
  for name in pairs(opts) do
    if not set[name] then
      local near = type(name) == "string" and core.closest(name, allowed)
      error(("%s: unknown option '%s'%s"):format(fname, tostring(name),
        near and (" (did you mean '%s'?)"):format(near) or ""), 3)
    end
  end
  return opts
end

--- A deep copy of a table of settings (nested tables copied too).
function util.copy(t)
  local out = {}
  for key, value in pairs(t) do out[key] = type(value) == "table" and util.copy(value) or value end
  return out
end

--- Mean and population standard deviation of a list of numbers.
function util.mean_std(values)
  local n, sum = #values, 0
  if n == 0 then return 0, 0 end
  for _, v in ipairs(values) do sum = sum + v end
  local mean, sq = sum / n, 0
  for _, v in ipairs(values) do sq = sq + (v - mean) ^ 2 end
  return mean, math.sqrt(sq / n)
end

--- Appends v to list, keeping at most `cap` most recent values.
function util.push_capped(list, v, cap)
  list[#list + 1] = v
  if #list > cap then table.remove(list, 1) end
end

--- The end-of-text token id: the tokenizer's, else the model's config.
function util.eos_id(tokenizer, model)
  local id = tokenizer and tokenizer:token_id(core.tasks.eos)
  if not id and model then
    local eos = model:config().eos_token_id
    id = eos >= 0 and eos or nil
  end
  return id
end

return util
