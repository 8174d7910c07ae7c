-- Extend a lease still held by owner, and tell the owner the job's status so that a pause or
-- abort reaches calls waiting on a long Retry-After, not only the next batch.
-- KEYS: owners, leases, meta   ARGV: chunk, owner, ttl_ms
-- Returns the job status, or '' when the lease is lost.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return '' end
redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[3]), ARGV[1])
return redis.call('HGET', KEYS[3], 'status') or 'gone'
