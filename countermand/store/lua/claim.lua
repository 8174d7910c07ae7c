-- Claim the chunk this runner should work next, and take its lease.
-- Among the runnable jobs that have ready chunks and hold fewer live chunks than they want
-- (the meta's 'want': how many chunks at once their share of the rate and the vendor's latency
-- call for), and of which this runner holds fewer than its part (want / live runners, rounded
-- up: a job's chunks spread over the processes): the highest priority first, then the job
-- holding the fewest chunks for what it wants (jobs of one priority share the runners evenly),
-- then the oldest. The call also keeps this runner registered as alive.
-- A claim is made once per owner token: the same call again (retried after its answer was lost
-- to a broken connection) answers what the first one took, while that lease is the owner's.
-- KEYS: active, runners, this claim's record
-- ARGV: owner token, lease ttl_ms, default want, runner id, runner ttl_ms,
--       chunks this runner holds per job (JSON {job id: n})
-- Returns {job id, chunk} or {} when nothing is to be claimed now.
local now = now_ms()
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local taken = redis.call('GET', KEYS[3])
if taken then
  local job, chunk = string.match(taken, '^(.*)|(%d+)$')
  if redis.call('HGET', job_key(job) .. SFX.owners, chunk) == ARGV[1] then return {job, chunk} end
  return {}
end
local runners = math.max(1, redis.call('ZCARD', KEYS[2]))
local mine = cjson.decode(ARGV[6])
local best, best_rank = nil, nil
for _, job in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local base = job_key(job)
  local f = redis.call('HMGET', base, 'status', 'priority', 'want', 'created_at')
  if (f[1] == S.running or f[1] == S.queued) and redis.call('ZCARD', base .. SFX.ready) > 0 then
    local held = live_leases(base .. SFX.leases, now)
    local want = tonumber(f[3] or '') or tonumber(ARGV[3])
    if held < want and (tonumber(mine[job]) or 0) < math.ceil(want / runners) then
      local rank = {PRIORITY_RANK[f[2] or ''] or PRIORITY_RANK.normal, held / want,
                    tonumber(f[4] or '0')}
      if not best_rank or rank[1] < best_rank[1]
          or (rank[1] == best_rank[1] and (rank[2] < best_rank[2]
          or (rank[2] == best_rank[2] and rank[3] < best_rank[3]))) then
        best, best_rank = job, rank
      end
    end
  end
end
if not best then return {} end
local base = job_key(best)
while true do
  local popped = redis.call('ZPOPMIN', base .. SFX.ready)
  if #popped == 0 then return {} end
  local chunk = popped[1]
  local expiry = tonumber(redis.call('ZSCORE', base .. SFX.leases, chunk) or '0')
  if redis.call('SISMEMBER', base .. SFX.open, chunk) == 1 and expiry <= now then
    take_lease({base, base .. SFX.open, base .. SFX.leases, base .. SFX.owners}, chunk,
               ARGV[1], now, ARGV[2])
    redis.call('SET', KEYS[3], best .. '|' .. chunk, 'PX', ARGV[2])
    return {best, chunk}
  end
end
