-- Before sending a batch: check the lease and the job status, skip final targets, and mark
-- the others in flight (the call may reach the API from here on).
-- KEYS: meta, owners, the result buckets holding first..first+n-1, in order
-- ARGV: chunk, owner, expire_at_ms, first, n, bucket size
-- Returns {flag, status, state per target}: flag -1 lease lost, 0 job not runnable, 1 go.
-- A state is 'F' (final, skip), '~N' (was in flight with N attempts), or 'N' (N attempts).
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return {-1, ''} end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' and status ~= 'queued' then return {0, status or ''} end
local now = now_seconds()
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', now)
  status = 'running'
end
local out = {1, status}
local touched = {}
local first, bucket = tonumber(ARGV[4]), tonumber(ARGV[6])
local base = math.floor(first / bucket)
for index = first, first + tonumber(ARGV[5]) - 1 do
  local key = KEYS[3 + math.floor(index / bucket) - base]
  local old = redis.call('HGET', key, index)
  if is_final(old) then
    out[#out + 1] = 'F'
  else
    local attempts = 0
    local prefix = ''
    if old then
      attempts = tonumber(cjson.decode(old)[2]) or 0
      if string.sub(old, 3, 3) == '~' then prefix = '~' end
    end
    -- attempts stay as recorded: only calls that were made are counted, when their result is
    redis.call('HSET', key, index, '["~",' .. attempts .. ',' .. now .. ']')
    touched[key] = true
    out[#out + 1] = prefix .. attempts
  end
end
for key in pairs(touched) do redis.call('PEXPIREAT', key, ARGV[3]) end
return out
