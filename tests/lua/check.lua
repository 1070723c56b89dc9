-- A tiny assertion library for the Lua test recipes: every check counts,
-- a failed one prints its line and the run carries on; done() raises an
-- error (so `egrc run` exits 1) when any check failed.
local check = { checks = 0, failures = 0 }

local function fail(message)
  check.failures = check.failures + 1
  local info = debug.getinfo(3, "Sl")
  print(("FAILED %s:%d: %s"):format(info.short_src, info.currentline, message))
end

function check.ok(cond, what)
  check.checks = check.checks + 1
  if not cond then fail(what or "condition is false") end
  return cond
end

function check.eq(got, want, what)
  check.checks = check.checks + 1
  if got ~= want then fail(("%s: got %s, want %s"):format(what or "value", tostring(got), tostring(want))) end
end

function check.near(got, want, tol, what)
  check.checks = check.checks + 1
  if type(got) ~= "number" or math.abs(got - want) > tol * math.max(1, math.abs(want)) then
    fail(("%s: got %s, want %s (tol %g)"):format(what or "value", tostring(got), tostring(want), tol))
  end
end

--- fn must raise an error whose message contains `pattern` (plain text).
function check.raises(fn, pattern, what)
  check.checks = check.checks + 1
  local ok, err = pcall(fn)
  if ok then
    fail(("%s: no error raised (wanted '%s')"):format(what or "call", pattern))
  elseif not tostring(err):find(pattern, 1, true) then
    fail(("%s: error '%s' lacks '%s'"):format(what or "call", tostring(err), pattern))
  end
end

function check.done(name)
  print(("%s: %d checks, %d failed"):format(name, check.checks, check.failures))
  if check.checks == 0 then error(name .. ": no checks ran", 0) end
  if check.failures > 0 then error(("%s: %d of %d checks failed"):format(name, check.failures, check.checks), 0) end
end

return check
