-- egrc.report: a self-contained HTML report of a run: one inline SVG chart per
-- metric over the steps, with the stage switch marked, and result tables.
-- No scripts, no external files: it opens from a mail attachment as it does
-- from the run folder.
local core = require("egrc.core")

local report = {}

local function escape(text)
  return (tostring(text):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

local width, height, pad = 560, 180, 36

-- One line chart of steps[i][key] against steps[i].step.
local function chart(steps, key, label, switch_step)
  local points, lo, hi, first, last = {}, math.huge, -math.huge, nil, nil
  for _, m in ipairs(steps) do
    local v = m[key]
    if type(v) == "number" and v == v then
      points[#points + 1] = { m.step, v }
      lo, hi = math.min(lo, v), math.max(hi, v)
      first, last = first or m.step, m.step
    end
  end
  if #points == 0 then return "" end
  if hi - lo < 1e-12 then lo, hi = lo - 0.5, hi + 0.5 end
  if last == first then last = first + 1 end
  local function x(step) return pad + (step - first) / (last - first) * (width - 2 * pad) end
  local function y(v) return height - pad + (v - lo) / (hi - lo) * (2 * pad - height) end
  local path = {}
  for i, p in ipairs(points) do path[i] = ("%s%.1f,%.1f"):format(i == 1 and "M" or "L", x(p[1]), y(p[2])) end
  local out = {
    ('<figure><figcaption>%s</figcaption><svg width="%d" height="%d" viewBox="0 0 %d %d" role="img">'):format(
      escape(label), width, height, width, height),
    ('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#ccc"/>'):format(pad, pad, width - 2 * pad,
      height - 2 * pad),
    ('<text x="4" y="%d" font-size="11">%.3g</text><text x="4" y="%d" font-size="11">%.3g</text>'):format(pad + 4, hi,
      height - pad, lo),
    ('<text x="%d" y="%d" font-size="11">step %d</text><text x="%d" y="%d" font-size="11" text-anchor="end">step %d</text>')
      :format(pad, height - 8, first, width - pad, height - 8, last),
    ('<path d="%s" fill="none" stroke="#1f6feb" stroke-width="1.5"/>'):format(table.concat(path, " ")),
  }
  if switch_step and switch_step >= first and switch_step <= last then
    out[#out + 1] = ('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#d1242f" stroke-dasharray="4 3"/>'):format(
      x(switch_step), pad, x(switch_step), height - pad)
    out[#out + 1] = ('<text x="%.1f" y="%d" font-size="11" fill="#d1242f">stage 2</text>'):format(x(switch_step) + 3,
      pad + 12)
  end
  out[#out + 1] = "</svg></figure>"
  return table.concat(out, "\n")
end

local function html_table(rows)
  local out = { "<table>" }
  for i, row in ipairs(rows) do
    local cells = {}
    for j, cell in ipairs(row) do
      local tag = i == 1 and "th" or "td"
      cells[j] = ("<%s>%s</%s>"):format(tag, escape(cell), tag)
    end
    out[#out + 1] = "<tr>" .. table.concat(cells) .. "</tr>"
  end
  out[#out + 1] = "</table>"
  return table.concat(out, "\n")
end

--- report.write(path, {title=, steps={metrics...}, switch_step=, charts={{key, label}...},
-- tables={{caption=, rows={{header...}, {cells...}...}}...}, notes={"..."}})
function report.write(path, r)
  local parts = {
    "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" .. escape(r.title) .. "</title>",
    "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}figure{display:inline-block;margin:0 1em 1em 0}"
      .. "figcaption{font-weight:600}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
      .. "padding:3px 8px;text-align:right}th{background:#f4f4f4}</style></head><body>",
    "<h1>" .. escape(r.title) .. "</h1>",
  }
  for _, note in ipairs(r.notes or {}) do parts[#parts + 1] = "<p>" .. escape(note) .. "</p>" end
  for _, t in ipairs(r.tables or {}) do
    parts[#parts + 1] = "<h2>" .. escape(t.caption) .. "</h2>"
    parts[#parts + 1] = html_table(t.rows)
  end
  if r.steps and #r.steps > 0 then
    parts[#parts + 1] = "<h2>Training</h2>"
    for _, c in ipairs(r.charts or {}) do parts[#parts + 1] = chart(r.steps, c[1], c[2], r.switch_step) end
  end
  parts[#parts + 1] = "</body></html>\n"
  core.fs.write(path, table.concat(parts, "\n"))
end

return report
