-- Apply what reading commands back says, atomically with the counters (submit --verify).
-- KEYS: meta, active   ARGV: job_id, results key prefix, bucket size, lines "index<TAB>result"
-- Only targets still awaiting verification change; an outcome that changes moves between
-- counters (done is unchanged). The job completes here once nothing awaits a read.
-- Returns {left to verify, completed}.
local set = KEYS[1] .. SFX.verify
local bucket = tonumber(ARGV[3])
for index, value in string.gmatch(ARGV[4], '([^\t\n]+)\t([^\n]+)') do
  if redis.call('SREM', set, index) == 1 then
    local key = ARGV[2] .. math.floor(tonumber(index) / bucket)
    local old = redis.call('HGET', key, index)
    local before, after = string.sub(old, 3, 3), string.sub(value, 3, 3)
    if before ~= after then
      redis.call('HINCRBY', KEYS[1], 'n:' .. before, -1)
      redis.call('HINCRBY', KEYS[1], 'n:' .. after, 1)
    end
    redis.call('HSET', key, index, value)
  end
end
local left = redis.call('SCARD', set)
if left == 0 then redis.call('ZREM', K.verify_due, ARGV[1]) end
return {left, maybe_complete(KEYS[1], KEYS[2], ARGV[1])}
