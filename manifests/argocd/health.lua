-- Argo CD health check for cron.openclaw.io/OpenClawCronJob.
-- Progressing until the operator has observed the current generation; Degraded when the job
-- is not Ready (invalid spec, missing Secret), paused by its failure policy (status.state
-- Paused, until `kubectl openclaw resume` or a spec change) or not Healthy (failing runs);
-- Suspended when spec.suspend is set; Healthy otherwise.
local hs = {}

local function condition(status, kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.observedGeneration == nil
    or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the latest spec"
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(ready, "Not ready")
  return hs
end

local paused = condition(status, "Paused")
if status.state == "Paused" or (paused ~= nil and paused.status == "True") then
  hs.status = "Degraded"
  hs.message = "Paused: " .. (paused ~= nil and describe(paused, "consecutive failures") or "consecutive failures")
  return hs
end

local healthy = condition(status, "Healthy")
if healthy ~= nil and healthy.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(healthy, "Runs are failing")
  return hs
end

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Suspended (spec.suspend)"
  return hs
end

hs.status = "Healthy"
if status.nextRunTime ~= nil then
  hs.message = "Next run " .. status.nextRunTime
elseif status.state ~= nil then
  hs.message = status.state
end
return hs
