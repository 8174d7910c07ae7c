-- The chunks of a job under a live lease now, by the Redis clock (``live_leases``, as claim and
-- want count them): what pause and abort wait on.
-- KEYS: leases
return live_leases(KEYS[1], now_ms())
