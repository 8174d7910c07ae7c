-- Make ready again the chunks of runnable jobs that nobody holds: chunks whose lease expired
-- (their owner or its whole host died; the lease is dropped), and open chunks neither held nor
-- ready for any other reason (the runners are woken).
-- KEYS: active   ARGV: max expired leases dropped per job and pass
-- Returns {job, chunks made ready (not ready before), ...}.
local now = now_ms()
local out = {}
for _, job in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local base = job_key(job)
  local status = redis.call('HGET', base, 'status')
  if status == S.running or status == S.queued then
    local leases, owners = base .. SFX.leases, base .. SFX.owners
    local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
    for _, chunk in ipairs(expired) do
      redis.call('ZREM', leases, chunk)
      redis.call('HDEL', owners, chunk)
    end
    if redis.call('HGET', base, 'loaded') == '1' then
      local n = make_ready(job, nil)
      if n > 0 then
        out[#out + 1] = job
        out[#out + 1] = n
      end
    end
  elseif not status then
    redis.call('SREM', KEYS[1], job)
  end
end
return out
