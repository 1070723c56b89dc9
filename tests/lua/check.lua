-- A tiny assertion library for the Lua test recipes: every check counts,
-- a failed one prints its line and the run carries on; done() raises an
-- error (so `egrc run` exits 1) when any check failed, when a case raised an
-- error, when no check ran, or when the case filter matched no case.
--
-- Cases: check.case(name, fn) runs fn at once under its own xpcall, so an
-- error in one case is printed with its traceback and counted, and the
-- cases after it still run. The filter: a test recipe declares the setting
-- case = "" and passes it to check.only(run.settings.case); then
--
--   --set case=NAME[,NAME...]
--
-- runs only the cases whose names contain one of the NAMEs (plain text, not
-- a Lua pattern; case names hold no commas). E.g., from the build folder:
--
--   ../tests/lua/run_recipe.sh ./egrc ../tests/lua/module_test.lua \
--     --set tests=../tests/lua --set data=../tests/data --set case=tokenizers,json
--
-- (each test's other --set flags: its add_test in tests/CMakeLists.txt).
local check = { checks = 0, failures = 0, cases = {}, cases_run = 0, raised = {} }

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

--- Runs only the cases whose names contain one of the comma-separated parts
-- of spec; nil or "" runs every case.
function check.only(spec)
  if spec == nil or spec == "" then return end
  check.filter = {}
  for part in spec:gmatch("[^,]+") do
    part = part:match("^%s*(.-)%s*$")
    if part ~= "" then check.filter[#check.filter + 1] = part end
  end
  if #check.filter == 0 then check.filter = nil end
end

local function selected(name)
  if not check.filter then return true end
  for _, part in ipairs(check.filter) do
    if name:find(part, 1, true) then return true end
  end
  return false
end

--- Runs fn() as the case `name` (unless the filter leaves it out); an error
-- in it is printed with its traceback and counted, and the next case runs.
function check.case(name, fn)
  if name:find(",", 1, true) then
    error(("check.case '%s': no commas in a case name (the filter splits on them)"):format(name), 2)
  end
  check.cases[#check.cases + 1] = name
  if not selected(name) then return end
  check.cases_run = check.cases_run + 1
  local ok, err = xpcall(fn, function(e) return debug.traceback(tostring(e), 2) end)
  if not ok then
    check.raised[#check.raised + 1] = name
    print(("ERROR in case '%s': %s"):format(name, err))
  end
end

function check.done(name)
  local cases = ""
  if #check.cases > 0 then
    cases = (" (%d of %d cases ran, %d raised an error)"):format(check.cases_run, #check.cases, #check.raised)
  end
  print(("%s: %d checks, %d failed%s"):format(name, check.checks, check.failures, cases))
  if check.filter and check.cases_run == 0 then
    error(("%s: no case name contains '%s'; the cases are: %s"):format(name, table.concat(check.filter, "' or '"),
      table.concat(check.cases, ", ")), 0)
  end
  if check.checks == 0 then error(name .. ": no checks ran", 0) end
  local problems = {}
  if check.failures > 0 then
    problems[#problems + 1] = ("%d of %d checks failed"):format(check.failures, check.checks)
  end
  if #check.raised > 0 then
    problems[#problems + 1] = ("case '%s' raised an error"):format(table.concat(check.raised, "', '"))
  end
  if #problems > 0 then error(("%s: %s"):format(name, table.concat(problems, "; ")), 0) end
end

return check
