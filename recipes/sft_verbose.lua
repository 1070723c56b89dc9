-- Trains the verbose base reasoner of the built-in task suite (the starting
-- point of entropy_guided.lua) and saves it as a Hugging Face folder:
--
--   egrc run recipes/sft_verbose.lua [--set base.steps=2000 ...]
--
-- entropy_guided.lua runs this itself on first use and reuses the folder.
local egrc = require("egrc")
local reasoner = require("egrc.reasoner")

local settings = reasoner.add_defaults {}

return {
  settings = settings,
  main = function(run)
    local s = run.settings
    local model, tok, seconds, dir = reasoner.train(run, s.base)
    local result = reasoner.evaluate(model, tok, s.eval)
    print(("base reasoner: %s; SFT %.0f s; eval accuracy %.3f, mean %.1f tokens"):format(dir, seconds,
      result.accuracy, result.mean_length))
    run.summary.base = { dir = dir, sft_seconds = seconds, accuracy = result.accuracy,
                         mean_tokens = result.mean_length, per_family = result.by_family }
    egrc.json.write(run:path("base.json"), run.summary.base)
  end,
}
