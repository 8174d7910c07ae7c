-- Store a batch of results and count them, atomically, exactly once per target.
-- KEYS: meta, owners, active, failed set, the result buckets from the lowest to the highest index
-- ARGV: chunk, owner, expire_at_ms, job_id, bucket size, lowest bucket, results: one string of
-- lines "index<TAB>encoded result" (JSON never holds a raw tab or newline), one argument for the
-- whole batch so the client packs one string instead of two per target.
-- A target already final is left alone (a redelivered chunk counts nothing twice). A final
-- result whose read could not decide (verified "unknown") is counted in 'undecided' too.
-- Returns {flag, completed}: flag -1 lease lost (nothing written), 1 written.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return {-1, 0} end
local counted, undecided = 0, 0
local touched = {}
local verify = redis.call('HGET', KEYS[1], 'verify') == '1'
local to_verify = 0
local unknown = '"verified":"' .. V.unknown .. '"'
local bucket, base = tonumber(ARGV[5]), tonumber(ARGV[6])
for index, value in string.gmatch(ARGV[7], '([^\t\n]+)\t([^\n]+)') do
  local key = KEYS[5 + math.floor(tonumber(index) / bucket) - base]
  if not is_final(redis.call('HGET', key, index)) then
    redis.call('HSET', key, index, value)
    touched[key] = true
    if is_final(value) then
      local code = string.sub(value, 3, 3)
      redis.call('HINCRBY', KEYS[1], 'n:' .. code, 1)
      counted = counted + 1
      if string.find(value, unknown, 1, true) then undecided = undecided + 1 end
      if code == C.failed then redis.call('SADD', KEYS[4], index) end
      if verify and (code == C.canceled or code == C.cancel_requested) then
        to_verify = to_verify + redis.call('SADD', KEYS[1] .. SFX.verify, index)
      end
    end
  end
end
for key in pairs(touched) do redis.call('PEXPIREAT', key, ARGV[3]) end
if counted > 0 then
  redis.call('HINCRBY', KEYS[1], 'done', counted)
  redis.call('HSET', KEYS[1], 'updated_at', now_seconds())
  redis.call('PEXPIREAT', KEYS[4], ARGV[3])
end
if undecided > 0 then redis.call('HINCRBY', KEYS[1], 'undecided', undecided) end
if to_verify > 0 then
  redis.call('PEXPIREAT', KEYS[1] .. SFX.verify, ARGV[3])
  local delay = tonumber(redis.call('HGET', KEYS[1], 'verify_delay') or '30')
  redis.call('ZADD', K.verify_due, 'NX', now_seconds() + delay, ARGV[4])
end
local completed = maybe_complete(KEYS[1], KEYS[3], ARGV[4])
if completed == 0 then maybe_abort(KEYS[1], KEYS[3], ARGV[4]) end
return {1, completed}
