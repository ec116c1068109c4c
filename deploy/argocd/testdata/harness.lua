-- Test harness (not shipped to Argo CD): runs a health script on one fixture the way Argo CD
-- does, with the object as the global `obj`, the libraries Argo CD opens and nothing else,
-- and the script's return value as the result.
--
--   lua5.1 harness.lua SCRIPT.lua FIXTURE.json   -- prints "STATUS<TAB>MESSAGE"
--
-- Includes a small JSON decoder (Lua 5.1 has none): objects, arrays, strings with escapes
-- (\uXXXX to UTF-8, surrogate pairs), numbers, true, false, null (as nil, like Argo CD).

local function decode(text)
  local pos = 1

  local function fail(what)
    error(string.format("JSON: %s at byte %d", what, pos), 0)
  end

  local function skip()
    pos = string.find(text, "[^ \t\r\n]", pos) or (#text + 1)
  end

  local function utf8(code)
    if code < 0x80 then
      return string.char(code)
    elseif code < 0x800 then
      return string.char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40)
    elseif code < 0x10000 then
      return string.char(0xE0 + math.floor(code / 0x1000), 0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
    end
    return string.char(0xF0 + math.floor(code / 0x40000), 0x80 + math.floor(code / 0x1000) % 0x40,
      0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
  end

  local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

  local value

  local function str()
    pos = pos + 1 -- opening quote
    local parts = {}
    while true do
      local c = string.sub(text, pos, pos)
      if c == "" then
        fail("unterminated string")
      elseif c == '"' then
        pos = pos + 1
        return table.concat(parts)
      elseif c == "\\" then
        local e = string.sub(text, pos + 1, pos + 1)
        if e == "u" then
          local code = tonumber(string.sub(text, pos + 2, pos + 5), 16) or fail("bad \\u escape")
          pos = pos + 6
          if code >= 0xD800 and code <= 0xDBFF and string.sub(text, pos, pos + 1) == "\\u" then
            local low = tonumber(string.sub(text, pos + 2, pos + 5), 16) or fail("bad \\u escape")
            code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
            pos = pos + 6
          end
          table.insert(parts, utf8(code))
        else
          table.insert(parts, escapes[e] or fail("bad escape"))
          pos = pos + 2
        end
      else
        local stop = string.find(text, '["\\]', pos) or fail("unterminated string")
        table.insert(parts, string.sub(text, pos, stop - 1))
        pos = stop
      end
    end
  end

  local function array()
    pos = pos + 1
    local out = {}
    skip()
    if string.sub(text, pos, pos) == "]" then
      pos = pos + 1
      return out
    end
    while true do
      out[#out + 1] = value()
      skip()
      local c = string.sub(text, pos, pos)
      pos = pos + 1
      if c == "]" then
        return out
      elseif c ~= "," then
        fail("expected , or ]")
      end
    end
  end

  local function object()
    pos = pos + 1
    local out = {}
    skip()
    if string.sub(text, pos, pos) == "}" then
      pos = pos + 1
      return out
    end
    while true do
      skip()
      if string.sub(text, pos, pos) ~= '"' then
        fail("expected a key")
      end
      local key = str()
      skip()
      if string.sub(text, pos, pos) ~= ":" then
        fail("expected :")
      end
      pos = pos + 1
      out[key] = value()
      skip()
      local c = string.sub(text, pos, pos)
      pos = pos + 1
      if c == "}" then
        return out
      elseif c ~= "," then
        fail("expected , or }")
      end
    end
  end

  value = function()
    skip()
    local c = string.sub(text, pos, pos)
    if c == "{" then
      return object()
    elseif c == "[" then
      return array()
    elseif c == '"' then
      return str()
    elseif string.sub(text, pos, pos + 3) == "true" then
      pos = pos + 4
      return true
    elseif string.sub(text, pos, pos + 4) == "false" then
      pos = pos + 5
      return false
    elseif string.sub(text, pos, pos + 3) == "null" then
      pos = pos + 4
      return nil
    end
    local number = string.match(text, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if number == nil or number == "" then
      fail("unexpected character " .. c)
    end
    pos = pos + #number
    return tonumber(number) or fail("bad number " .. number)
  end

  local result = value()
  skip()
  if pos <= #text then
    fail("trailing text")
  end
  return result
end

local script, fixture = arg[1], arg[2]
if script == nil or fixture == nil then
  io.stderr:write("usage: lua5.1 harness.lua SCRIPT.lua FIXTURE.json\n")
  os.exit(2)
end
local file = assert(io.open(fixture, "rb"))
local text = file:read("*a")
file:close()

-- The sandbox Argo CD gives scripts from argocd-cm (util/lua/lua.go, runLua: SkipOpenLibs,
-- then only package, base, table and a "safe" os): no string or math library, and so no
-- string methods either ("x"):sub(). The script sees only these globals.
local sandbox = { obj = decode(text), table = table, os = { time = os.time, date = os.date, clock = os.clock } }
for _, name in ipairs({ "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "rawequal",
  "rawget", "rawset", "select", "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall", "_VERSION" }) do
  sandbox[name] = _G[name]
end
sandbox._G = sandbox
local chunk = assert(loadfile(script))
setfenv(chunk, sandbox)
local string_methods = getmetatable("").__index
getmetatable("").__index = nil
local ok, hs = pcall(chunk)
getmetatable("").__index = string_methods
if not ok then
  io.stderr:write(script .. " failed on " .. fixture .. ": " .. tostring(hs) .. "\n")
  os.exit(1)
end
if type(hs) ~= "table" or type(hs.status) ~= "string" then
  io.stderr:write(script .. " returned no hs.status for " .. fixture .. "\n")
  os.exit(1)
end
io.write(hs.status, "\t", tostring(hs.message), "\n")
