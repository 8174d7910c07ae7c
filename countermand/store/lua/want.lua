-- A worker's estimate of how many chunks a job should hold at once (its share of the rate x
-- the vendor's latency, in chunks); the runners are woken when it grows. With it, the rate the
-- worker's in-flight ceiling allows the job when that ceiling binds ('' when it does not).
-- KEYS: meta, leases   ARGV: job id, want, ceiling rate
-- Returns how many chunks the job holds now (live leases), or -1 if the job is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local want = tonumber(ARGV[2])
local before = tonumber(redis.call('HGET', KEYS[1], 'want') or '0')
if want ~= before then
  redis.call('HSET', KEYS[1], 'want', want)
  if want > before then redis.call('PUBLISH', K.work, ARGV[1]) end
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'ceiling_rate', ARGV[3], 'ceiling_at', now_ms())
end
return live_leases(KEYS[2], now_ms())
