-- One endpoint's pacer, shared by a fleet: an admission, or what a response said, as one
-- atomic step. It runs on Redis's clock (TIME): only durations come in and go out, so the
-- workers' clocks never need to agree.
--
-- KEYS: 1 the state hash, 2 the in-flight leases (sorted set: lease id -> expiry),
--       3 the lease counter, 4 the heartbeats (sorted set: worker id -> last seen).
-- ARGV[1] is the operation; the rest is the operation's (see each below). Times and
-- durations are microseconds, rates per second, tokens counts.
--
-- Replies are small arrays of integers:
--   admit: {0, wait, lease (0: none), rate in milli-requests/s (0: unknown), fleet}   go
--          {1, wait}                                                               refused
--          {2, retry_in, fleet}                                                    busy
--   throttle, limits, tokens: {0}
--
-- The state hash's fields (times from TIME; 0 is "never"):
--   src       where the request rate comes from: 0 none yet (probing), 1 the provider's
--             headers, 2 configured, 3 learned from throttles
--   rate      the request rate when src is 1 or 2
--   tat       when the next request may go (GCRA's theoretical arrival time)
--   pause     no request goes before this
--   t0        the fleet's first admission: probing doubles from it
--   cut_at, cut_rate, w_max, probing   the last cut: when, to what, from what, and whether
--             it was a guess (then the rate doubles as probing does until the next throttle)
--   sv, sa, sn, ss   admissions, smoothed: value, when, count, since
--   hv, ha    throttles, smoothed: value, when
--   trate     the token rate (0: tokens are not paced)
--   ttat      when the token bucket is full again

local STATE, LEASES, COUNTER, WORKERS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

-- The shortest time between two cuts: the throttles of one overshoot count once.
local HOLD = SECOND / 2
-- The smoothed rates' time constant, as the in-memory limiter's.
local TAU = SECOND
-- The token bucket holds a minute of tokens, as the providers' windows do.
local TOKEN_WINDOW = 60 * SECOND
-- A worker not heard from for this long has left the fleet.
local HEARTBEAT = 5 * SECOND
-- The longest a busy caller is told to wait before asking again: leases end often.
local BUSY_RETRY = 25000
-- How long keys outlive their last write, in milliseconds: a fleet that dies leaves
-- nothing behind that would hold the next one.
local STATE_TTL = 600000
local WORKERS_TTL = 60000
-- The largest integer a reply carries exactly.
local MAX_EXACT = 2 ^ 53

local FIELDS = { 'src', 'rate', 'tat', 'pause', 't0', 'cut_at', 'cut_rate', 'w_max', 'probing',
  'sv', 'sa', 'sn', 'ss', 'hv', 'ha', 'trate', 'ttat' }


local function clamp(x, lo, hi)
  if x ~= x or x < lo then
    return lo
  end
  if x > hi then
    return hi
  end
  return x
end


-- A key of the wrong type (corruption, or someone else's key) would fail every call: drop it.
local function expect_type(key, kind)
  local t = redis.call('TYPE', key).ok
  if t ~= kind and t ~= 'none' then
    redis.call('DEL', key)
  end
end

-- Extends a key's life to at least `ms`, never shortens it.
local function keep_for(key, ms)
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, math.ceil(ms))
  end
end

-- The limiter's settings, sent with each call from ARGV[i] on, made safe to compute with.
local function tuning(i)
  local t = {
    initial = num(ARGV[i], 10),
    beta = num(ARGV[i + 1], 0.8),
    scale = num(ARGV[i + 2], 0.2),
    min_rate = num(ARGV[i + 3], 0.5),
    max_rate = num(ARGV[i + 4], 1000000),
    rps = math.max(num(ARGV[i + 5], 0), 0),
    tps = math.max(num(ARGV[i + 6], 0), 0),
    max_pause = clamp(num(ARGV[i + 7], 120 * SECOND), 0, MAX_AHEAD),
  }
  if not (t.beta > 0 and t.beta <= 1) then t.beta = 0.8 end
  if not (t.scale > 0) then t.scale = 0.2 end
  t.min_rate = clamp(t.min_rate, 0.001, 1e9)
  t.max_rate = clamp(t.max_rate, t.min_rate, 1e9)
  t.initial = clamp(t.initial, t.min_rate, t.max_rate)
  -- A configured rate is the ceiling of every rate, learned or read from headers.
  t.ceiling = t.max_rate
  if t.rps > 0 then
    t.ceiling = clamp(t.rps, t.min_rate, t.max_rate)
  end
  return t
end

local function load(now)
  local raw = redis.call('HMGET', STATE, unpack(FIELDS))
  local s = {}
  for i, f in ipairs(FIELDS) do
    s[f] = math.max(num(raw[i], 0), 0)
  end
  if s.src ~= 1 and s.src ~= 2 and s.src ~= 3 then s.src = 0 end
  if s.src ~= 0 and s.src ~= 3 and not (s.rate > 0) then s.src = 0 end
  if s.src == 3 and not (s.w_max > 0 and s.cut_rate > 0) then s.src = 0 end
  if s.probing ~= 1 then s.probing = 0 end
  for _, f in ipairs({ 'tat', 'pause', 'cut_at', 'ttat' }) do
    if s[f] > now + MAX_AHEAD then s[f] = 0 end
  end
  for _, f in ipairs({ 't0', 'sa', 'ss', 'ha' }) do
    if s[f] > now then s[f] = 0 end
  end
  return s
end

local function save(s, now)
  write_fields(STATE, FIELDS, s)
  -- Ten minutes after the last touch, or a minute after everything reserved has gone.
  local ahead = math.max(s.tat, s.ttat, s.pause) - now
  redis.call('PEXPIRE', STATE, math.ceil(math.max(STATE_TTL, ahead / 1000 + 60000)))
end

-- Smoothed rates (events per second over about TAU), as `Ewma` in the in-memory limiter.
local function decayed(value, at, t)
  return value * math.exp(-math.max(t - at, 0) / TAU)
end

local function admissions_span(s, t)
  if s.ss == 0 then return 0 end
  return math.max(t - s.ss, 0)
end

-- The correction for a start less than TAU ago (the smoothing starts from zero).
local function young(s, t, rate)
  local span = admissions_span(s, t)
  if span < 0.05 * SECOND then return rate end
  return rate / (1 - math.exp(-span / TAU))
end

-- The smoothed rates are read as of the last admission, not decayed to t: a spell with no
-- admissions at all (a pause, a store outage, throttle reports that Redis runs only once it
-- answers again) says nothing about the rate the provider takes, and must not read as zero.
local function as_of(s, t)
  if s.sa > 0 then return math.min(t, s.sa) end
  return t
end

local function sent(s, t)
  t = as_of(s, t)
  return young(s, t, decayed(s.sv, s.sa, t))
end

-- What the provider admitted: admissions less throttles.
local function admitted(s, t)
  t = as_of(s, t)
  return math.max(young(s, t, decayed(s.sv, s.sa, t) - decayed(s.hv, s.ha, t)), 0)
end

-- Whether the admissions have been smoothed over at least TAU.
local function settled(s)
  return s.ss > 0 and s.sa - s.ss >= TAU
end

-- The learned rate at t (learn.rs's `climb`): back linearly from the cut to the rate that was
-- throttled, then beyond it slowly, faster the longer nothing is throttled; past the rate that
-- was throttled, never above twice what the provider admitted (as measured `now`: a slot
-- reserved ahead of time must not see the smoothing decay to the future, nor a quiet spell,
-- such as a pause or a store outage, hold the rate below the one last throttled). A guess (a
-- cut while probing) doubles every half second instead.
local function climb(s, t, tu, now)
  local since = math.max(t - s.cut_at, 0) / SECOND
  if s.probing == 1 then
    return s.cut_rate * math.exp(math.min(since, 60) * 2 * math.log(2))
  end
  local slope = tu.scale * s.w_max
  local back = (s.w_max - s.cut_rate) / math.max(slope, 1e-300)
  local r
  if since <= back then
    r = s.cut_rate + slope * since
  else
    local x = math.min(since - back, 60)
    r = s.w_max + slope * (0.1 * x + 0.25 * x * x * x)
  end
  if settled(s) then
    r = math.min(r, math.max(2 * admitted(s, math.min(t, now)), s.w_max))
  end
  return r
end

-- The request rate in force at t, and whether it is known (rather than probed).
local function rate_at(s, t, tu, now)
  local r
  if s.src == 1 or s.src == 2 then
    r = s.rate
  elseif s.src == 3 then
    r = climb(s, t, tu, now)
  else
    -- Probing: doubling every half second from the fleet's first admission.
    local since = 0
    if s.t0 > 0 then since = math.max(t - s.t0, 0) / SECOND end
    r = tu.initial * 2 ^ (math.min(since, 60) / 0.5)
  end
  return clamp(r, tu.min_rate, tu.ceiling), s.src ~= 0
end

-- A new token rate keeps what is banked, at most the new room; a first one starts full.
local function set_token_rate(s, t, r)
  if s.trate <= 0 then
    s.trate = r
    s.ttat = t
    return
  end
  local banked = s.trate * (TOKEN_WINDOW - math.max(s.ttat - t, 0)) / SECOND
  local room = r * TOKEN_WINDOW / SECOND
  s.trate = r
  s.ttat = t + (room - math.min(banked, room)) / r * SECOND
end

-- The caller's configuration, over what the state holds.
local function configure(s, t, tu)
  if tu.rps > 0 and s.src ~= 1 then
    s.src = 2
    s.rate = tu.ceiling
  end
  if tu.tps > 0 and (s.trate <= 0 or s.trate > tu.tps) then
    set_token_rate(s, t, tu.tps)
  end
end

local function pause_for(s, t, wait, tu)
  s.pause = math.max(s.pause, t + math.min(wait, tu.max_pause))
  -- Nothing banked across a pause.
  s.tat = math.max(s.tat, s.pause)
end

-- This worker is alive; the fleet is the workers heard from in the last HEARTBEAT.
local function heartbeat(worker, now)
  redis.call('ZADD', WORKERS, now, worker)
  redis.call('ZREMRANGEBYSCORE', WORKERS, '-inf', now - HEARTBEAT)
  redis.call('PEXPIRE', WORKERS, WORKERS_TTL)
  return math.max(redis.call('ZCARD', WORKERS), 1)
end

-- A new lease id. A counter that is not a number (corruption) starts again above the
-- leases still held, so that no two live leases share an id.
local function next_lease()
  local id = redis.pcall('INCR', COUNTER)
  if type(id) ~= 'number' then
    id = 1
    for _, member in ipairs(redis.call('ZRANGE', LEASES, 0, -1)) do
      id = math.max(id, num(member, 0) + 1)
    end
    redis.call('SET', COUNTER, id)
  end
  return id
end

-- ARGV: 'admit', worker, tokens, max_wait (-1: none), lease ttl (0: none), max_in_flight
-- (0: none), then the tuning.
local function admit(now)
  local worker = ARGV[2]
  local tokens = clamp(num(ARGV[3], 0), 0, 1e15)
  local max_wait = num(ARGV[4], -1)
  local lease_ttl = clamp(num(ARGV[5], 0), 0, MAX_AHEAD)
  local max_in_flight = num(ARGV[6], 0)
  local tu = tuning(7)

  local fleet = heartbeat(worker, now)
  if lease_ttl > 0 then
    -- A dead worker's leases expire (and uncapped leases do not pile up).
    redis.call('ZREMRANGEBYSCORE', LEASES, '-inf', now)
    if max_in_flight > 0 and redis.call('ZCARD', LEASES) >= max_in_flight then
      local first = redis.call('ZRANGE', LEASES, 0, 0, 'WITHSCORES')
      local retry_in = clamp(num(first[2], now + BUSY_RETRY) - now, 1000, BUSY_RETRY)
      return { 2, math.floor(retry_in), fleet }
    end
  end

  local s = load(now)
  configure(s, now, tu)
  if s.t0 == 0 then s.t0 = now end
  local rate, known = rate_at(s, now, tu, now)
  -- Requests: strict spacing at the rate (a burst of 1), behind any pause.
  local send = math.max(now, s.pause, s.tat)
  -- Tokens, when a token rate is known: the bucket is full at ttat and holds a minute's
  -- worth, so `cost` tokens are there at ttat' - TOKEN_WINDOW.
  local full, token_send = s.ttat, now
  if s.trate > 0 and tokens > 0 then
    local cost = math.min(tokens, s.trate * TOKEN_WINDOW / SECOND)
    full = math.max(s.ttat, now) + cost / s.trate * SECOND
    token_send = full - TOKEN_WINDOW
  end
  local wait = math.max(send, token_send) - now
  if max_wait >= 0 and wait > max_wait then
    -- Nothing reserved: the attempt gives up, and those behind it are not pushed back.
    return { 1, math.floor(wait) }
  end

  -- Two buckets, each with its own schedule: an attempt that waits for tokens does not
  -- push back the request slots of those behind it (a token correction may let them go
  -- first).
  -- The next slot is one interval on at the rate in force at this slot's own time, not now:
  -- a rate that climbs (probing, or back after a cut) spaces the slots reserved ahead of
  -- time as it will be then, so a queue made while the rate was low does not hold it low.
  s.tat = send + SECOND / rate_at(s, send, tu, now)
  s.ttat = full
  if s.ss == 0 then s.ss = now end
  if s.sa > 0 and now - s.sa > TAU then
    -- No admission for a while (a pause, an outage of this store while the workers paced
    -- alone): the spell says nothing of the rate the fleet sends at, so it does not decay.
    s.sv = s.sv + SECOND / TAU
  else
    s.sv = decayed(s.sv, s.sa, now) + SECOND / TAU
  end
  s.sa = now
  s.sn = s.sn + 1
  save(s, now)

  local lease = 0
  if lease_ttl > 0 then
    lease = next_lease()
    redis.call('ZADD', LEASES, now + lease_ttl, lease)
    -- The leases live as long as the longest of them; the counter at least as long.
    keep_for(LEASES, lease_ttl / 1000 + 1000)
    keep_for(COUNTER, math.max(STATE_TTL, lease_ttl / 1000 + 1000))
  end
  local milli = 0
  if known then milli = math.floor(math.min(rate * 1000 + 0.5, MAX_EXACT)) end
  return { 0, math.floor(wait), lease, milli, fleet }
end

-- A cut: learn.rs's `cut`, from `base`.
local function cut_to(s, t, base, tu)
  base = clamp(base, tu.min_rate, tu.ceiling)
  s.w_max = base
  s.cut_rate = base * tu.beta
  s.cut_at = t
  s.probing = 0
  s.src = 3
end

-- ARGV: 'throttle', retry_after (-1: none), then the tuning.
local function throttle(now)
  local retry_after = num(ARGV[2], -1)
  local tu = tuning(3)
  local s = load(now)
  configure(s, now, tu)
  s.hv = decayed(s.hv, s.ha, now) + SECOND / TAU
  s.ha = now
  local cut = false
  -- Within the hold it is the same overshoot: the pause is all it adds. A rate that is
  -- given (headers, configuration) is not cut.
  if now - s.cut_at >= HOLD and (s.src == 0 or s.src == 3) then
    if s.src == 0 then
      -- The first rate: what the fleet was sending, cut. Over less than the hold that is a
      -- guess (a burst over no time), which then climbs as probing does.
      local short = admissions_span(s, now) < HOLD
      local base = sent(s, now)
      if short then base = s.sn / (HOLD / SECOND) end
      if not (base > 0) then base = tu.min_rate end
      cut_to(s, now, base, tu)
      if short then s.probing = 1 end
    else
      -- From the rate in force, or from what was admitted if less, but never below beta of
      -- the rate in force: the admitted rate lags a rate that was climbing.
      local r = rate_at(s, now, tu, now)
      local base = r
      if settled(s) then
        base = math.max(math.min(r, admitted(s, now)), tu.beta * r)
      end
      cut_to(s, now, base, tu)
    end
    cut = true
  end
  if retry_after >= 0 then
    pause_for(s, now, retry_after, tu)
  end
  if cut and s.pause > s.cut_at then
    -- The climb starts when sending does, and throttles of attempts sent before the pause
    -- ended are the same overshoot.
    s.cut_at = s.pause
  end
  save(s, now)
  return { 0 }
end

-- ARGV: 'limits', requests/s (0: none), tokens/s (0: none), remaining tokens (-1: none),
-- pause (-1: none), then the tuning.
local function limits(now)
  local rps = num(ARGV[2], 0)
  local tps = num(ARGV[3], 0)
  local remaining = num(ARGV[4], -1)
  local pause = num(ARGV[5], -1)
  local tu = tuning(6)
  local s = load(now)
  configure(s, now, tu)
  if rps > 0 then
    s.src = 1
    s.rate = clamp(rps, tu.min_rate, tu.ceiling)
  end
  if tps > 0 then
    if tu.tps > 0 then tps = math.min(tps, tu.tps) end
    set_token_rate(s, now, tps)
  end
  if remaining >= 0 and s.trate > 0 then
    -- At most `remaining` banked: the bucket is full no sooner than the rest of it fills.
    local room = s.trate * TOKEN_WINDOW / SECOND
    s.ttat = math.max(s.ttat, now + (room - math.min(remaining, room)) / s.trate * SECOND)
  end
  if pause >= 0 then
    pause_for(s, now, pause, tu)
  end
  save(s, now)
  return { 0 }
end

-- ARGV: 'abandon', slots. Slots a worker reserved and will not use (its attempts ask again
-- after a throttle it met): the schedule takes them back, at the rate in force, never to before
-- now or the pause. Slots of other workers after them may then share a moment with new ones:
-- over the window the fleet still sends at the rate, rather than leave the gaps unused.
local function abandon(now)
  local slots = clamp(num(ARGV[2], 0), 0, 1e6)
  local tu = tuning(3)
  local s = load(now)
  if slots == 0 or s.tat <= now then
    return { 0 }
  end
  local rate = rate_at(s, now, tu, now)
  s.tat = math.max(s.tat - slots * SECOND / rate, now, s.pause)
  save(s, now)
  return { 0 }
end

-- ARGV: 'tokens', delta (used minus declared). The attempts behind pay for (or get back)
-- the difference.
local function tokens(now)
  local delta = clamp(num(ARGV[2], 0), -1e15, 1e15)
  local s = load(now)
  if s.trate <= 0 or delta == 0 then
    return { 0 }
  end
  -- Never more than full.
  s.ttat = math.max(math.max(s.ttat, now) + delta / s.trate * SECOND, now)
  save(s, now)
  return { 0 }
end

expect_type(STATE, 'hash')
expect_type(LEASES, 'zset')
expect_type(COUNTER, 'string')
expect_type(WORKERS, 'zset')

local now = now_us()
local op = ARGV[1]
if op == 'admit' then
  return admit(now)
elseif op == 'throttle' then
  return throttle(now)
elseif op == 'limits' then
  return limits(now)
elseif op == 'tokens' then
  return tokens(now)
elseif op == 'abandon' then
  return abandon(now)
end
return redis.error_reply('llm-retry pacer: unknown operation')
