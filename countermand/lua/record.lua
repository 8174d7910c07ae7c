-- Store a batch of results and count them, atomically, exactly once per target.
-- KEYS: meta, owners, active, bucket keys...
-- ARGV: chunk, owner, expire_at_ms, job_id, (index, key pos, encoded result)...
-- A target already final is left alone (a redelivered chunk counts nothing twice).
-- Returns {flag, completed}: flag -1 lease lost (nothing written), 1 written.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return {-1, 0} end
local counted = 0
local touched = {}
for i = 5, #ARGV, 3 do
  local key = KEYS[tonumber(ARGV[i + 1])]
  if not is_final(redis.call('HGET', key, ARGV[i])) then
    local value = ARGV[i + 2]
    redis.call('HSET', key, ARGV[i], value)
    touched[key] = true
    if is_final(value) then
      redis.call('HINCRBY', KEYS[1], 'n:' .. string.sub(value, 3, 3), 1)
      counted = counted + 1
    end
  end
end
for key in pairs(touched) do redis.call('PEXPIREAT', key, ARGV[3]) end
if counted > 0 then
  redis.call('HINCRBY', KEYS[1], 'done', counted)
  redis.call('HSET', KEYS[1], 'updated_at', now_seconds())
end
return {1, maybe_complete(KEYS[1], KEYS[3], ARGV[4])}
