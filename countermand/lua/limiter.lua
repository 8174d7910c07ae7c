-- GCRA with reservations, on the Redis server's clock (hosts with skewed clocks agree).
-- Reserves n consecutive request slots for one job of one tenant, honouring both the
-- tenant's limit and the job's own rate in one round trip.
-- KEYS: tenant TAT, job TAT   ARGV: tenant interval µs, job interval µs, n
-- Returns {wait µs until the first slot, spacing µs between slots}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ti, tj, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local start = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'),
                       tonumber(redis.call('GET', KEYS[2]) or '0'))
local spacing = math.max(ti, tj)
local last = start + (n - 1) * spacing
-- The tenant's next slot is one tenant interval after our last one, the job's one job interval.
local tenant_tat, job_tat = last + ti, last + tj
local keep = math.floor((math.max(tenant_tat, job_tat) - now) / 1000) + 60000
redis.call('SET', KEYS[1], string.format('%.0f', tenant_tat), 'PX', keep)
redis.call('SET', KEYS[2], string.format('%.0f', job_tat), 'PX', keep)
return {string.format('%.0f', start - now), string.format('%.0f', spacing)}
