-- Re-queue exactly the failed targets of a job for a new round, atomically with its counters.
-- KEYS: meta, active, failed set, open set, retry-due zset
-- ARGV: job_id, expected round ('' by hand; the scheduler passes the round it saw, so a round
--       fires once however many sweeps run), results key prefix, bucket size
-- Returns {'ok', round, chunks...}, {'none'} (nothing failed), {'skip'} (round already fired),
-- {'refused', status} or {'gone'}. A re-queued target keeps its attempts and, if an earlier
-- attempt may have reached the vendor, when that was. The chunks are made ready to claim.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'gone'} end
local round = tonumber(redis.call('HGET', KEYS[1], 'round') or '0')
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= round then return {'skip'} end
if status ~= S.completed and status ~= S.running then return {'refused', status} end
local failed = redis.call('SMEMBERS', KEYS[3])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[1], 'next_retry_at')
if #failed == 0 then return {'none'} end
local now = now_seconds()
local bucket = tonumber(ARGV[4])
local chunk_size = tonumber(redis.call('HGET', KEYS[1], 'chunk_size'))
local chunks = {}
for _, index in ipairs(failed) do
  local key = ARGV[3] .. math.floor(tonumber(index) / bucket)
  local old = redis.call('HGET', key, index)
  local attempts = tonumber(cjson.decode(old)[2]) or 0
  redis.call('HSET', key, index, mark(C.queued, attempts, now, uncertain_of(old)))
  chunks[math.floor(tonumber(index) / chunk_size)] = true
end
redis.call('DEL', KEYS[3])
redis.call('HINCRBY', KEYS[1], 'n:' .. C.failed, -#failed)
redis.call('HINCRBY', KEYS[1], 'done', -#failed)
round = redis.call('HINCRBY', KEYS[1], 'round', 1)
redis.call('HSET', KEYS[1], 'status', S.running, 'updated_at', now)
redis.call('HDEL', KEYS[1], 'finished_at', 'reason', 'reason_detail')
redis.call('SADD', KEYS[2], ARGV[1])
local out = {'ok', round}
local listed = {}
for chunk in pairs(chunks) do
  redis.call('SADD', KEYS[4], chunk)
  out[#out + 1] = chunk
  listed[#listed + 1] = tostring(chunk)
end
make_ready(ARGV[1], listed)
return out
