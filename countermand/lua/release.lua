-- Give a chunk back. KEYS: meta, open, leases, owners   ARGV: chunk, owner, finished ('1'/'0')
-- finished: every target of the chunk is final, the chunk leaves the open set.
-- Not finished (the job was paused or aborted): released only while the job is still not
-- runnable; if it was resumed meanwhile, 'continue' tells the owner to keep working, so a
-- resume can never fall between a stopping owner and the message that resume sent.
local chunk, owner = ARGV[1], ARGV[2]
if redis.call('HGET', KEYS[4], chunk) ~= owner then return 'lost' end
if ARGV[3] == '1' then
  redis.call('SREM', KEYS[2], chunk)
else
  local status = redis.call('HGET', KEYS[1], 'status')
  if status == 'running' or status == 'queued' then return 'continue' end
end
redis.call('HDEL', KEYS[4], chunk)
redis.call('ZREM', KEYS[3], chunk)
return 'released'
