-- The webhook outbox: events queued by announce() (_lib.lua), claimed by one notifier at a time.
-- KEYS: due zset, tries hash   ARGV: op, ...
-- 'claim', n, lease_s: up to n due events, each held for lease_s (its score moves ahead), so a
--   second notifier does not send them meanwhile; a notifier that dies lets them come due again.
-- 'done', member: delivered.
-- 'again', member, delay_s, max_tries: failed; due again after delay_s, or dropped once it has
--   failed max_tries times. Returns {tries, 1 if dropped}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local op = ARGV[1]
if op == 'claim' then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
  for _, member in ipairs(due) do
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), member)
  end
  return due
end
local member = ARGV[2]
if op == 'done' then
  redis.call('ZREM', KEYS[1], member)
  redis.call('HDEL', KEYS[2], member)
  return {0, 0}
end
local tries = redis.call('HINCRBY', KEYS[2], member, 1)
if tries >= tonumber(ARGV[4]) then
  redis.call('ZREM', KEYS[1], member)
  redis.call('HDEL', KEYS[2], member)
  return {tries, 1}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), member)
return {tries, 0}
