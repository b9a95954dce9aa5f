-- A circuit breaker shared by a fleet: the in-memory breaker's state machine (`Machine` in
-- retry-runtime/src/breaker/machine.rs) step for step, as one atomic call on Redis's clock,
-- with its one half-open probe claimed fleet-wide.
--
-- KEYS[1]: the breaker's hash.
-- ARGV[1]: the step: 'admit', 'record', 'trip' or 'release'. 'release' takes nothing more;
-- the others take the rules in ARGV[2..7]: consecutive failures, failure rate, min calls,
-- window, cooldown, max cooldown (durations in microseconds). 'record' adds the outcome
-- (0 success, 1 failure, 2 neutral) and whether it was the probe (0/1); 'trip' the wait.
--
-- Reply: {state (0 closed, 1 open, 2 half-open), admit (0/1), probe (0/1),
--         open (0/1: open_for is meaningful), open_for, changed (0/1)}
--
-- The hash's fields (times from TIME in microseconds; 0 is "none"):
--   st     the state: 0 closed, 1 open, 2 half-open
--   upto   open until
--   claim  half-open: the probe's claim runs out then; a dead prober blocks no one for long
--   cons   failures since the last success
--   ws, wc, wf   the failure window: its start, its calls and its failures

local KEY = KEYS[1]

local CLOSED, OPEN, HALF_OPEN = 0, 1, 2
-- How long the hash outlives its last write, at least (milliseconds).
local TTL = 600000

local FIELDS = { 'st', 'upto', 'claim', 'cons', 'ws', 'wc', 'wf' }

if redis.call('TYPE', KEY).ok ~= 'hash' then
  -- Not a breaker's hash (corruption, or someone else's key): no state.
  redis.call('DEL', KEY)
end

local now = now_us()
local op = ARGV[1]

local rules = {
  consecutive = num(ARGV[2], 5),
  failure_rate = num(ARGV[3], 0.5),
  min_calls = num(ARGV[4], 20),
  window = math.min(math.max(num(ARGV[5], 60 * SECOND), 0), MAX_AHEAD),
  cooldown = math.min(math.max(num(ARGV[6], 30 * SECOND), 0), MAX_AHEAD),
  max_cooldown = math.min(math.max(num(ARGV[7], 900 * SECOND), 0), MAX_AHEAD),
}

local raw = redis.call('HMGET', KEY, unpack(FIELDS))
local s = {}
for i, f in ipairs(FIELDS) do
  s[f] = math.max(num(raw[i], 0), 0)
end
if s.st ~= OPEN and s.st ~= HALF_OPEN then s.st = CLOSED end
if s.upto > now + MAX_AHEAD then s.upto = now end
if s.claim > now + MAX_AHEAD then s.claim = 0 end
if s.ws > now then s.ws = 0 end

local dirty = false
local changed = 0

local function reset_counts()
  s.cons = 0
  s.ws, s.wc, s.wf = 0, 0, 0
end

local function open(cooldown)
  s.st = OPEN
  s.upto = now + cooldown
  s.claim = 0
  reset_counts()
  changed = 1
  dirty = true
end

local function close()
  s.st = CLOSED
  s.upto = 0
  s.claim = 0
  reset_counts()
  changed = 1
  dirty = true
end

local function claim_probe()
  -- The claim runs out after a cooldown, so a prober that died never settles and blocks no
  -- one for longer.
  s.claim = now + rules.cooldown
  dirty = true
end

-- May a call go? (Machine::admit)
local function admit()
  if s.st == CLOSED then
    return 1, 0
  elseif s.st == OPEN then
    if now < s.upto then
      return 0, 0
    end
    s.st = HALF_OPEN
    s.upto = 0
    changed = 1
    claim_probe()
    return 1, 1
  elseif s.claim > now then
    -- Half-open with a live probe: everyone else waits for its outcome.
    return 0, 0
  end
  claim_probe()
  return 1, 1
end

-- An outcome while closed (Machine::record_closed).
local function record_closed(outcome)
  if s.ws > 0 and now - s.ws >= rules.window then
    s.ws, s.wc, s.wf = 0, 0, 0
    dirty = true
  end
  if outcome == 2 then
    -- The caller's fault: nothing counted.
    return
  elseif outcome == 0 then
    if s.cons > 0 or s.ws > 0 then dirty = true end
    s.cons = 0
    if s.ws > 0 then s.wc = s.wc + 1 end
    return
  end
  dirty = true
  s.cons = s.cons + 1
  if s.ws == 0 then s.ws = now end
  s.wc = s.wc + 1
  s.wf = s.wf + 1
  if s.cons >= rules.consecutive then
    open(rules.cooldown)
  elseif s.wc >= rules.min_calls and s.wf / s.wc >= rules.failure_rate then
    open(rules.cooldown)
  end
end

-- An attempt's outcome (Machine::record): a probe's settles a half-open breaker; outcomes of
-- attempts let through before it opened change nothing.
local function record(outcome, probe)
  if s.st == HALF_OPEN and probe then
    if outcome == 1 then
      open(rules.cooldown)
    else
      close()
    end
  elseif s.st == CLOSED then
    record_closed(outcome)
  end
end

-- A server asked for a wait over the policy's cap (Machine::trip): open for it, at most
-- max_cooldown, unless already open for longer.
local function trip(wait)
  wait = math.min(wait, rules.max_cooldown)
  if s.st == OPEN and s.upto >= now + wait then
    return
  end
  open(wait)
end

local admitted, probe = 0, 0
if op == 'admit' then
  admitted, probe = admit()
elseif op == 'record' then
  local outcome = num(ARGV[8], 1)
  if outcome ~= 0 and outcome ~= 2 then outcome = 1 end
  record(outcome, num(ARGV[9], 0) == 1)
elseif op == 'trip' then
  trip(math.min(math.max(num(ARGV[8], 0), 0), MAX_AHEAD))
elseif op == 'release' then
  -- The probe was dropped before it settled: the next caller may probe.
  if s.st == HALF_OPEN and s.claim > 0 then
    s.claim = 0
    dirty = true
  end
else
  return redis.error_reply('llm-retry breaker: unknown step')
end

if dirty then
  write_fields(KEY, FIELDS, s)
  if op == 'release' then
    -- No rules came with it: keep the key at least as long as a new one.
    if redis.call('PTTL', KEY) < TTL then redis.call('PEXPIRE', KEY, TTL) end
  else
    -- Long enough to outlive the open state and the failure window.
    local ms = math.max(TTL, (rules.window + math.max(s.upto - now, 0) + rules.cooldown) / 1000 + 1000)
    redis.call('PEXPIRE', KEY, math.ceil(ms))
  end
end

local is_open, open_for = 0, 0
if s.st == OPEN then
  is_open = 1
  open_for = math.floor(math.max(s.upto - now, 0))
end
return { s.st, admitted, probe, is_open, open_for, changed }
