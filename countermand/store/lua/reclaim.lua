-- Find chunks whose lease expired (their owner died or its host is gone) in runnable jobs,
-- drop those leases and return {job, chunk, job, chunk, ...} for re-dispatch.
-- KEYS: active   ARGV: max chunks per job
local now = now_ms()
local out = {}
for _, job in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local base = job_key(job)
  local status = redis.call('HGET', base, 'status')
  if status == S.running or status == S.queued then
    local leases, owners, open = base .. SFX.leases, base .. SFX.owners, base .. SFX.open
    local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
    for _, chunk in ipairs(expired) do
      redis.call('ZREM', leases, chunk)
      redis.call('HDEL', owners, chunk)
      if redis.call('SISMEMBER', open, chunk) == 1 then
        out[#out + 1] = job
        out[#out + 1] = chunk
      end
    end
  elseif not status then
    redis.call('SREM', KEYS[1], job)
  end
end
return out
