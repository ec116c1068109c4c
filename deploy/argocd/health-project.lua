-- Argo CD health check for tollgate.dev/Project (resource.customizations.health.tollgate.dev_Project).
-- Plain Lua 5.1 (Argo CD runs gopher-lua): reads `obj`, returns hs = {status, message}.
-- Argo CD gives scripts from argocd-cm only the base and table libraries (no string, no
-- math) unless useOpenLibs is set: use nothing else (testdata/harness.lua enforces it).
--
--   Progressing  the controller has not observed the current spec yet, or it is planning,
--                applying or destroying and nobody has to do anything
--   Suspended    a Checkpoint awaits a person's decision (or spec.suspend is true)
--   Degraded     failed, rejected, stalled, or a decision the controller will not act on
--   Healthy      Ready=True: the approved plan is applied and nothing is pending
-- Never Healthy while a person still has to decide something. See docs/gitops.md.
local hs = {}

local function condition(status, type_)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

-- The first non-empty message among the conditions named, in order.
local function message_of(status, types)
  for _, t in ipairs(types) do
    local c = condition(status, t)
    if c ~= nil and c.message ~= nil and c.message ~= "" then
      return c.message
    end
  end
  return nil
end

local function join(parts)
  return table.concat(parts, ": ")
end

-- Reasons that mean "a person or an operator must fix something", whichever condition
-- carries them (the controller sets the same reason on Ready, AwaitingApproval, Stalled…).
local degraded_reasons = {
  DecisionUnverified = true, -- a decision admission did not seal: nothing will act on it
  DestroyRejected = true,    -- deletion waits until deletionPolicy changes or a new decision
  DestroyExpired = true,     -- nobody decided the destroy in time; deletion waits for a re-plan
  StateMissing = true,       -- Terraform state is gone while infrastructure may exist
  PlanTampered = true,       -- the saved plan no longer matches the approved digest
}

local status = obj.status
local generation = obj.metadata and obj.metadata.generation

if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for tollgate to plan this Project"
  return hs
end

-- The generation this status describes: status.observedGeneration, or the Ready condition's
-- when newer (tollgate stamps every condition with the generation it saw, also when it only
-- suspends a Project, where status.observedGeneration stays at the last planned one).
local observed = status.observedGeneration
local ready = condition(status, "Ready")
if ready ~= nil and ready.observedGeneration ~= nil and (observed == nil or ready.observedGeneration > observed) then
  observed = ready.observedGeneration
end
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for tollgate to observe generation " .. tostring(generation)
  return hs
end

local phase = status.phase

-- Degraded first: a fault wins over "waiting", so a broken install never hides as Suspended.
local stalled = condition(status, "Stalled")
if phase == "Failed" or is_true(stalled) then
  hs.status = "Degraded"
  hs.message = join({ phase, message_of(status, { "Stalled", "Ready" }) or "failed" })
  return hs
end
if phase == "Rejected" then
  hs.status = "Degraded"
  hs.message = join({ "Rejected", message_of(status, { "Ready" }) or "the plan was rejected" })
  return hs
end
if phase == "Expired" then
  hs.status = "Degraded"
  hs.message = join({ "Expired", message_of(status, { "Ready" }) or "nobody decided in time; nothing was applied" })
  return hs
end
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if is_true(c) and degraded_reasons[c.reason] then
      hs.status = "Degraded"
      hs.message = join({ c.reason, c.message or "" })
      return hs
    end
  end
end

local awaiting = condition(status, "AwaitingApproval")
if phase == "AwaitingApproval" or is_true(awaiting) then
  local parts = {}
  local checkpoint = status.checkpointRef and status.checkpointRef.name
  if checkpoint ~= nil then
    table.insert(parts, "Awaiting approval of Checkpoint " .. checkpoint)
  else
    table.insert(parts, "Awaiting approval")
  end
  if status.cost ~= nil and status.cost.delta ~= nil then
    local currency = status.cost.currency or "USD"
    local delta = tostring(status.cost.delta)
    if (tonumber(delta) or -1) >= 0 then
      delta = "+" .. delta
    end
    parts[1] = parts[1] .. " (cost " .. delta .. " " .. currency .. "/month)"
  end
  local why = message_of(status, { "AwaitingApproval", "Ready" })
  if why ~= nil then
    table.insert(parts, why)
  end
  hs.status = "Suspended"
  hs.message = join(parts)
  return hs
end

if phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: tollgate plans and applies nothing"
  return hs
end

if phase == "Planning" or phase == "Applying" or phase == "Destroying" then
  hs.status = "Progressing"
  hs.message = join({ phase, message_of(status, { "Reconciling", "Ready" }) or "" })
  return hs
end

if phase == "Ready" and is_true(condition(status, "Ready")) then
  hs.status = "Healthy"
  hs.message = message_of(status, { "Ready" }) or "Ready"
  return hs
end

hs.status = "Progressing"
hs.message = "Phase " .. tostring(phase) .. ": " .. (message_of(status, { "Ready" }) or "waiting for tollgate")
return hs
