-- Take the lease of a chunk before working on it.
-- KEYS: meta, open, leases, owners   ARGV: chunk, owner, ttl_ms, reservation token ('' if none)
-- Returns 'ok', or why not: 'done' (chunk finished), 'gone' (job purged or expired),
-- 'stopped' (job paused/aborted/completed), 'busy' (another live owner holds it).
local chunk, owner = ARGV[1], ARGV[2]
-- A message that will not run its chunk drops the reservation it made when it was received.
local function drop_reservation()
  if ARGV[4] ~= '' and redis.call('HGET', KEYS[4], chunk) == ARGV[4] then
    redis.call('HDEL', KEYS[4], chunk)
    redis.call('ZREM', KEYS[3], chunk)
  end
end
if redis.call('SISMEMBER', KEYS[2], chunk) == 0 then
  drop_reservation()
  if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
  return 'done'
end
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'gone' end
if status ~= S.queued and status ~= S.running then
  drop_reservation()
  return 'stopped'
end
local now = now_ms()
local current = redis.call('HGET', KEYS[4], chunk)
if current and current ~= owner and current ~= ARGV[4] then
  local expiry = tonumber(redis.call('ZSCORE', KEYS[3], chunk) or '0')
  if expiry > now then return 'busy' end
end
take_lease(KEYS, chunk, owner, now, ARGV[3])
return 'ok'
