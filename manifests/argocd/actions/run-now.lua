-- Trigger one manual run: the operator acts on every new value of cron.openclaw.io/run-now.
local os = require("os")
local key = "cron.openclaw.io/run-now"
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
local value = os.date("!%Y-%m-%dT%H:%M:%SZ")
local previous = obj.metadata.annotations[key]
if previous ~= nil and string.sub(previous, 1, string.len(value)) == value then
  -- A second click within the same second still has to be a new value.
  local n = tonumber(string.match(previous, "%-(%d+)$") or "0") or 0
  value = value .. "-" .. tostring(n + 1)
end
obj.metadata.annotations[key] = value
return obj
