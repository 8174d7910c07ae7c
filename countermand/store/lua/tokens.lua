-- Report request tokens a process spent since its last reservation (end of a chunk, a verify
-- pass, a discovery). KEYS: tenant hash   ARGV: tokens
redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.max(redis.call('PTTL', KEYS[1]), 3600000))
return 1
