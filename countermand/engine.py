"""The engine: work one chunk of a job, under plain asyncio. It knows nothing of Celery.

For each batch of ``batch_size`` targets: one script checks the lease and the job status, skips
targets already final and marks the rest in flight; the calls then run with bounded concurrency
on the process's one HTTP session, each request through the one call path (one limiter token,
the retry policy, 429s shared); results are recorded in batches (one script per batch, at least
every ``FLUSH_INTERVAL``). A "too late" answer after an attempt that may have been applied is
resolved by a read (``countermand.truth``). A call that says the job itself is wrong
(credentials, base URL, billing plan) stops the job; the results already in hand are still
recorded. A stop (pause, abort, threshold) starts no new request: lanes give their unsent
targets back unmarked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from enum import StrEnum
from typing import Any

from countermand import truth
from countermand.calls import TargetCalls
from countermand.errors import (
    JobNotFound,
    JobStop,
    LeaseLost,
    Misconfigured,
    Stopped,
    TransientError,
    UnreachableError,
    UsageError,
)
from countermand.logs import bind_job
from countermand.models import RUNNABLE, JobKind, Outcome, TargetResult
from countermand.providers import CallResult, InvalidRow, Provider, provider_for
from countermand.providers.base import Target
from countermand.runtime import Runtime
from countermand.store import Acquired, Batch, JobMeta, Ledger, Mark, Released, Row
from countermand.work import JobWork

FLUSH_INTERVAL = 0.5
log = logging.getLogger("countermand.engine")
Item = tuple[int, Row, Mark, Batch]


class ChunkOutcome(StrEnum):
    FINISHED = "finished"
    STOPPED = "stopped"
    DONE = "done"
    BUSY = "busy"
    GONE = "gone"
    LOST = "lost"


async def run_chunk(
    rt: Runtime, job_id: str, chunk: int, reservation: str | None = None
) -> ChunkOutcome:
    """Work one chunk; what happened, or why nothing was done."""
    try:
        meta = await rt.store.meta(job_id)
    except JobNotFound:
        return ChunkOutcome.GONE
    ledger = rt.store.ledger(job_id, chunk, secrets.token_hex(8), meta.expire_at_ms)
    ttl_ms = int(rt.settings.lease_ttl * 1000)
    state = await ledger.acquire(ttl_ms, reservation)
    if state is not Acquired.OK:
        return ChunkOutcome(state.value)
    run = ChunkRun(rt, meta, ledger)
    tenant = f"{run.spec.vendor}:{meta.org}"
    with bind_job(job_id=job_id, chunk=chunk, vendor=run.spec.vendor, tenant=tenant):
        log.info("chunk started")
        try:
            async with run.work.running(), run.heartbeat(ttl_ms):
                outcome = await run.run()
        except LeaseLost:
            outcome = ChunkOutcome.LOST
        log.info("chunk done: %s", outcome.value)
        return outcome


class ChunkRun:
    def __init__(self, rt: Runtime, meta: JobMeta, ledger: Ledger) -> None:
        self.rt = rt
        self.meta = meta
        self.ledger = ledger
        self.work = JobWork(rt, meta.job_id, meta.provider, meta.org, meta.rate)
        self.spec = self.work.spec
        self.stop = self.work.stop
        self.lost = False

    @contextlib.asynccontextmanager
    async def heartbeat(self, ttl_ms: int) -> AsyncIterator[None]:
        async def beat() -> None:
            while True:
                await asyncio.sleep(ttl_ms / 3000)
                status = await self.ledger.renew(ttl_ms)
                if status is None:
                    self.lost = True
                if status is None or status not in RUNNABLE:
                    self.stop.set()

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def first(self) -> int:
        return self.ledger.chunk * self.meta.chunk_size

    async def run(self) -> ChunkOutcome:
        rows = await self.rt.store.chunk_rows(self.meta.job_id, self.ledger.chunk)
        while True:
            finished = False
            try:
                provider = None if self.meta.dry_run else self.make_provider()
            except JobStop as stop:
                await self.stop_job(stop)
            else:
                finished = await self.one_pass(provider, rows)
            if self.lost:
                raise LeaseLost("lease lost while working")
            answer = await self.ledger.release(finished, self.first, len(rows))
            if answer is Released.LOST:
                raise LeaseLost("lease lost before release")
            if answer is Released.RELEASED:
                return ChunkOutcome.FINISHED if finished else ChunkOutcome.STOPPED
            self.stop.clear()  # resumed meanwhile, or Redis lost results: another pass

    def make_provider(self) -> Provider:
        created_ms = int(self.meta.created_at * 1000)
        return provider_for(self.spec, self.meta.org, self.rt.wiring, created_ms)

    async def one_pass(self, provider: Provider | None, rows: Sequence[Row]) -> bool:
        """Send every non-final target once through the policy; True if all are final now.

        ``concurrency`` lanes take targets from a queue that one producer fills a whole batch at
        a time (one ``begin`` script per batch) whenever it holds a batch or less, so at most
        ``concurrency`` calls are in flight, no task is made per target, and the producer wakes
        once per batch, not once per target."""
        settings = self.rt.settings
        recorder = Recorder(self.ledger, settings.batch_size, self.work.caller.flush)
        queue: asyncio.Queue[Item | None] = asyncio.Queue()
        room = asyncio.Event()

        async def lane() -> None:
            while (item := await queue.get()) is not None:
                if queue.qsize() <= settings.batch_size:
                    room.set()
                await self.settle(provider, item, recorder)

        lanes = min(settings.concurrency, len(rows))
        try:
            async with recorder.running(), asyncio.TaskGroup() as group:
                for _ in range(lanes):
                    group.create_task(lane())
                complete = await self.produce(rows, queue, room)
                for _ in range(lanes):
                    await queue.put(None)
        except BaseExceptionGroup as errors:
            if errors.subgroup(LeaseLost):
                raise LeaseLost("lease lost while working") from errors
            raise
        return complete and recorder.all_final and not self.stop.is_set()

    async def produce(
        self, rows: Sequence[Row], queue: asyncio.Queue[Any], room: asyncio.Event
    ) -> bool:
        """Feed the lanes batch by batch; False if the job stopped before every target went."""
        size = self.rt.settings.batch_size
        for start in range(0, len(rows), size):
            while queue.qsize() > size:
                room.clear()
                await room.wait()
            if self.stop.is_set():
                return False
            batch = await self.ledger.begin(self.first + start, min(len(rows) - start, size))
            if not batch.runnable:
                return False
            for offset, mark in enumerate(batch.marks, start=start):
                if not mark.final:
                    queue.put_nowait((self.first + offset, rows[offset], mark, batch))
        return True

    async def settle(self, provider: Provider | None, item: Item, recorder: Recorder) -> None:
        index, row, mark, batch = item
        try:
            result = await self.attempt(provider, row, mark, batch)
        except _Halt as halt:
            await recorder.add(index, halt.result)
            await self.stop_job(halt.stop)
            return
        await recorder.add(index, result)

    async def attempt(
        self, provider: Provider | None, row: Row, mark: Mark, batch: Batch
    ) -> TargetResult:
        try:
            target = self.spec.validate(dict(zip(self.meta.columns, row, strict=True)))
        except InvalidRow as exc:
            return result_of(Outcome.INVALID, mark.attempts, message=str(exc))
        if provider is None:
            return result_of(Outcome.WOULD_CANCEL, mark.attempts)
        call = self.work.caller.target()
        try:
            answer = await self.answer(provider, target, call, mark, batch)
        except Stopped:
            # Nothing more is sent; the calls made are on the books, not final.
            return unsent(mark, call, since(mark, batch, call))
        except UnreachableError as exc:
            if not call.reached:
                stop = Misconfigured(f"every try failed to connect: {exc.message}")
                raise _Halt(stop, unsent(mark, call, since(mark, batch, call))) from exc
            return failed(exc, mark.attempts + call.made, since(mark, batch, call))
        except TransientError as exc:
            return failed(exc, mark.attempts + call.made, since(mark, batch, call))
        except JobStop as stop:
            raise _Halt(stop, unsent(mark, call, since(mark, batch, call))) from stop
        return TargetResult(
            outcome=answer.outcome,
            attempts=mark.attempts + call.made,
            updated_at=int(time.time()),
            http_status=answer.http_status,
            error_code=answer.error_code,
            error_message=answer.error_message,
            extra=answer.extra,
            uncertain_since=since(mark, batch, call),
        )

    async def answer(
        self, provider: Provider, target: Target, call: TargetCalls, mark: Mark, batch: Batch
    ) -> CallResult:
        """The vendor's answer for one target, resolved by a read where it must be."""
        if self.meta.kind is JobKind.POLL:
            return await provider.read(target, call)
        answer = await provider.cancel(target, call)
        first_uncertain = since(mark, batch, call)
        uncertain = first_uncertain is not None or batch.reads_required
        if not truth.needs_read(answer, target, uncertain):
            return answer
        evidence = truth.Evidence(
            since=first_uncertain if first_uncertain is not None else self.meta.created_at,
            tolerance=self.rt.settings.cancel_time_tolerance,
        )
        return await truth.resolve(provider, call, target, answer, evidence)

    async def stop_job(self, stop: JobStop) -> None:
        self.stop.set()
        detail = f"{self.spec.name} org {self.meta.org}: {stop.message}"
        if stop.error_code:
            detail += f" (code {stop.error_code})"
        log.warning("job %s (%s): %s", stop.status.value, stop.reason.value, detail)
        with contextlib.suppress(UsageError):  # already stopped by someone else: keep theirs
            await self.rt.store.transition(
                self.meta.job_id, stop.status, RUNNABLE, reason=stop.reason, detail=detail
            )


class _Halt(Exception):
    """A call said the job must stop; the target's books as they stand go with it."""

    def __init__(self, stop: JobStop, result: TargetResult) -> None:
        super().__init__(stop.message)
        self.stop = stop
        self.result = result


def since(mark: Mark, batch: Batch, call: TargetCalls) -> int | None:
    """Since when an attempt of this job at the target may have been applied: the earlier
    attempts' record, else this pass's mark time if one of its tries was uncertain."""
    if mark.uncertain_since is not None:
        return mark.uncertain_since
    return batch.marked_at if call.uncertain_tries else None


def unsent(
    mark: Mark, call: TargetCalls | None = None, uncertain_since: int | None = None
) -> TargetResult:
    """Not final, nothing on the wire: the in-flight mark is replaced by what is known."""
    made = call.made if call is not None else 0
    return TargetResult(
        None,
        mark.attempts + made,
        int(time.time()),
        uncertain_since=mark.uncertain_since if uncertain_since is None else uncertain_since,
    )


def result_of(outcome: Outcome, attempts: int, message: str | None = None) -> TargetResult:
    return TargetResult(outcome, attempts, int(time.time()), error_message=message)


def failed(exc: TransientError, attempts: int, uncertain_since: int | None) -> TargetResult:
    return TargetResult(
        Outcome.FAILED,
        attempts,
        int(time.time()),
        http_status=exc.http_status,
        error_code=exc.error_code,
        error_message=exc.message,
        uncertain_since=uncertain_since,
    )


class Recorder:
    """Collects results and writes them in batches: when ``size`` are waiting, and at least
    every ``FLUSH_INTERVAL`` seconds, so a dying worker loses little that was already done."""

    def __init__(
        self, ledger: Ledger, size: int, before: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.ledger = ledger
        self.size = size
        self.before = before  # the tokens spent go on the books before the results that used them
        self.pending: list[tuple[int, TargetResult]] = []
        self.all_final = True

    async def add(self, index: int, result: TargetResult) -> None:
        if not result.final:
            self.all_final = False
        self.pending.append((index, result))
        if len(self.pending) >= self.size:
            await self.flush()

    async def flush(self) -> None:
        batch, self.pending = self.pending, []
        if self.before is not None:
            await self.before()
        if await self.ledger.record(batch):
            log.info("job completed")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async def tick() -> None:
            while True:
                await asyncio.sleep(FLUSH_INTERVAL)
                if self.pending:
                    await self.flush()  # LeaseLost here resurfaces at the final flush

        ticker = asyncio.create_task(tick())
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await self.flush()
