-- A job's input is in (submit released it): its open chunks become ready to claim, and the
-- runners are woken. KEYS: meta   ARGV: job id   Returns how many chunks are ready.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local _, ready = make_ready(ARGV[1], nil)
return ready
