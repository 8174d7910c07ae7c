"""One global request pace per tenant (vendor, org) and per job, across processes and hosts.

The Redis side (``lua/limiter.lua``) is GCRA with reservations on the Redis server's clock: one
round trip reserves ``n`` consecutive slots that satisfy both the tenant's limit and the job's
rate, and answers when the first one starts and how far apart they are. Slots are instants, not
a bucket: a process spends each at its own time, so batching adds no burst.

``n`` grows with the rate so that a batch spans about ``BATCH_WINDOW`` seconds: at 20 requests/s
every request makes its own reservation; at 2,000/s one round trip serves 40 requests.
Each limit is paced ``headroom`` under its configured value (default 3%), absorbing the jitter
between our send and the vendor's count, and ``EARLY``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from countermand import keys
from countermand.scripts import Scripts

BATCH_WINDOW = 0.02
MAX_BATCH = 100
# A request may leave up to EARLY seconds before its slot instead of sleeping that long (a
# sleep below a millisecond costs a loop wake-up per request and is not that precise anyway).
# Leaving 1 ms early adds at most rate/1000 + 1 requests to any 1-second window: the headroom
# (3% by default) covers it at every rate.
EARLY = 0.001

Sleep = Callable[[float], Awaitable[None]]


def batch_size(rate: float) -> int:
    return max(1, min(MAX_BATCH, int(rate * BATCH_WINDOW)))


@dataclass
class Pacer:
    """Hands out this process's reserved slots for one (tenant, job) pair, in order."""

    scripts: Scripts
    tenant_key: str
    job_key: str
    tenant_interval_us: int
    job_interval_us: int
    n: int
    clock: Callable[[], float] = time.monotonic
    round_trips: int = 0
    _slots: deque[float] = field(default_factory=deque)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def next_slot(self) -> float:
        """The monotonic instant at which the caller may send its request."""
        if not self._slots:
            async with self._lock:
                if not self._slots:
                    await self._reserve()
        return self._slots.popleft()

    async def wait_turn(self, sleep: Sleep) -> None:
        slot = await self.next_slot()
        delay = slot - self.clock()
        if delay > EARLY:
            await sleep(delay)

    async def _reserve(self) -> None:
        wait_us, spacing_us = await self.scripts.limiter(
            keys=[self.tenant_key, self.job_key],
            args=[self.tenant_interval_us, self.job_interval_us, self.n],
        )
        self.round_trips += 1
        first = self.clock() + int(wait_us) / 1e6
        spacing = int(spacing_us) / 1e6
        self._slots.extend(first + i * spacing for i in range(self.n))


class RateLimiter:
    """Per-process factory of pacers (one per tenant and job)."""

    def __init__(self, scripts: Scripts, headroom: float = 0.03) -> None:
        self._scripts = scripts
        self._headroom = headroom
        self._pacers: dict[tuple[str, str, float, float], Pacer] = {}

    def interval_us(self, rate: float) -> int:
        return max(1, round(1e6 / (rate * (1.0 - self._headroom))))

    def pacer(
        self, vendor: str, org: str, tenant_rate: float, job_id: str, job_rate: float
    ) -> Pacer:
        key = (keys.tenant_rate(vendor, org), keys.job_rate(job_id), tenant_rate, job_rate)
        pacer = self._pacers.get(key)
        if pacer is None:
            pacer = Pacer(
                self._scripts,
                key[0],
                key[1],
                self.interval_us(tenant_rate),
                self.interval_us(job_rate),
                batch_size(min(tenant_rate, job_rate)),
            )
            if len(self._pacers) > 256:  # finished jobs' pacers: drop, never grow without bound
                self._pacers.clear()
            self._pacers[key] = pacer
        return pacer
