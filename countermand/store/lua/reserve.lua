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
take_lease(KEYS, chunk, ARGV[2], now, ARGV[3])
return 1
