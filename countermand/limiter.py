"""One global request pace per tenant (vendor, org) and per job, across processes and hosts.

The backend (``LimiterBackend``; Redis: ``lua/limiter.lua`` through the store, and an
in-memory stub for unit tests) is GCRA with reservations on one clock: one round trip reserves
``n`` consecutive slots that satisfy both the tenant's limit and the job's rate, and answers
when the first one starts and how far apart they are. Slots are instants, not a bucket: a
process spends each at its own time, so batching adds no burst. A job that is not runnable
(paused, aborted) gets no slot: ``wait_turn`` raises ``Stopped``.

``n`` grows with the rate so that a batch spans about ``BATCH_WINDOW`` seconds: at 20 requests/s
every request makes its own reservation; at 2,000/s one round trip serves up to 40 requests.
A reservation asks no more slots than this process can use: the callers waiting for one, and
those expected within ``late`` of them (the rate callers came at since the last reservation).
A process whose lanes are all on the wire would let the rest pass unused, and they are lost to
the job in every process; asking for the waiting callers alone made about one round trip per
request at 500/s (``bench/limits.py``'s overhead case: 0.994, against 0.126 now).

Several jobs on one tenant: each reservation also answers the job's share of the tenant's rate
(priority and fair share, ``lua/limiter.lua``); the job is paced at its share, and ``n``
follows it.

Each limit (the tenant's, and the job's own ``--rate``) is paced ``headroom`` under its
configured value (default 3%), absorbing the jitter between our send and the vendor's count,
and ``EARLY``: both are ceilings over any one-second window.

Tokens: every request spends one slot (``spend``, called by ``countermand.calls`` right before
it sends); the count is reported to the tenant's ``tokens`` with the next reservation and by
``flush``, so that a test can hold requests sent against tokens spent.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from countermand.errors import Stopped
from countermand.store import keys
from countermand.store.tenants import Adaptation, Ask, LimiterBackend

BATCH_WINDOW = 0.02
MAX_BATCH = 100
# A request may leave up to EARLY seconds before its slot instead of sleeping that long (a
# sleep below a millisecond costs a loop wake-up per request and is not that precise anyway).
# Leaving 1 ms early adds at most rate/1000 + 1 requests to any 1-second window: the headroom
# (3% by default) covers it at every rate.
EARLY = 0.001
# Slots are reserved at most HORIZON seconds ahead: a 429 hold or a lowered rate reaches every
# process of every host within this time.
HORIZON = 0.1
# A slot missed by more than the pacer's ``late`` (half the headroom: 15 ms by default) is not
# used, whether the caller came to it late or slept past it: a process that stalled (a busy
# loop, a GC pause, a paused VM) would otherwise send its overdue slots in a burst and put more
# than the limit into one second (seen in CI: 200 in one second at a limit of 200/s). Slots at
# least 1/limit apart, each used between EARLY before and ``late`` after its time, put at most
# limit x (1 - headroom) x (1 + EARLY + late) + 1 requests into any one-second window: under
# the limit.
MIN_LATE = 0.002

Sleep = Callable[[float], Awaitable[None]]


def batch_size(rate: float) -> int:
    return max(1, min(MAX_BATCH, int(rate * BATCH_WINDOW)))


@dataclass
class Pacer:
    """Hands out this process's reserved slots for one (tenant, job) pair, in order."""

    backend: LimiterBackend
    tenant_key: str
    job_key: str
    meta_key: str
    share_key: str
    job_id: str
    priority: str
    limit: float
    rate: float
    headroom: float
    adaptation: Adaptation
    n: int
    clock: Callable[[], float] = time.monotonic
    round_trips: int = 0
    missed: int = 0  # slots not used because this process came to them too late
    effective_rate: float = 0.0
    share: float = 0.0  # requests/s the tenant granted the job at the last reservation
    hold_until: float = 0.0  # monotonic: no request before this (a 429 with Retry-After)
    unreported: int = 0  # tokens spent and not yet reported
    waiting: int = 0  # callers waiting for a slot now
    arrivals: int = 0  # callers that came for a slot since the last reservation
    arrival_rate: float = 0.0  # callers per second, as of the last reservation
    reserved_at: float | None = None  # monotonic
    _slots: deque[float] = field(default_factory=deque)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def next_slot(self, sleep: Sleep) -> float:
        """The monotonic instant at which the caller may send its request."""
        if not self._slots:
            async with self._lock:
                while not self._slots:
                    await self._reserve(sleep, self.usable())
        return self._slots.popleft()

    @property
    def late(self) -> float:
        return max(MIN_LATE, self.headroom / 2)

    async def wait_turn(self, sleep: Sleep) -> int:
        """Wait for this process's next slot. A slot reserved before a hold began is dropped
        and a new one taken after the hold; so is a slot missed by more than ``late``, whether
        the caller came to it late or slept past it (a stall of D seconds would otherwise put
        up to D x limit extra requests into one second). Returns how many slots this caller
        dropped so (``countermand_limiter_missed_slots_total``); raises ``Stopped`` when the job
        is not runnable."""
        missed = 0
        while True:
            self.waiting += 1  # a caller without a slot yet
            self.arrivals += 1
            try:
                slot = await self.next_slot(sleep)
            finally:
                self.waiting -= 1
            delay = slot - self.clock()
            if delay > EARLY:
                await sleep(delay)
                # woken late (a stalled loop wakes every sleeper at once): overdue is missed
                delay = slot - self.clock()
            if delay < -self.late:
                self.missed += 1
                missed += 1
                continue
            if self.clock() >= self.hold_until:
                return missed

    def spend(self) -> None:
        """A request is about to be sent on the slot just waited for."""
        self.unreported += 1

    async def flush(self) -> None:
        if self.unreported:
            spent, self.unreported = self.unreported, 0
            await self.backend.report_tokens(self.tenant_key, spent)

    def usable(self) -> int:
        """Slots to ask for: the callers waiting and those expected within ``late``, at most
        ``n``. A slot no caller takes in time is missed, and the job's rate it used is lost to
        every process (seen: 3% of a job's rate at 200 ms latency, from a process whose lanes
        were all on the wire)."""
        now = self.clock()
        if self.reserved_at is not None and now > self.reserved_at:
            self.arrival_rate = self.arrivals / (now - self.reserved_at)
        self.arrivals, self.reserved_at = 0, now
        coming = int(self.arrival_rate * self.late)
        return min(self.n, max(self.waiting + coming, 1))

    async def _reserve(self, sleep: Sleep, count: int) -> None:
        """Reserve ``count`` slots (``usable``, at most ``n``)."""
        spent, self.unreported = self.unreported, 0
        answer = await self.backend.reserve(
            Ask(
                self.tenant_key,
                self.job_key,
                self.meta_key,
                self.share_key,
                self.job_id,
                self.priority,
                self.limit,
                self.rate,
                self.headroom,
                count,
                self.limit * self.adaptation.recovery,
                int(HORIZON * 1e6),
                spent,
            )
        )
        self.round_trips += 1
        if answer.stopped:
            raise Stopped
        self.effective_rate = answer.effective_rate
        self.share = answer.share
        # A batch spans about BATCH_WINDOW at the job's share: at a low share, fewer slots at a
        # time, so that a share that grows again is used within that window.
        self.n = batch_size(min(answer.share or self.rate, self.rate))
        now = self.clock()
        self.hold_until = max(self.hold_until, now + answer.held_us / 1e6)
        wait, spacing = answer.wait_us / 1e6, answer.spacing_us / 1e6
        if spacing == 0:  # refused: our turn is beyond the horizon, ask again when it is near
            await sleep(max(wait - HORIZON / 2, EARLY))
            return
        # the slots reserved, ``count``: not the new ``n`` (a larger one would send slots the
        # limiter never granted, over the rate, the moment a job's share grows back)
        self._slots.extend(now + wait + i * spacing for i in range(count))

    async def throttled(self, retry_after: float | None) -> None:
        """The vendor answered 429: tell every worker (hold or slow the tenant) and drop the
        slots this process had reserved, which were computed before the 429."""
        if retry_after:
            self.hold_until = max(self.hold_until, self.clock() + retry_after)
        await self.backend.throttle(
            self.tenant_key, int((retry_after or 0) * 1e6), self.limit, self.adaptation
        )
        self._slots.clear()

    def drop_slots(self) -> None:
        """The job stopped: slots reserved ahead are not to be used."""
        self._slots.clear()


class RateLimiter:
    """Per-process factory of pacers (one per tenant and job)."""

    def __init__(
        self, backend: LimiterBackend, headroom: float = 0.03, adaptation: Adaptation | None = None
    ) -> None:
        self._backend = backend
        self._headroom = headroom
        self._adaptation = adaptation or Adaptation()
        self._pacers: dict[tuple[str, str, float, float], Pacer] = {}

    def pacer(
        self,
        vendor: str,
        org: str,
        tenant_rate: float,
        job_id: str,
        job_rate: float,
        priority: str = "normal",
    ) -> Pacer:
        key = (keys.tenant_rate(vendor, org), keys.job_rate(job_id), tenant_rate, job_rate)
        pacer = self._pacers.get(key)
        if pacer is None:
            pacer = Pacer(
                self._backend,
                key[0],
                key[1],
                keys.job(job_id),
                keys.tenant_shares(vendor, org),
                job_id,
                priority,
                tenant_rate,
                job_rate,
                self._headroom,
                self._adaptation,
                batch_size(min(tenant_rate, job_rate)),
            )
            if len(self._pacers) > 256:  # finished jobs' pacers: drop, never grow without bound
                self._pacers.clear()
            self._pacers[key] = pacer
        return pacer
