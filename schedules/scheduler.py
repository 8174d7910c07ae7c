"""Beat's scheduler: RedBeat's, made to wait out a Redis failover instead of dying of it.

RedBeat extends its lock at the start of every tick through a plain Redis client: its
``retry_period`` (``redbeat_redis_options``) covers RedBeat's own calls, not the lock's. So a
tick that lands in a failover (or a Redis restart) raised ``ConnectionError`` and beat exited;
a restarted beat then stood by until the dead one's lock expired (``redbeat_lock_timeout``).
Here a tick that cannot reach Redis is tried again ``AWAY_RETRY`` seconds later, and the lock
stays this beat's while the outage is shorter than the lock's timeout. A longer one lets the
lock expire; extending it then raises ``LockNotOwnedError`` and beat exits as before (another
beat may hold the lock by then; restarted, this one stands by).
"""

from __future__ import annotations

import logging
from typing import Any

from redbeat import RedBeatScheduler
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("countermand.beat")

AWAY_RETRY = 1.0


class FailoverScheduler(RedBeatScheduler):  # type: ignore[misc]
    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            return float(super().tick(*args, **kwargs))
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("beat: Redis unreachable (%s); next tick in %.0f s", exc, AWAY_RETRY)
            return AWAY_RETRY
