-- Give a chunk back.
-- KEYS: meta, open, leases, owners, ready, the chunk's result buckets (lowest first)
-- ARGV: chunk, owner, how ('1' finished, '0' stopping, '2' handing back), first index,
--       targets in the chunk, bucket size, job id
-- finished: the owner saw every target final. The chunk leaves the open set only if Redis
-- agrees (writes lost to a Redis restart leave a target unfinished: 'unfinished', the owner
-- runs another pass). Stopping (the job was paused or aborted): released only while the job is
-- still not runnable; if it was resumed meanwhile, 'continue' tells the owner to keep working,
-- so a resume can never fall between a stopping owner and its chunk. Handing back (the process
-- is shutting down): released and made ready again, for another process to claim at once.
local chunk, owner, how = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', KEYS[4], chunk) ~= owner then return 'lost' end
if how == '1' then
  local first, bucket = tonumber(ARGV[4]), tonumber(ARGV[6])
  local base = math.floor(first / bucket)
  for index = first, first + tonumber(ARGV[5]) - 1 do
    if not is_final(redis.call('HGET', KEYS[6 + math.floor(index / bucket) - base], index)) then
      return 'unfinished'
    end
  end
  redis.call('SREM', KEYS[2], chunk)
  redis.call('ZREM', KEYS[5], chunk)
elseif how == '0' then
  local status = redis.call('HGET', KEYS[1], 'status')
  if status == S.running or status == S.queued then return 'continue' end
end
redis.call('HDEL', KEYS[4], chunk)
redis.call('ZREM', KEYS[3], chunk)
if how == '2' then
  local status = redis.call('HGET', KEYS[1], 'status')
  if status == S.running or status == S.queued then make_ready(ARGV[7], {chunk}) end
end
return 'released'
