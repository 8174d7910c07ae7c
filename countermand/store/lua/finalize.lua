-- The input is fully loaded. KEYS: meta, active   ARGV: job_id, chunks
redis.call('HSET', KEYS[1], 'loaded', 1, 'chunks', ARGV[2])
return maybe_complete(KEYS[1], KEYS[2], ARGV[1])
