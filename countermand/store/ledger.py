"""The books of one chunk while a worker owns it: lease, in-flight marks, results.

Ownership (README, "Chunk ownership"): a chunk is worked on only under a lease, an owner token
with an expiry on the Redis clock, renewed while the owner is alive. Every write of the owner is
fenced by that token: an owner that stalled past its lease and was replaced can no longer mark
or record anything, and stops. The lease is taken when a runner claims the chunk
(``lua/claim.lua``): a chunk is ready to claim only while nobody holds it.

What each attempt may have done (README, "Outcomes under faults"): ``begin`` marks every target
in flight before its calls; a mark never replaced by a result means a call may have reached
the vendor. ``begin`` answers, per target, since when an attempt of this job may have been
applied without a definite answer (``Mark.uncertain_since``), from the stored result and from
a mark left by a worker that died; results carry it on through retry rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from countermand.errors import LeaseLost
from countermand.models import TargetResult
from countermand.store import keys


class Release(StrEnum):
    """How an owner gives its chunk back."""

    FINISHED = "1"  # it saw every target final (Redis checks)
    STOPPING = "0"  # the job stopped (pause, abort): released unless it was resumed meanwhile
    HANDING_BACK = "2"  # this process is shutting down: ready at once for another to claim


class Released(StrEnum):
    RELEASED = "released"
    CONTINUE = "continue"  # the job was resumed while this owner was stopping: keep going
    UNFINISHED = "unfinished"  # Redis holds a target that is not final (lost writes): again
    LOST = "lost"  # another owner holds the chunk


@dataclass(frozen=True, slots=True)
class Mark:
    """A target's state when a batch begins."""

    final: bool
    attempts: int  # attempts recorded before this one
    uncertain_since: int | None = None  # an earlier attempt may have been applied, since then


@dataclass(slots=True)
class Batch:
    """What ``begin`` answered for a batch."""

    runnable: bool
    status: str
    marked_at: int  # Redis time (s) of the in-flight marks
    reads_required: bool  # Redis may have lost writes since the job was created
    marks: list[Mark]


FINAL = Mark(final=True, attempts=0)
FRESH = Mark(final=False, attempts=0)  # never tried: most targets of a first pass


def parse_mark(state: str) -> Mark:
    if state == "F":
        return FINAL
    if state == "0":
        return FRESH
    attempts, _, since = state.partition(":")
    return Mark(final=False, attempts=int(attempts), uncertain_since=int(since) if since else None)


class Ledger:
    def __init__(self, scripts: Any, job_id: str, chunk: int, owner: str, expire_at_ms: int):
        self._scripts = scripts
        self.job_id = job_id
        self.chunk = chunk
        self.owner = owner
        self._expire_at_ms = expire_at_ms
        self._meta = keys.job(job_id)
        self._chunk_keys = keys.chunk_keys(job_id)

    async def renew(self, ttl_ms: int) -> str | None:
        """The job's status after extending the lease, or None when the lease is lost."""
        status: str = await self._scripts.renew(
            keys=[keys.owners(self.job_id), keys.leases(self.job_id), self._meta],
            args=[self.chunk, self.owner, ttl_ms],
        )
        return status or None

    async def release(self, how: Release, first: int, count: int) -> Released:
        """Give the chunk back; ``FINISHED``: every target of ``first``..``first+count-1`` was
        seen final (checked again in Redis)."""
        answer = await self._scripts.release(
            keys=[*self._chunk_keys, *self._buckets(first, first + max(count, 1) - 1)],
            args=[self.chunk, self.owner, how.value, first, count, keys.BUCKET, self.job_id],
        )
        return Released(answer)

    def _buckets(self, low: int, high: int) -> list[str]:
        """Result-bucket keys holding target indices ``low`` to ``high``, in order."""
        return [
            keys.results(self.job_id, b)
            for b in range(keys.bucket_of(low), keys.bucket_of(high) + 1)
        ]

    async def begin(self, first: int, count: int) -> Batch:
        """Targets ``first`` to ``first + count - 1``; raises LeaseLost."""
        answer = await self._scripts.begin(
            keys=[
                self._meta,
                keys.owners(self.job_id),
                keys.EPOCH,
                *self._buckets(first, first + count - 1),
            ],
            args=[self.chunk, self.owner, self._expire_at_ms, first, count, keys.BUCKET],
        )
        flag, status = int(answer[0]), str(answer[1])
        if flag < 0:
            raise LeaseLost(f"job {self.job_id} chunk {self.chunk}: lease taken over")
        if flag == 0:
            return Batch(False, status, 0, False, [])
        states = str(answer[4])
        marks = [parse_mark(state) for state in states.split(",")] if states else []
        return Batch(True, status, int(answer[2]), bool(int(answer[3])), marks)

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
