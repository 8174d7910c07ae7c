-- Before sending a batch: check the lease and the job status, skip final targets, and mark
-- the others in flight (a call may reach the API from here on).
-- KEYS: meta, owners, epoch, the result buckets holding first..first+n-1, in order
-- ARGV: chunk, owner, expire_at_ms, first, n, bucket size
-- Returns {flag, status, now, reads, states}: flag -1 lease lost, 0 job not runnable, 1 go;
-- now is the Redis time (s) of the marks; reads is 1 when Redis may have lost writes since the
-- job was created (a restart or a failover seen in the epoch hash), so that every "too late"
-- answer must be read back. states is one string, a state per target in order, joined by ',':
-- 'F' (final: skip), 'N' (N attempts so far) or 'N:U' (N attempts, and one may have reached
-- the vendor without a definite answer at U). One string, not a state per reply element: the
-- client parses one element instead of a batch of them (bench/core.py --engine-only).
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return {-1, ''} end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= S.running and status ~= S.queued then return {0, status or ''} end
local now = now_seconds()
if status == S.queued then
  redis.call('HSET', KEYS[1], 'status', S.running, 'started_at', now)
  status = S.running
end
local changed = tonumber(redis.call('HGET', KEYS[3], 'changed_at') or '0')
local created = tonumber(redis.call('HGET', KEYS[1], 'created_at') or '0')
local states = {}
local touched = {}
local first, bucket = tonumber(ARGV[4]), tonumber(ARGV[6])
local base = math.floor(first / bucket)
for index = first, first + tonumber(ARGV[5]) - 1 do
  local key = KEYS[4 + math.floor(index / bucket) - base]
  local old = redis.call('HGET', key, index)
  if is_final(old) then
    states[#states + 1] = 'F'
  else
    local attempts = 0
    if old then attempts = tonumber(cjson.decode(old)[2]) or 0 end
    local u = uncertain_of(old)
    -- attempts stay as recorded: only calls that were made are counted, when their result is
    redis.call('HSET', key, index, mark(C.in_flight, attempts, now, u))
    touched[key] = true
    if u then
      states[#states + 1] = attempts .. ':' .. string.format('%d', u)
    else
      states[#states + 1] = tostring(attempts)
    end
  end
end
for key in pairs(touched) do redis.call('PEXPIREAT', key, ARGV[3]) end
return {1, status, now, (changed > created) and 1 or 0, table.concat(states, ',')}
