-- Find chunks whose lease expired (their owner died or its host is gone) in runnable jobs,
-- drop those leases and return {job, chunk, job, chunk, ...} for re-dispatch.
-- KEYS: active   ARGV: key prefix ('cm'), max chunks per job
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, job in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local base = ARGV[1] .. ':job:{' .. job .. '}'
  local status = redis.call('HGET', base, 'status')
  if status == 'running' or status == 'queued' then
    local leases, owners, open = base .. ':leases', base .. ':owners', base .. ':open'
    local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
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
