-- Which rows of a chunk repeat an earlier row of the job (only while submit runs).
-- KEYS: none: the bucket sets are named from ARGV[1] (one job's keys, one slot).
-- ARGV: the job's dedup key prefix (keys.dedup_prefix), expire_at_ms, lines "bucket<TAB>hash" joined by
-- newlines (one argument per chunk instead of one command per row).
-- Returns a string with one character per line: '1' first seen, '0' a repeat.
local out = {}
for bucket, hash in string.gmatch(ARGV[3], '([^\t\n]+)\t([^\n]+)') do
  local key = ARGV[1] .. bucket
  out[#out + 1] = tostring(redis.call('SADD', key, hash))
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIREAT', key, ARGV[2]) end
end
return table.concat(out)
