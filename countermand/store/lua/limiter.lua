-- GCRA with reservations, on the Redis server's clock (hosts with skewed clocks agree).
-- Reserves n consecutive request slots for one job of one tenant, honouring in one round trip:
-- the job's status (a paused or aborted job gets no slot), the tenant's hold (a 429 with
-- Retry-After), the tenant's effective rate (its configured limit, lowered by 429s without
-- Retry-After and recovering additively), and the job's own rate.
-- KEYS: tenant hash {tat, hold, eff, upd, dec, lim, tokens}, job TAT string, job meta
-- ARGV: tenant limit/s, job rate/s, headroom (0..1), n, additive increase (requests/s per s),
--       horizon µs: slots further ahead than this are not reserved (see below),
--       tokens spent since this process's last report (counted in the tenant's 'tokens')
-- Returns {wait µs until the first slot, spacing µs (0: refused, ask again later), effective
-- rate, µs until the tenant's hold ends (0: none), 1 if the job is not runnable (no slot)}.
-- Reservations never reach more than the horizon into the future, so a hold or a lower rate
-- decided now applies to every process within that horizon: a caller refused sleeps until
-- its turn is near and asks again.
if tonumber(ARGV[7]) > 0 then redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[7]) end
local status = redis.call('HGET', KEYS[3], 'status')
if status ~= S.running and status ~= S.queued then return {'0', '0', '0', '0', 1} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit, rate, headroom = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local n, increase = tonumber(ARGV[4]), tonumber(ARGV[5])
local f = redis.call('HMGET', KEYS[1], 'tat', 'hold', 'eff', 'upd')
local eff = tonumber(f[3]) or limit
if eff < limit then
  eff = math.min(limit, eff + increase * (now - (tonumber(f[4]) or now)) / 1000000)
end
eff = math.min(eff, limit)
local ti = 1000000 / (eff * (1 - headroom))
local tj = 1000000 / (math.min(rate, limit) * (1 - headroom))
local hold = tonumber(f[2] or '0')
local start = math.max(now, tonumber(f[1] or '0'), hold,
                       tonumber(redis.call('GET', KEYS[2]) or '0'))
local held = string.format('%.0f', math.max(0, hold - now))
if start - now > tonumber(ARGV[6]) then
  return {string.format('%.0f', start - now), '0', tostring(eff), held, 0}
end
local spacing = math.max(ti, tj)
local last = start + (n - 1) * spacing
-- The tenant's next slot is one tenant interval after our last one, the job's one job interval.
local tenant_tat, job_tat = last + ti, last + tj
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', tenant_tat), 'eff', eff,
           'upd', string.format('%.0f', now), 'lim', limit)
local keep = math.floor((math.max(tenant_tat, job_tat) - now) / 1000) + 3600000
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('SET', KEYS[2], string.format('%.0f', job_tat), 'PX', keep)
return {string.format('%.0f', start - now), string.format('%.0f', spacing), tostring(eff), held, 0}
