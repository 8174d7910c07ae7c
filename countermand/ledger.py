"""The books of one chunk while a worker owns it: lease, in-flight marks, results.

Ownership (README, "Chunk ownership"): a chunk is worked on only under a lease, an owner token
with an expiry on the Redis clock, renewed while the owner is alive. Every write of the owner is
fenced by that token: an owner that stalled past its lease and was replaced can no longer mark
or record anything, and stops. A chunk's message delivered twice finds the lease taken (``busy``)
or the chunk finished (``done``) and sends nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from countermand import keys
from countermand.errors import LeaseLost
from countermand.models import TargetResult
from countermand.store import Store


@dataclass(slots=True)
class Mark:
    """A target's state when a batch begins."""

    final: bool
    attempts: int  # attempts recorded before this one
    was_in_flight: bool  # an earlier attempt may have reached the API


def parse_mark(state: str) -> Mark:
    if state == "F":
        return Mark(final=True, attempts=0, was_in_flight=False)
    if state.startswith("~"):
        return Mark(final=False, attempts=int(state[1:]), was_in_flight=True)
    return Mark(final=False, attempts=int(state), was_in_flight=False)


class Ledger:
    def __init__(self, store: Store, job_id: str, chunk: int, owner: str, expire_at_ms: int):
        self._store = store
        self._scripts = store.scripts
        self.job_id = job_id
        self.chunk = chunk
        self.owner = owner
        self._expire_at_ms = expire_at_ms
        self._meta = keys.job(job_id)
        self._chunk_keys = [
            self._meta,
            keys.open_chunks(job_id),
            keys.leases(job_id),
            keys.owners(job_id),
        ]

    async def acquire(self, ttl_ms: int, reservation: str | None = None) -> str:
        """'ok', or 'done', 'gone', 'stopped', 'busy' (see acquire.lua)."""
        answer: str = await self._scripts.acquire(
            keys=self._chunk_keys, args=[self.chunk, self.owner, ttl_ms, reservation or ""]
        )
        return answer

    async def renew(self, ttl_ms: int) -> str | None:
        """The job's status after extending the lease, or None when the lease is lost."""
        status: str = await self._scripts.renew(
            keys=[keys.owners(self.job_id), keys.leases(self.job_id), self._meta],
            args=[self.chunk, self.owner, ttl_ms],
        )
        return status or None

    async def release(self, finished: bool) -> str:
        """'released', 'continue' (the job was resumed meanwhile: keep going) or 'lost'."""
        answer: str = await self._scripts.release(
            keys=self._chunk_keys, args=[self.chunk, self.owner, int(finished)]
        )
        return answer

    def _buckets(self, low: int, high: int) -> list[str]:
        """Result-bucket keys holding target indices ``low`` to ``high``, in order."""
        return [
            keys.results(self.job_id, b)
            for b in range(keys.bucket_of(low), keys.bucket_of(high) + 1)
        ]

    async def begin(self, first: int, count: int) -> tuple[int, str, list[Mark]]:
        """Targets ``first`` to ``first + count - 1``: (flag, job status, marks); flag 1 go,
        0 job not runnable; raises LeaseLost."""
        answer = await self._scripts.begin(
            keys=[self._meta, keys.owners(self.job_id), *self._buckets(first, first + count - 1)],
            args=[self.chunk, self.owner, self._expire_at_ms, first, count, keys.BUCKET],
        )
        flag, status = int(answer[0]), str(answer[1])
        if flag < 0:
            raise LeaseLost(f"job {self.job_id} chunk {self.chunk}: lease taken over")
        return flag, status, [parse_mark(str(s)) for s in answer[2:]]

    async def record(self, results: Sequence[tuple[int, TargetResult]]) -> bool:
        """Store and count results atomically; True if this completed the job."""
        if not results:
            return False
        low = min(index for index, _ in results)
        high = max(index for index, _ in results)
        args: list[object] = [
            self.chunk,
            self.owner,
            self._expire_at_ms,
            self.job_id,
            keys.BUCKET,
            keys.bucket_of(low),
            "\n".join(f"{index}\t{result.encode()}" for index, result in results),
        ]
        answer = await self._scripts.record(
            keys=[
                self._meta,
                keys.owners(self.job_id),
                keys.ACTIVE,
                keys.failed(self.job_id),
                *self._buckets(low, high),
            ],
            args=args,
        )
        if int(answer[0]) < 0:
            raise LeaseLost(f"job {self.job_id} chunk {self.chunk}: lease taken over")
        return bool(int(answer[1]))


async def reclaim_expired(store: Store, per_job: int = 500) -> list[tuple[str, int]]:
    """Chunks of runnable jobs whose lease expired; their leases are dropped for re-dispatch."""
    flat = await store.scripts.reclaim(keys=[keys.ACTIVE], args=[keys.PREFIX, per_job])
    return [(str(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]


async def take_reclaim_turn(store: Store, interval: float) -> bool:
    """True for at most one process across all hosts per ``interval`` seconds."""
    took = await store.redis.set(keys.RECLAIM_LOCK, "1", nx=True, px=max(1, int(interval * 1000)))
    return bool(took)
