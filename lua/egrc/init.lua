-- The egrc module: the C functions of egrc.core, and the Lua library
-- (egrc.rewards, egrc.schedule, egrc.rl, egrc.sft, egrc.eval, egrc.data, egrc.chat, egrc.method,
-- egrc.reasoner, egrc.report, egrc.run), each loaded on first use. Reading a name egrc does not have is
-- an error that suggests the closest one, so typos fail where they are.
local core = require("egrc.core")

local egrc = {}
for name, value in pairs(core) do egrc[name] = value end

local parts = { chat = true, data = true, eval = true, method = true, reasoner = true, report = true, rewards = true,
                rl = true, run = true, schedule = true, sft = true }

local function names()
  local list = {}
  for name in pairs(egrc) do list[#list + 1] = name end
  for name in pairs(parts) do list[#list + 1] = name end
  if core.sandboxed then list[#list + 1] = "ffi" end
  return list
end

return setmetatable(egrc, {
  __index = function(_, name)
    if parts[name] then
      local part = require("egrc." .. name)
      rawset(egrc, name, part)
      return part
    end
    if name == "ffi" and core.sandboxed then error("egrc.ffi is disabled by --sandbox", 2) end
    local near = type(name) == "string" and core.closest(name, names())
    error(("egrc.%s does not exist%s"):format(tostring(name), near and (" (did you mean egrc.%s?)"):format(near) or ""), 2)
  end,
})
