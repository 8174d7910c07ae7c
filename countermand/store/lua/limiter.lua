-- GCRA with reservations, on the Redis server's clock (hosts with skewed clocks agree).
-- Reserves n consecutive request slots for one job of one tenant, honouring in one round trip:
-- the job's status (a paused or aborted job gets no slot), the tenant's hold (a 429 with
-- Retry-After), the tenant's effective rate (its configured limit, lowered by 429s without
-- Retry-After and recovering additively), and the job's share of that rate.
-- The share: every job that asked for slots recently is on the tenant's share hash. An urgent
-- job gets the effective rate less SHARE.urgent_floor (kept for the others while any is
-- active); normal and bulk jobs share what is left SHARE.normal_part : the rest; jobs of one
-- priority share their part evenly; no job gets more than its own rate, and what a job cannot
-- use goes to the others (water-filling). The job is paced at its share.
-- KEYS: tenant hash {tat, hold, eff, upd, dec, lim, tokens}, job TAT string, job meta,
--       tenant share hash {job id: "priority|rate|active until µs|share|bound"}
-- ARGV: tenant limit/s, job rate/s, headroom (0..1), n, additive increase (requests/s per s),
--       horizon µs: slots further ahead than this are not reserved (see below),
--       tokens spent since this process's last report (counted in the tenant's 'tokens'),
--       job id, priority
-- Returns {wait µs until the first slot, spacing µs (0: refused, ask again later), effective
-- rate, µs until the tenant's hold ends (0: none), 1 if the job is not runnable (no slot),
-- the job's share (requests/s)}.
-- Reservations never reach more than the horizon into the future, so a hold or a lower rate
-- decided now applies to every process within that horizon: a caller refused sleeps until
-- its turn is near and asks again.
if tonumber(ARGV[7]) > 0 then redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[7]) end
local status = redis.call('HGET', KEYS[3], 'status')
if status ~= S.running and status ~= S.queued then return {'0', '0', '0', '0', 1, '0'} end
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

-- A job is active until a second, or three of its slot intervals, after its last ask.
local ACTIVE_US, FORGET_US = 1000000, 60000000
local job_id, priority = ARGV[8], ARGV[9]
local classes = {urgent = {}, normal = {}, bulk = {}}
-- The headroom is kept under the tenant's rate and under each job's own: both are ceilings
-- over any one-second window, and slots exactly 1/rate apart put rate + 1 in some windows.
local budget = eff * (1 - headroom)
local me = {cap = math.min(rate * (1 - headroom), budget), share = 0}
table.insert(classes[priority] or classes.normal, me)
local entries = redis.call('HGETALL', KEYS[4])
for i = 1, #entries, 2 do
  if entries[i] ~= job_id then
    local p, r, until_us = string.match(entries[i + 1], '^(%a+)|([^|]+)|([^|]+)|')
    until_us = tonumber(until_us) or 0
    if p and now <= until_us then
      table.insert(classes[p] or classes.normal,
                   {cap = math.min(tonumber(r) * (1 - headroom), budget), share = 0})
    elseif now - until_us > FORGET_US then
      redis.call('HDEL', KEYS[4], entries[i])
    end
  end
end
-- Share budget evenly among jobs, none above its cap; returns what they were given.
local function fill(jobs, budget)
  local left, open = math.max(budget, 0), {}
  for _, j in ipairs(jobs) do j.share = 0; open[#open + 1] = j end
  while #open > 0 and left > 1e-9 do
    local each, still = left / #open, {}
    for _, j in ipairs(open) do
      local give = math.min(each, j.cap - j.share)
      j.share = j.share + give
      left = left - give
      if j.cap - j.share > 1e-9 then still[#still + 1] = j end
    end
    if #still == #open then break end
    open = still
  end
  return math.max(budget, 0) - left
end
local urgent, normal, bulk = classes.urgent, classes.normal, classes.bulk
local others = #normal + #bulk > 0
local used_u = fill(urgent, others and budget * (1 - SHARE.urgent_floor) or budget)
local rest = budget - used_u
local used_b = fill(bulk, #normal > 0 and rest * (1 - SHARE.normal_part) or rest)
local used_n = fill(normal, rest - used_b)
used_b = fill(bulk, rest - used_n)
local unused = rest - used_n - used_b
if unused > 1e-9 and #urgent > 0 then fill(urgent, used_u + unused) end
local share = math.max(me.share, 0.01)
local active_until = now + math.max(ACTIVE_US, 3000000 / share)
-- What bounds the share: the job's own rate ('job'), or the tenant's rate shared ('tenant').
local bound = (me.share >= me.cap * 0.999) and 'job' or 'tenant'
redis.call('HSET', KEYS[4], job_id, priority .. '|' .. rate .. '|'
           .. string.format('%.0f', active_until) .. '|' .. share .. '|' .. bound)
redis.call('PEXPIRE', KEYS[4], 3600000)

local ti = 1000000 / budget
local tj = 1000000 / share
local hold = tonumber(f[2] or '0')
local start = math.max(now, tonumber(f[1] or '0'), hold,
                       tonumber(redis.call('GET', KEYS[2]) or '0'))
local held = string.format('%.0f', math.max(0, hold - now))
if start - now > tonumber(ARGV[6]) then
  return {string.format('%.0f', start - now), '0', tostring(eff), held, 0, tostring(share)}
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
return {string.format('%.0f', start - now), string.format('%.0f', spacing), tostring(eff), held, 0,
        tostring(share)}
