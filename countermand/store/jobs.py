"""Jobs in Redis: create and stage, status objects, transitions, retry rounds, report rows, purge.

Memory per target stays small: the input rows of a chunk are one compact JSON string, and each
result is a short JSON list in a small hash of ``keys.BUCKET`` targets.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from countermand.errors import JobNotFound, StatusConflict, StoreUnavailable, UsageError
from countermand.models import (
    CODE_OUTCOMES,
    OUTCOME_CODES,
    REMAINING,
    RUNNABLE,
    JobInfo,
    JobKind,
    JobStatus,
    Outcome,
    Priority,
    TargetResult,
    empty_counts,
)
from countermand.store import keys
from countermand.store.base import StoreBase

Row = list[str | None]


class RetryAnswer(StrEnum):
    OK = "ok"  # the failed targets were queued again: their chunks are ready to claim
    NONE = "none"  # nothing failed
    SKIP = "skip"  # that round already started (a second sweep)


@dataclass(slots=True)
class JobMeta:
    job_id: str
    provider: str
    org: str
    rate: float
    dry_run: bool
    chunk_size: int
    chunks: int
    total: int
    status: JobStatus
    expire_at_ms: int
    columns: list[str]
    kind: JobKind = JobKind.CANCEL
    created_at: float = 0.0
    notify: str | None = None
    priority: Priority = Priority.NORMAL


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a job is created with (``countermand.jobs`` fills it from the request)."""

    job_id: str
    provider: str
    org: str
    rate: float
    dry_run: bool
    name: str | None
    chunk_size: int
    columns: Sequence[str]
    retention_s: int
    kind: JobKind = JobKind.CANCEL
    auto_retry: int = 0
    retry_delay: float = 60.0
    abort_at: float | None = None
    abort_min: int = 1
    verify: bool = False
    verify_delay: float = 30.0
    notify: str | None = None  # webhook URL for completed / paused / aborted
    submitted_by: str = ""  # the actor (audit.Actor) who submitted it
    priority: Priority = Priority.NORMAL


class JobsStore(StoreBase):
    async def ping(self, where: str) -> None:
        try:
            await self.redis.ping()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(f"cannot reach Redis at {where}: {exc}") from exc

    # --- creating and staging a job ---------------------------------------------------------

    async def create_job(self, new: NewJob) -> int:
        """Store the job's meta (status queued, nothing loaded); returns its expiry (ms)."""
        now = time.time()
        expire_at_ms = int((now + new.retention_s) * 1000)
        meta: dict[str, str | int | float] = {
            "v": 1,
            "kind": new.kind.value,
            "provider": new.provider,
            "org": new.org,
            "rate": new.rate,
            "dry_run": int(new.dry_run),
            "name": new.name or "",
            "status": JobStatus.QUEUED.value,
            "created_at": f"{now:.3f}",
            "updated_at": f"{now:.3f}",
            "expire_at": expire_at_ms,
            "chunk_size": new.chunk_size,
            "columns": json.dumps(list(new.columns)),
            "total": 0,
            "done": 0,
            "loaded": 0,
            "chunks": 0,
            "round": 0,
            "auto_retry": new.auto_retry,
            "retry_delay": new.retry_delay,
            "abort_at": "" if new.abort_at is None else new.abort_at,
            "abort_min": new.abort_min,
            "verify": int(new.verify),
            "verify_delay": new.verify_delay,
            "notify": new.notify or "",
            "submitted_by": new.submitted_by,
            "priority": new.priority.value,
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.job(new.job_id), mapping=cast(dict[Any, Any], meta))
            pipe.pexpireat(keys.job(new.job_id), expire_at_ms)
            pipe.zadd(keys.JOBS, {new.job_id: now})
            pipe.sadd(keys.ACTIVE, new.job_id)
            await pipe.execute()
        return expire_at_ms

    async def first_seen(self, job_id: str, hashes: Sequence[int], expire_at_ms: int) -> list[bool]:
        """For each 64-bit row hash, whether no earlier row of this job had it (one script)."""
        if not hashes:
            return []
        lines = "\n".join(f"{h % keys.DEDUP_BUCKETS}\t{h}" for h in hashes)
        flags: str = await self.scripts.dedup(
            keys=[], args=[keys.dedup_prefix(job_id), expire_at_ms, lines]
        )
        return [flag == "1" for flag in flags]

    async def drop_dedup(self, job_id: str) -> None:
        await self._unlink([keys.dedup(job_id, n) for n in range(keys.DEDUP_BUCKETS)])

    async def write_chunk(
        self,
        job_id: str,
        chunk: int,
        rows: Sequence[Row],
        invalid: Sequence[tuple[int, TargetResult]],
        expire_at_ms: int,
    ) -> bool:
        """One round trip: the chunk's rows, its invalid results and the counters together.
        True if the chunk has targets to send (it is staged in the open set)."""
        meta = keys.job(job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            name = keys.chunk_input(job_id, chunk)
            pipe.set(name, json.dumps(rows, separators=(",", ":"), ensure_ascii=False))
            pipe.pexpireat(name, expire_at_ms)
            buckets = set()
            for index, result in invalid:
                bucket = keys.results(job_id, keys.bucket_of(index))
                pipe.hset(bucket, str(index), result.encode())
                buckets.add(bucket)
            for bucket in buckets:
                pipe.pexpireat(bucket, expire_at_ms)
            if invalid:
                pipe.hincrby(meta, "n:" + OUTCOME_CODES[Outcome.INVALID], len(invalid))
                pipe.hincrby(meta, "done", len(invalid))
            pipe.hincrby(meta, "total", len(rows))
            staged = len(invalid) < len(rows)
            if staged:
                pipe.sadd(keys.open_chunks(job_id), chunk)
                pipe.pexpireat(keys.open_chunks(job_id), expire_at_ms)
            await pipe.execute()
        return staged

    async def finalize(self, job_id: str, chunks: int) -> bool:
        """Mark the input complete; True if that alone completed the job (nothing to send)."""
        completed = await self.scripts.finalize(
            keys=[keys.job(job_id), keys.ACTIVE], args=[job_id, chunks]
        )
        return bool(completed)

    async def open_chunks(self, job_id: str) -> list[int]:
        chunks = await self.redis.smembers(keys.open_chunks(job_id))
        return sorted(int(c) for c in chunks)

    async def make_ready(self, job_id: str) -> int:
        """The job's input is in: its open chunks become ready to claim (the runners are
        woken). Returns how many."""
        return int(await self.scripts.ready(keys=[keys.job(job_id)], args=[job_id]))

    # --- reading ------------------------------------------------------------------------------

    async def _raw(self, job_id: str) -> dict[str, str]:
        raw = cast(dict[str, str], await self.redis.hgetall(keys.job(job_id)))
        if not raw:
            raise JobNotFound(job_id)
        return raw

    async def meta(self, job_id: str) -> JobMeta:
        raw = await self._raw(job_id)
        return JobMeta(
            job_id=job_id,
            provider=raw["provider"],
            org=raw["org"],
            rate=float(raw["rate"]),
            dry_run=raw.get("dry_run") == "1",
            chunk_size=int(raw["chunk_size"]),
            chunks=int(raw.get("chunks") or 0),
            total=int(raw.get("total") or 0),
            status=JobStatus(raw["status"]),
            expire_at_ms=int(raw["expire_at"]),
            columns=json.loads(raw["columns"]),
            kind=JobKind(raw.get("kind", "cancel")),
            created_at=float(raw["created_at"]),
            notify=raw.get("notify") or None,
            priority=Priority(raw.get("priority") or Priority.NORMAL),
        )

    async def info(self, job_id: str) -> JobInfo:
        return job_info(job_id, await self._raw(job_id))

    async def status(self, job_id: str) -> JobStatus | None:
        raw = await self.redis.hget(keys.job(job_id), "status")
        return JobStatus(str(raw)) if raw else None

    async def list_jobs(self, limit: int = 1000) -> list[JobInfo]:
        ids = cast(list[str], await self.redis.zrevrange(keys.JOBS, 0, limit - 1))
        return await self._infos(ids)

    async def jobs_page(
        self, limit: int, cursor: tuple[float, str] | None
    ) -> tuple[list[JobInfo], tuple[float, str] | None]:
        """Newest first, after ``cursor`` (the created_at and id of the last job seen); the
        jobs and the cursor of the next page (None: no more)."""
        top: float | str = "+inf" if cursor is None else cursor[0]
        raw = cast(
            list[tuple[str, float]],
            await self.redis.zrevrangebyscore(
                keys.JOBS, top, "-inf", start=0, num=limit + 50, withscores=True
            ),
        )
        if cursor is not None:  # same-score jobs already seen sort before the cursor's id
            raw = [(j, t) for j, t in raw if t < cursor[0] or j < cursor[1]]
        page = raw[:limit]
        infos = await self._infos([j for j, _ in page])
        more = len(raw) > limit
        return infos, (page[-1][1], page[-1][0]) if more and page else None

    async def _infos(self, ids: Sequence[str]) -> list[JobInfo]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(keys.job(job_id))
            metas = cast(list[dict[str, str]], await pipe.execute())
        gone = [job_id for job_id, raw in zip(ids, metas, strict=True) if not raw]
        if gone:
            await self.redis.zrem(keys.JOBS, *gone)
        return [job_info(j, raw) for j, raw in zip(ids, metas, strict=True) if raw]

    async def chunk_rows(self, job_id: str, chunk: int) -> list[Row]:
        raw = await self.redis.get(keys.chunk_input(job_id, chunk))
        if raw is None:
            raise UsageError(f"job {job_id}: input of chunk {chunk} is missing (expired?)")
        rows: list[Row] = json.loads(raw)
        return rows

    async def results_of(self, job_id: str, indices: Sequence[int]) -> list[TargetResult | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for index in indices:
                pipe.hget(keys.results(job_id, keys.bucket_of(index)), str(index))
            raw = await pipe.execute()
        return [TargetResult.decode(value) if value else None for value in raw]

    async def report_rows(
        self, job_id: str, first_chunk: int = 0
    ) -> AsyncIterator[tuple[Row, TargetResult | None]]:
        """Every target in input order, from ``first_chunk`` on, with its stored result (None:
        never attempted)."""
        meta = await self.meta(job_id)
        for chunk in range(first_chunk, meta.chunks):
            first = chunk * meta.chunk_size
            rows = await self.chunk_rows(job_id, chunk)
            buckets = range(keys.bucket_of(first), keys.bucket_of(first + len(rows) - 1) + 1)
            async with self.redis.pipeline(transaction=False) as pipe:
                for bucket in buckets:
                    pipe.hgetall(keys.results(job_id, bucket))
                stored: dict[str, str] = {}
                for part in await pipe.execute():
                    stored.update(part)
            for offset, row in enumerate(rows):
                raw = stored.get(str(first + offset))
                yield row, TargetResult.decode(raw) if raw else None

    async def chunks_held(self, job_id: str) -> int:
        """Chunks of the job under a live lease now (``lua/held.lua``: one round trip, the
        Redis clock, counted as ``claim.lua`` and ``want.lua`` count them): a worker is still
        working them."""
        return int(await self.scripts.held(keys=[keys.leases(job_id)]))

    # --- changing status ---------------------------------------------------------------------

    async def transition(
        self,
        job_id: str,
        to: JobStatus,
        allowed: Iterable[JobStatus],
        *,
        reason: str | None = None,
        detail: str | None = None,
    ) -> int:
        """Move the job to ``to`` if its status is one of ``allowed``.

        Returns how many chunks were made ready to claim (when the job becomes runnable)."""
        answer = await self.scripts.transition(
            keys=[keys.job(job_id), keys.ACTIVE, keys.open_chunks(job_id)],
            args=[job_id, to.value, reason or "", detail or "", *[s.value for s in allowed]],
        )
        if answer[0] == "gone":
            raise JobNotFound(job_id)
        if answer[0] == "refused":
            raise StatusConflict(f"job {job_id} is {answer[1]}: cannot make it {to.value}")
        return int(answer[2]) if len(answer) > 2 else 0

    async def retry(
        self, job_id: str, expected_round: int | None = None
    ) -> tuple[RetryAnswer, list[int]]:
        """Queue the failed targets again for a new round; the chunks made ready to claim."""
        answer = await self.scripts.retry(
            keys=[
                keys.job(job_id),
                keys.ACTIVE,
                keys.failed(job_id),
                keys.open_chunks(job_id),
                keys.RETRY_DUE,
            ],
            args=[
                job_id,
                "" if expected_round is None else expected_round,
                keys.results_prefix(job_id),
                keys.BUCKET,
            ],
        )
        if answer[0] == "gone":
            raise JobNotFound(job_id)
        if answer[0] == "refused":
            raise StatusConflict(
                f"job {job_id} is {answer[1]}: only a completed or running job retries"
            )
        return RetryAnswer(answer[0]), sorted(int(c) for c in answer[2:])

    async def retries_due(self) -> list[tuple[str, int]]:
        """Jobs whose next --auto-retry round is due now, with the round each was at."""
        due = await self._due(keys.RETRY_DUE)
        if not due:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in due:
                pipe.hget(keys.job(job_id), "round")
            rounds = await pipe.execute()
        gone = [job_id for job_id, round_ in zip(due, rounds, strict=True) if round_ is None]
        if gone:  # purged or expired jobs
            await self.redis.zrem(keys.RETRY_DUE, *gone)
        return [(j, int(r)) for j, r in zip(due, rounds, strict=True) if r is not None]

    async def _due(self, zset: str) -> list[str]:
        now_s, _ = await self.redis.time()
        return cast(list[str], await self.redis.zrangebyscore(zset, "-inf", now_s))

    async def purge(self, job_id: str, *, force: bool = False) -> None:
        """Delete every key of a job. A queued or running job must be stopped first, unless
        ``force`` (a submit whose input was refused: nothing of it was dispatched)."""
        meta = await self.meta(job_id)
        if meta.status in RUNNABLE and not force:
            raise StatusConflict(
                f"job {job_id} is {meta.status.value}: abort or pause it before purge"
            )
        # A job still loading has written ``total`` rows in chunks but not yet counted them.
        chunks = max(meta.chunks, -(-meta.total // meta.chunk_size))
        total = max(meta.total, chunks * meta.chunk_size)
        await self._unlink(keys.all_job_keys(job_id, chunks, total))
        await self.drop_dedup(job_id)
        await self.redis.zrem(keys.JOBS, job_id)
        await self.redis.zrem(keys.RETRY_DUE, job_id)
        await self.redis.zrem(keys.VERIFY_DUE, job_id)
        await self.redis.srem(keys.ACTIVE, job_id)

    async def _unlink(self, names: Sequence[str]) -> None:
        for start in range(0, len(names), 1024):
            await self.redis.unlink(*names[start : start + 1024])


def job_info(job_id: str, raw: dict[str, str]) -> JobInfo:
    counts = empty_counts()
    for field, value in raw.items():
        if field.startswith("n:") and field[2:] in CODE_OUTCOMES:
            counts[CODE_OUTCOMES[field[2:]].value] = int(value)
    total = int(raw.get("total") or 0)
    counts[REMAINING] = total - int(raw.get("done") or 0)

    def number(name: str) -> float | None:
        return float(raw[name]) if raw.get(name) else None

    return JobInfo(
        job_id=job_id,
        kind=JobKind(raw.get("kind", "cancel")),
        provider=raw["provider"],
        org=raw["org"],
        name=raw.get("name") or None,
        status=JobStatus(raw["status"]),
        reason=raw.get("reason") or None,
        reason_detail=raw.get("reason_detail") or None,
        total=total,
        loaded=raw.get("loaded") == "1",
        counts=counts,
        rate=float(raw["rate"]),
        dry_run=raw.get("dry_run") == "1",
        created_at=float(raw["created_at"]),
        updated_at=number("updated_at"),
        finished_at=number("finished_at"),
        round=int(raw.get("round") or 0),
        auto_retry=int(raw.get("auto_retry") or 0),
        next_retry_at=number("next_retry_at"),
        abort_at=number("abort_at"),
        abort_min=int(raw["abort_min"]) if raw.get("abort_at") else None,
        verify=raw.get("verify") == "1",
        undecided=int(raw.get("undecided") or 0),
        submitted_by=raw.get("submitted_by") or None,
        priority=Priority(raw.get("priority") or Priority.NORMAL),
    )


def outcome_of(result: TargetResult | None) -> str:
    return result.outcome.value if result and result.outcome else REMAINING
