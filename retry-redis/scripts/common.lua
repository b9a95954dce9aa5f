-- What both scripts share, put in front of each (retry-redis/src/pacer.rs and breaker.rs
-- join them): Redis runs each script alone, so the shared part is sent with each.

-- Microseconds in a second: every time and duration in the scripts is in microseconds.
local SECOND = 1000000
-- A stored time further ahead than this is corruption, not a queue: the store caps every
-- duration it sends at a week.
local MAX_AHEAD = 8 * 24 * 3600 * SECOND

-- A number from an argument or a field. Anything else (missing, garbage, NaN, infinities)
-- is `default`: a corrupted hash is no state, never an error on every call.
local function num(x, default)
  local v = tonumber(x)
  if v == nil or v ~= v or v == math.huge or v == -math.huge then
    return default
  end
  return v
end

-- Now, on Redis's clock: the one clock every worker of the fleet reads.
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * SECOND + tonumber(t[2])
end

-- Writes `s`'s `fields` to the hash `key` in one HSET. (Redis turns these numbers into strings
-- with full precision; `..` would not.)
local function write_fields(key, fields, s)
  local args = {}
  for _, f in ipairs(fields) do
    args[#args + 1] = f
    args[#args + 1] = s[f]
  end
  redis.call('HSET', key, unpack(args))
end
