-- Give a chunk back.
-- KEYS: meta, open, leases, owners, the chunk's result buckets (lowest first)
-- ARGV: chunk, owner, finished ('1'/'0'), first index, targets in the chunk, bucket size
-- finished: the owner saw every target final. The chunk leaves the open set only if Redis
-- agrees (writes lost to a Redis restart leave a target unfinished: 'unfinished', the owner
-- runs another pass). Not finished (the job was paused or aborted): released only while the
-- job is still not runnable; if it was resumed meanwhile, 'continue' tells the owner to keep
-- working, so a resume can never fall between a stopping owner and the message it sent.
local chunk, owner = ARGV[1], ARGV[2]
if redis.call('HGET', KEYS[4], chunk) ~= owner then return 'lost' end
if ARGV[3] == '1' then
  local first, bucket = tonumber(ARGV[4]), tonumber(ARGV[6])
  local base = math.floor(first / bucket)
  for index = first, first + tonumber(ARGV[5]) - 1 do
    if not is_final(redis.call('HGET', KEYS[5 + math.floor(index / bucket) - base], index)) then
      return 'unfinished'
    end
  end
  redis.call('SREM', KEYS[2], chunk)
else
  local status = redis.call('HGET', KEYS[1], 'status')
  if status == S.running or status == S.queued then return 'continue' end
end
redis.call('HDEL', KEYS[4], chunk)
redis.call('ZREM', KEYS[3], chunk)
return 'released'
