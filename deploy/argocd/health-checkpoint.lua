-- Argo CD health check for tollgate.dev/Checkpoint (resource.customizations.health.tollgate.dev_Checkpoint).
-- Plain Lua 5.1 (Argo CD runs gopher-lua): reads `obj`, returns hs = {status, message}.
-- Argo CD gives scripts from argocd-cm only the base and table libraries (no string, no
-- math) unless useOpenLibs is set: use nothing else (testdata/harness.lua enforces it).
--
--   Suspended    Pending or Escalated: a person has to decide (also: no phase yet)
--   Degraded     Rejected or Expired (nothing was applied), or a decision that admission
--                did not seal (DecisionVerified=False): nothing will ever act on it
--   Healthy      Approved; Superseded (finished: the Project changed and a new checkpoint
--                replaces this one, nobody has to do anything here)
-- Never Healthy while a person still has to decide. See docs/gitops.md.
local hs = {}

local function condition(status, type_)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local spec = obj.spec or {}
local status = obj.status or {}
local phase = status.phase or "Pending"

local function describe()
  local text = (spec.type or "Checkpoint")
  if spec.projectRef ~= nil and spec.projectRef.name ~= nil then
    text = text .. " for Project " .. spec.projectRef.name
  end
  local cost = spec.summary and spec.summary.cost
  if cost ~= nil and cost.delta ~= nil then
    local delta = tostring(cost.delta)
    if (tonumber(delta) or -1) >= 0 then
      delta = "+" .. delta
    end
    text = text .. ", cost " .. delta .. " USD/month"
  end
  return text
end

local function by_whom()
  local text = ""
  if status.decidedBy ~= nil then
    text = " by " .. status.decidedBy
  end
  if status.reason ~= nil and status.reason ~= "" then
    text = text .. ": " .. status.reason
  end
  return text
end

local verified = condition(status, "DecisionVerified")
if verified ~= nil and verified.status == "False" and phase ~= "Superseded" and phase ~= "Expired" then
  hs.status = "Degraded"
  hs.message = describe() .. ": decision not applied: " .. (verified.message or verified.reason or "not sealed by admission")
  return hs
end

if phase == "Pending" or phase == "Escalated" then
  local text = describe()
  if phase == "Escalated" then
    text = text .. ", escalated"
  end
  text = text .. ": awaiting a decision"
  if spec.sla ~= nil and spec.sla.respondBy ~= nil then
    text = text .. ", respond by " .. spec.sla.respondBy
  end
  hs.status = "Suspended"
  hs.message = text
  return hs
end

if phase == "Approved" then
  hs.status = "Healthy"
  hs.message = describe() .. ": approved" .. by_whom()
  return hs
end

if phase == "Rejected" then
  hs.status = "Degraded"
  hs.message = describe() .. ": rejected" .. by_whom() .. "; nothing was applied"
  return hs
end

if phase == "Expired" then
  local text = describe() .. ": expired without a decision"
  if spec.sla ~= nil and spec.sla.expireAt ~= nil then
    text = text .. " at " .. spec.sla.expireAt
  end
  hs.status = "Degraded"
  hs.message = text .. "; nothing was applied"
  return hs
end

if phase == "Superseded" then
  hs.status = "Healthy"
  hs.message = describe() .. ": superseded by a newer plan; nothing to decide here"
  return hs
end

-- A phase this script does not know: say so, and do not claim it is fine.
hs.status = "Unknown"
hs.message = describe() .. ": unknown phase " .. tostring(phase)
return hs
