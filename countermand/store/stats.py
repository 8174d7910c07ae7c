"""What the HTTP API's ``/metrics`` reads of Redis at scrape time: jobs by status, targets
remaining, the broker's backlog, and each tenant's limiter state.

Every read is bounded, whatever the keyspace holds: the newest ``MAX_JOBS`` jobs (pipelined
``HMGET``s), at most ``MAX_TENANTS`` tenant hashes found by ``SCAN`` in at most
``MAX_SCAN_CALLS`` calls, and one ``LLEN`` per priority list of the queue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from countermand.models import JobStatus
from countermand.store import keys
from countermand.store.base import StoreBase

MAX_JOBS = 10_000
MAX_TENANTS = 1_000
MAX_SCAN_CALLS = 1_000
SCAN_COUNT = 1_000
PIPELINE = 1_000
UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.PAUSED.value)
STATUSES = {status.value: status for status in JobStatus}

# kombu's Redis transport keeps a queue as one list per priority step: the queue's own name for
# step 0, ``<queue>\x06\x16<step>`` for the others (kombu.transport.redis: ``Channel.sep``,
# ``PRIORITY_STEPS``, ``Channel._q_for_pri``; the app sets no ``priority_steps`` of its own).
KOMBU_SEP = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)

# Tenant limiter hashes, ``cm:rl:<vendor>:<org>``; the per-job limiter keys under the same
# prefix are strings, which SCAN's TYPE filter leaves out.
TENANT_PATTERN = keys.tenant_rate("*", "*")
TENANT_PREFIX = TENANT_PATTERN.split("*", 1)[0]


@dataclass(frozen=True, slots=True)
class JobTally:
    statuses: dict[JobStatus, int]  # jobs by status
    remaining: int  # targets not final in queued, running and paused jobs


@dataclass(frozen=True, slots=True)
class TenantGauge:
    tenant: str  # "vendor:org"
    limit: float | None  # requests/s, as the workers last applied it
    effective_rate: float | None
    hold_s: float  # seconds until the tenant's 429 hold ends (0: none)


def broker_lists(queue: str) -> list[str]:
    """The Redis lists kombu keeps the messages of ``queue`` in, one per priority step."""
    return [queue if step == 0 else f"{queue}{KOMBU_SEP}{step}" for step in KOMBU_PRIORITY_STEPS]


def _number(raw: str | None) -> float | None:
    return float(raw) if raw else None


class StatsStore(StoreBase):
    async def job_tally(self, most: int = MAX_JOBS) -> JobTally:
        """Jobs by status and the targets they still have, over the newest ``most`` jobs."""
        ids = cast(list[str], await self.redis.zrevrange(keys.JOBS, 0, most - 1))
        statuses: Counter[JobStatus] = Counter()
        remaining = 0
        for start in range(0, len(ids), PIPELINE):
            for status, total, done in await self._job_fields(ids[start : start + PIPELINE]):
                if status not in STATUSES:  # expired (or not a job)
                    continue
                statuses[STATUSES[status]] += 1
                if status in UNFINISHED:
                    remaining += max(0, int(total or 0) - int(done or 0))
        return JobTally(dict(statuses), remaining)

    async def _job_fields(self, ids: Sequence[str]) -> list[list[str | None]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(keys.job(job_id), ["status", "total", "done"])
            return cast(list[list[str | None]], await pipe.execute())

    async def queue_length(self, queue: str) -> int:
        """Messages waiting in a Celery queue, every priority."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in broker_lists(queue):
                pipe.llen(name)
            lengths = cast(list[int], await pipe.execute())
        return sum(lengths)

    async def tenant_gauges(self, most: int = MAX_TENANTS) -> list[TenantGauge]:
        """The limiter state of up to ``most`` tenants (those active in the last hour)."""
        names = await self._tenant_keys(most)
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hmget(name, ["lim", "eff", "hold"])
            pipe.time()
            *fields, (now_s, now_us) = await pipe.execute()
        now = now_s * 1_000_000 + now_us
        gauges = []
        for name, (lim, eff, hold) in zip(names, fields, strict=True):
            held_us = max(0.0, float(hold or 0) - now)
            gauges.append(
                TenantGauge(name[len(TENANT_PREFIX) :], _number(lim), _number(eff), held_us / 1e6)
            )
        return gauges

    async def _tenant_keys(self, most: int) -> list[str]:
        found: set[str] = set()  # SCAN may return a key twice
        cursor = 0
        for _ in range(MAX_SCAN_CALLS):
            cursor, batch = await self.redis.scan(
                cursor, match=TENANT_PATTERN, count=SCAN_COUNT, _type="hash"
            )
            found.update(cast(list[str], batch))
            if cursor == 0 or len(found) >= most:
                break
        return sorted(found)[:most]
