"""The one fenced lock: a token with an expiry on the Redis clock (``lua/lock.lua``).

Only the holder renews, replaces or releases it, so a holder that stalled past its expiry and
was replaced can no longer touch the lock of its successor. Used for one verify pass per job,
one reclaimer pass per interval, and one run per scheduled cleanup slot.
"""

from __future__ import annotations

import secrets
from typing import Any


class FencedLock:
    def __init__(self, scripts: Any, key: str, ttl_s: float, token: str | None = None) -> None:
        self._scripts = scripts
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = token or secrets.token_hex(8)

    async def _run(self, op: str, value: str = "", ttl_ms: int | None = None) -> bool:
        answer = await self._scripts.lock(
            keys=[self.key], args=[op, self.token, ttl_ms or self.ttl_ms, value]
        )
        return bool(int(answer))

    async def take(self) -> bool:
        """True if this holder has the lock now (it was free, or already this holder's)."""
        return await self._run("take")

    async def renew(self) -> bool:
        """True if still held (the expiry is extended)."""
        return await self._run("renew")

    async def release(self) -> bool:
        return await self._run("release")

    async def replace(self, value: str, ttl_s: float) -> bool:
        """Leave ``value`` for ``ttl_s`` in place of the lock (e.g. "done"); nobody holds it."""
        return await self._run("replace", value, max(1, int(ttl_s * 1000)))
