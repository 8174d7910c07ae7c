-- A 429 from the vendor, shared with every worker on every host through the tenant's hash.
-- With Retry-After: hold the whole tenant until then (the limiter starts no slot before it).
-- Without: multiplicative decrease of the tenant's effective rate, at most once per cooldown
-- (one burst of 429s is one signal), never below the floor; the limiter adds it back slowly.
-- KEYS: tenant hash   ARGV: retry after µs (0: none), limit/s, factor, floor/s, cooldown µs
-- Returns {effective rate, hold until µs (0: none), 1 if this call changed anything}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- 429s per minute, this one and the one before ('GET /v1/tenants': 429s in the last minute)
local minute = math.floor(tonumber(t[1]) / 60)
redis.call('HINCRBY', KEYS[1], 't429', 1)
local seen = tonumber(redis.call('HGET', KEYS[1], 'm429') or '0')
if seen == minute then
  redis.call('HINCRBY', KEYS[1], 'c429', 1)
else
  local before = 0
  if seen == minute - 1 then before = tonumber(redis.call('HGET', KEYS[1], 'c429') or '0') end
  redis.call('HSET', KEYS[1], 'm429', minute, 'c429', 1, 'p429', before)
end
local after, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local f = redis.call('HMGET', KEYS[1], 'hold', 'eff', 'dec')
local hold, eff = tonumber(f[1] or '0'), tonumber(f[2]) or limit
local changed = 0
if after > 0 then
  if now + after > hold then
    hold = now + after
    redis.call('HSET', KEYS[1], 'hold', string.format('%.0f', hold))
    changed = 1
  end
elseif now - tonumber(f[3] or '0') >= tonumber(ARGV[5]) then
  eff = math.max(tonumber(ARGV[4]), math.min(eff, limit) * tonumber(ARGV[3]))
  redis.call('HSET', KEYS[1], 'eff', eff, 'upd', string.format('%.0f', now),
             'dec', string.format('%.0f', now))
  changed = 1
end
redis.call('PEXPIRE', KEYS[1], 3600000 + math.max(0, math.floor((hold - now) / 1000)))
if hold <= now then hold = 0 end
return {tostring(eff), string.format('%.0f', hold), changed}
