-- A worker received a chunk's message (not started yet): hold the chunk for ttl_ms so that,
-- should the whole host die before the task starts, the reclaimer sees an expired lease.
-- KEYS: meta, open, leases, owners   ARGV: chunk, token, ttl_ms
local chunk = ARGV[1]
if redis.call('SISMEMBER', KEYS[2], chunk) == 0 then return 0 end
local now = now_ms()
if redis.call('HEXISTS', KEYS[4], chunk) == 1 then
  local expiry = tonumber(redis.call('ZSCORE', KEYS[3], chunk) or '0')
  if expiry > now then return 0 end
end
redis.call('HSET', KEYS[4], chunk, ARGV[2])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), chunk)
local expire_at = redis.call('HGET', KEYS[1], 'expire_at')
if expire_at then
  redis.call('PEXPIREAT', KEYS[3], expire_at)
  redis.call('PEXPIREAT', KEYS[4], expire_at)
end
return 1
