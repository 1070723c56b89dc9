-- egrc.chat: prompts for Hugging Face chat models, without a Jinja engine.
-- A model folder's tokenizer_config.json names its template in Jinja; egrc
-- recognises the template families reasoning models use by their markers
-- (ChatML for Qwen, Llama 3 headers, DeepSeek-R1's full-width bars) and
-- writes the same text for a single user turn. A recipe can instead give its
-- own format with a {question} placeholder.
local core = require("egrc.core")

local chat = {}

-- Per family: the text before the question, the text after it (which opens
-- the assistant turn) and the end-of-turn token the model stops on.
local families = {
  chatml = { "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>" },
  llama3 = { "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n",
             "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>" },
  deepseek = { "<｜begin▁of▁sentence｜><｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>" },
  plain = { "Question: ", "\nAnswer: ", nil },
}
-- Checked in this order: the DeepSeek-R1 distills keep Qwen's ChatML tokens
-- in their vocabulary, so their own markers must win.
local markers = { { "deepseek", "<｜Assistant｜>" }, { "llama3", "<|start_header_id|>" }, { "chatml", "<|im_start|>" } }

local function chat_template_text(model_dir)
  local path = model_dir and model_dir .. "/tokenizer_config.json"
  if not path or not core.fs.exists(path) then return nil end
  local ok, config = pcall(core.json.read, path)
  if not ok then error(("%s: not valid JSON (%s)"):format(path, config), 0) end
  local t = config.chat_template
  if type(t) == "table" then -- a list of named templates: the default one
    for _, named in ipairs(t) do
      if named.name == "default" then return named.template end
    end
    return nil
  end
  return type(t) == "string" and t or nil
end

--- The template family of a model: from its tokenizer_config.json's
-- chat_template when there is one, else from the tokenizer's special
-- tokens; "plain" when neither shows a known family.
function chat.detect(model_dir, tokenizer)
  local text = chat_template_text(model_dir)
  for _, m in ipairs(markers) do
    local name, marker = m[1], m[2]
    if text and text:find(marker, 1, true) then return name end
    if not text and tokenizer:token_id(marker) then return name end
  end
  return "plain"
end

--- A prompt builder for benchmark items. opts: template ("auto", a family
-- name: chatml, llama3, deepseek, plain; or a format with {question}),
-- model_dir and tokenizer (for "auto"), instruction (appended to the
-- question, e.g. "put your final answer within \boxed{}"), think (open the
-- assistant turn with "<think>\n": true, false, or "auto" = when the
-- tokenizer has a <think> token). Returns template(item) -> text, the stop
-- token id (or nil) and the family's name.
function chat.prompt_builder(opts)
  local name = opts.template or "auto"
  if name == "auto" then name = chat.detect(opts.model_dir, opts.tokenizer) end
  local before, after, stop_text
  if families[name] then
    before, after, stop_text = table.unpack(families[name])
  elseif name:find("{question}", 1, true) then
    local at = name:find("{question}", 1, true)
    before, after = name:sub(1, at - 1), name:sub(at + #"{question}")
  else
    local known = {}
    for family in pairs(families) do known[#known + 1] = family end
    table.sort(known)
    error(("template '%s': expected auto, %s, or a format containing {question}"):format(name,
      table.concat(known, ", ")), 0)
  end
  local think = opts.think
  if think == nil or think == "auto" then think = opts.tokenizer:token_id("<think>") ~= nil end
  if think and families[name] then after = after .. "<think>\n" end
  local instruction = opts.instruction and opts.instruction ~= "" and "\n" .. opts.instruction or ""
  local stop = stop_text and opts.tokenizer:token_id(stop_text) or nil
  return function(item) return before .. item.question .. instruction .. after end, stop, name
end

return chat
