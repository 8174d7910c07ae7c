-- Change a job's status if its current status allows it.
-- KEYS: meta, active, open   ARGV: job_id, to, reason ('' for none), detail, allowed...
-- Returns {'ok', previous, chunks ready to claim (only when the job becomes runnable)},
-- {'refused', current} or {'gone'}. A job that stops is announced on the events channel, so
-- every worker stops starting its requests at once; a job that becomes runnable has its open
-- chunks made ready, and the runners are woken.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'gone'} end
local allowed = false
for i = 5, #ARGV do if ARGV[i] == status then allowed = true end end
if not allowed then return {'refused', status} end
local to = ARGV[2]
local now = now_seconds()
redis.call('HSET', KEYS[1], 'status', to, 'updated_at', now)
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'reason', ARGV[3], 'reason_detail', ARGV[4])
else
  redis.call('HDEL', KEYS[1], 'reason', 'reason_detail')
end
local out = {'ok', status}
if to == S.running or to == S.queued then
  redis.call('SADD', KEYS[2], ARGV[1])
  local _, ready = make_ready(ARGV[1], nil)
  out[#out + 1] = ready
else
  redis.call('SREM', KEYS[2], ARGV[1])
  if to == S.aborted or to == S.completed then redis.call('HSET', KEYS[1], 'finished_at', now) end
  publish_stop(ARGV[1], to)
  if to == S.paused or to == S.aborted then announce(KEYS[1], ARGV[1], to) end
end
return out
