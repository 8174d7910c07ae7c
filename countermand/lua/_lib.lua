-- Shared helpers, prepended to the scripts that need them (Redis 6.2 has no functions).
-- A stored result is compact JSON '["<code>",attempts,...]': its code is the 3rd byte.
-- Non-final codes: '~' in flight (a call may have reached the API), 'q' queued for a retry round.
local function is_final(value)
  if value == false or value == nil then return false end
  local code = string.sub(value, 3, 3)
  return code ~= '~' and code ~= 'q'
end

local function retry_due_key()
  return 'cm:retry:due'
end

local function verify_due_key()
  return 'cm:verify:due'
end

local function now_seconds()
  return tonumber(redis.call('TIME')[1])
end

-- Flip a job to completed once every target is final and the input is fully loaded.
-- Runs inside the script that made the last target final, so it happens exactly once.
local function maybe_complete(meta, active, job_id)
  local f = redis.call('HMGET', meta, 'total', 'done', 'loaded', 'status')
  local status = f[4]
  if redis.call('SCARD', meta .. ':verify') > 0 then return 0 end  -- reads still to come
  if f[3] == '1' and tonumber(f[2] or '0') >= tonumber(f[1] or '0')
      and (status == 'running' or status == 'queued' or status == 'paused') then
    local now = now_seconds()
    redis.call('HSET', meta, 'status', 'completed', 'finished_at', now, 'updated_at', now)
    redis.call('HDEL', meta, 'reason', 'reason_detail')
    redis.call('SREM', active, job_id)
    -- --auto-retry: schedule the next round of the failed targets, with a growing delay.
    local a = redis.call('HMGET', meta, 'auto_retry', 'round', 'n:f', 'retry_delay')
    local round = tonumber(a[2] or '0')
    if tonumber(a[1] or '0') > round and tonumber(a[3] or '0') > 0 then
      local due = now + tonumber(a[4] or '60') * (2 ^ round)
      redis.call('HSET', meta, 'next_retry_at', due)
      redis.call('ZADD', retry_due_key(), due, job_id)
    end
    return 1
  end
  return 0
end

-- --abort-at: once enough targets have an answer and too many of them failed or were rejected,
-- stop the job; targets not yet tried stay untouched.
local function maybe_abort(meta, active, job_id)
  local f = redis.call('HMGET', meta, 'abort_at', 'abort_min', 'done', 'n:i', 'n:w', 'n:f',
                       'n:j', 'status')
  if not f[1] or f[1] == '' or (f[8] ~= 'running' and f[8] ~= 'queued') then return 0 end
  local answered = tonumber(f[3] or '0') - tonumber(f[4] or '0') - tonumber(f[5] or '0')
  local bad = tonumber(f[6] or '0') + tonumber(f[7] or '0')
  if answered >= tonumber(f[2] or '1') and bad * 100 > tonumber(f[1]) * answered then
    local now = now_seconds()
    redis.call('HSET', meta, 'status', 'aborted', 'reason', 'abort_threshold', 'reason_detail',
      string.format('%d of %d answered targets failed or were rejected (more than %s%%)',
                    bad, answered, f[1]),
      'finished_at', now, 'updated_at', now)
    redis.call('SREM', active, job_id)
    return 1
  end
  return 0
end
