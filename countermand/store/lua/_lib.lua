-- Shared helpers, prepended (after the generated header of names) to the scripts that use them.
-- A stored result is compact JSON '["<code>",attempts,updated_at,...,uncertain_since]': its
-- code is the 3rd byte. Non-final codes: C.in_flight (a call may have reached the API) and
-- C.queued (not final, nothing on the wire).
local function is_final(value)
  if value == false or value == nil then return false end
  local code = string.sub(value, 3, 3)
  return code ~= C.in_flight and code ~= C.queued
end

local function now_seconds()
  return tonumber(redis.call('TIME')[1])
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The chunks of a job under a live lease at `now` (Redis ms): a worker still works them.
local function live_leases(leases_key, now)
  return redis.call('ZCOUNT', leases_key, '(' .. now, '+inf')
end

-- The 8th item of a stored result: since when an attempt may have reached the vendor without
-- a definite answer (Redis seconds), or nil. An in-flight mark that was never replaced by a
-- result means its attempt may have reached the vendor: its own time counts too.
local function uncertain_of(old)
  if not old then return nil end
  local items = cjson.decode(old)
  local u = items[8]
  if u == cjson.null then u = nil end
  if string.sub(old, 3, 3) == C.in_flight then
    local t = tonumber(items[3])
    if t and (u == nil or t < u) then u = t end
  end
  return u
end

-- A non-final mark: '["<code>",attempts,time]', with uncertain_since as the 8th item if set.
local function mark(code, attempts, time, u)
  local head = '["' .. code .. '",' .. attempts .. ',' .. time
  if u == nil then return head .. ']' end
  return head .. ',null,null,null,null,' .. string.format('%d', u) .. ']'
end

-- Hold a chunk's lease for owner until now + ttl_ms. KEYS order of the lease scripts:
-- meta, open, leases, owners. The lease keys live as long as the job.
local function take_lease(keys, chunk, owner, now, ttl_ms)
  redis.call('HSET', keys[4], chunk, owner)
  redis.call('ZADD', keys[3], now + tonumber(ttl_ms), chunk)
  local expire_at = redis.call('HGET', keys[1], 'expire_at')
  if expire_at then
    redis.call('PEXPIREAT', keys[3], expire_at)
    redis.call('PEXPIREAT', keys[4], expire_at)
  end
end

-- Make a job's open chunks that nobody holds ready to be claimed (all of them, or the given
-- ones), and wake the runners. Returns how many were not ready before, and how many are ready.
local function make_ready(job_id, chunks)
  local base = job_key(job_id)
  local now = now_ms()
  local added, ready = 0, 0
  for _, chunk in ipairs(chunks or redis.call('SMEMBERS', base .. SFX.open)) do
    local expiry = tonumber(redis.call('ZSCORE', base .. SFX.leases, chunk) or '0')
    if expiry <= now and redis.call('SISMEMBER', base .. SFX.open, chunk) == 1 then
      added = added + redis.call('ZADD', base .. SFX.ready, tonumber(chunk), chunk)
      ready = ready + 1
    end
  end
  local expire_at = redis.call('HGET', base, 'expire_at')
  if expire_at then redis.call('PEXPIREAT', base .. SFX.ready, expire_at) end
  if ready > 0 then redis.call('PUBLISH', K.work, job_id) end
  return added, ready
end

-- Tell every worker process that a job stopped (pause, abort): they stop starting requests.
local function publish_stop(job_id, status)
  redis.call('PUBLISH', K.events, job_id .. ' ' .. status)
end

-- A job's webhook (``notify``): queue the event for the notifier; sending never delays the job.
local function announce(meta, job_id, event)
  local url = redis.call('HGET', meta, 'notify')
  if not url or url == '' then return end
  local seq = redis.call('HINCRBY', meta, 'events', 1)
  redis.call('ZADD', K.webhooks_due, now_seconds(), job_id .. '|' .. event .. '|' .. seq)
end

-- Flip a job to completed once every target is final and the input is fully loaded.
-- Runs inside the script that made the last target final, so it happens exactly once.
local function maybe_complete(meta, active, job_id)
  local f = redis.call('HMGET', meta, 'total', 'done', 'loaded', 'status')
  local status = f[4]
  if redis.call('SCARD', meta .. SFX.verify) > 0 then return 0 end  -- reads still to come
  if f[3] == '1' and tonumber(f[2] or '0') >= tonumber(f[1] or '0')
      and (status == S.running or status == S.queued or status == S.paused) then
    local now = now_seconds()
    redis.call('HSET', meta, 'status', S.completed, 'finished_at', now, 'updated_at', now)
    redis.call('HDEL', meta, 'reason', 'reason_detail')
    redis.call('SREM', active, job_id)
    -- --auto-retry: schedule the next round of the failed targets, with a growing delay.
    local a = redis.call('HMGET', meta, 'auto_retry', 'round', 'n:' .. C.failed, 'retry_delay')
    local round = tonumber(a[2] or '0')
    if tonumber(a[1] or '0') > round and tonumber(a[3] or '0') > 0 then
      local due = now + tonumber(a[4] or '60') * (2 ^ round)
      redis.call('HSET', meta, 'next_retry_at', due)
      redis.call('ZADD', K.retry_due, due, job_id)
    end
    announce(meta, job_id, S.completed)
    return 1
  end
  return 0
end

-- --abort-at: once enough targets have an answer and too many of them failed or were rejected,
-- stop the job; targets not yet tried stay untouched.
local function maybe_abort(meta, active, job_id)
  local f = redis.call('HMGET', meta, 'abort_at', 'abort_min', 'done', 'n:' .. C.invalid,
                       'n:' .. C.would_cancel, 'n:' .. C.failed, 'n:' .. C.rejected, 'status')
  if not f[1] or f[1] == '' or (f[8] ~= S.running and f[8] ~= S.queued) then return 0 end
  local answered = tonumber(f[3] or '0') - tonumber(f[4] or '0') - tonumber(f[5] or '0')
  local bad = tonumber(f[6] or '0') + tonumber(f[7] or '0')
  if answered >= tonumber(f[2] or '1') and bad * 100 > tonumber(f[1]) * answered then
    local now = now_seconds()
    redis.call('HSET', meta, 'status', S.aborted, 'reason', R.abort_threshold, 'reason_detail',
      string.format('%d of %d answered targets failed or were rejected (more than %s%%)',
                    bad, answered, f[1]),
      'finished_at', now, 'updated_at', now)
    redis.call('SREM', active, job_id)
    publish_stop(job_id, S.aborted)
    announce(meta, job_id, S.aborted)
    return 1
  end
  return 0
end
