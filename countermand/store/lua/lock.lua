-- The one fenced lock: a token with an expiry; only its holder renews, replaces or drops it.
-- KEYS: lock   ARGV: op, token, ttl_ms, value (for 'replace')
-- op 'take': 1 if taken (free, or already ours), else 0. 'renew': 1 if still ours (expiry
-- extended). 'release': 1 if it was ours (deleted). 'replace': 1 if it was ours; it now holds
-- value for ttl_ms and is nobody's (a finished scheduled slot says "done").
local op, token = ARGV[1], ARGV[2]
local current = redis.call('GET', KEYS[1])
if op == 'take' then
  if current and current ~= token then return 0 end
  redis.call('SET', KEYS[1], token, 'PX', ARGV[3])
  return 1
end
if current ~= token then return 0 end
if op == 'renew' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
elseif op == 'release' then
  redis.call('DEL', KEYS[1])
elseif op == 'replace' then
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
end
return 1
