-- Run on every new connection: has the Redis server changed (a restart, a failover) since a
-- process last looked? Then writes of the last second may be lost (AOF everysec, asynchronous
-- replication), and every job created before now reads back its "too late" answers.
-- KEYS: epoch hash, jobs zset   ARGV: the server's run_id
-- Returns 1 when this call recorded a change, else 0.
local stored = redis.call('HGET', KEYS[1], 'run_id')
if stored == ARGV[1] then return 0 end
if stored or redis.call('ZCARD', KEYS[2]) > 0 then
  local t = redis.call('TIME')
  local now = string.format('%d.%06d', tonumber(t[1]), tonumber(t[2]))
  redis.call('HSET', KEYS[1], 'run_id', ARGV[1], 'changed_at', now)
  return 1
end
redis.call('HSET', KEYS[1], 'run_id', ARGV[1], 'changed_at', 0)  -- a new, empty server
return 0
