-- Shared helpers, prepended to the scripts that need them (Redis 6.2 has no functions).
-- A stored result is compact JSON '["<code>",attempts,...]': its code is the 3rd byte.
local function is_final(value)
  return value ~= false and value ~= nil and string.sub(value, 3, 3) ~= '~'
end

local function now_seconds()
  return tonumber(redis.call('TIME')[1])
end

-- Flip a job to completed once every target is final and the input is fully loaded.
-- Runs inside the script that made the last target final, so it happens exactly once.
local function maybe_complete(meta, active, job_id)
  local f = redis.call('HMGET', meta, 'total', 'done', 'loaded', 'status')
  local status = f[4]
  if f[3] == '1' and tonumber(f[2] or '0') >= tonumber(f[1] or '0')
      and (status == 'running' or status == 'queued' or status == 'paused') then
    local now = now_seconds()
    redis.call('HSET', meta, 'status', 'completed', 'finished_at', now, 'updated_at', now)
    redis.call('HDEL', meta, 'reason', 'reason_detail')
    redis.call('SREM', active, job_id)
    return 1
  end
  return 0
end
