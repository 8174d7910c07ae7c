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
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
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
from countermand.flow import Load
from countermand.logs import bind_job
from countermand.models import RUNNABLE, JobKind, Outcome, TargetResult
from countermand.providers import CallResult, InvalidRow, Provider, provider_for
from countermand.providers.base import Target
from countermand.runtime import Runtime
from countermand.store import Batch, JobMeta, Ledger, Mark, Release, Released, Row
from countermand.work import JobWork, until

FLUSH_INTERVAL = 0.5
log = logging.getLogger("countermand.engine")
Item = tuple[int, Row, Mark, Batch]


class ChunkOutcome(StrEnum):
    FINISHED = "finished"
    STOPPED = "stopped"
    HANDED_BACK = "handed_back"  # this process is shutting down: another claims it at once
    GONE = "gone"
    LOST = "lost"


async def run_claimed(rt: Runtime, job_id: str, chunk: int, owner: str) -> ChunkOutcome:
    """Work a chunk whose lease ``owner`` holds (a runner claimed it: ``countermand.runner``)."""
    run = await start_run(rt, job_id, chunk, owner)
    return ChunkOutcome.GONE if run is None else await run.work_chunk()


async def start_run(rt: Runtime, job_id: str, chunk: int, owner: str) -> ChunkRun | None:
    """The run of a claimed chunk, not started; None if the job is gone."""
    try:
        meta = await rt.store.meta(job_id)
    except JobNotFound:
        return None
    return ChunkRun(rt, meta, rt.store.ledger(job_id, chunk, owner, meta.expire_at_ms))


class ChunkRun:
    def __init__(self, rt: Runtime, meta: JobMeta, ledger: Ledger) -> None:
        self.rt = rt
        self.meta = meta
        self.ledger = ledger
        self.work = JobWork(rt, meta.job_id, meta.provider, meta.org, meta.rate, meta.priority)
        self.spec = self.work.spec
        self.stop = self.work.stop
        self.flow = rt.flows.of(meta.job_id, self.work.pacer, meta.chunk_size)
        self.work.caller.flow = self.flow
        self.lanes_pool: LanePool | None = None
        self.left = meta.chunk_size  # targets of the pass not settled yet (``demand``)
        self.unsent = meta.chunk_size  # targets of the pass no lane has taken yet
        self.lost = False
        self.handing_back = False

    async def work_chunk(self) -> ChunkOutcome:
        ttl_ms = int(self.rt.settings.lease_ttl * 1000)
        meta, chunk = self.meta, self.ledger.chunk
        tenant = f"{self.spec.vendor}:{meta.org}"
        with bind_job(job_id=meta.job_id, chunk=chunk, vendor=self.spec.vendor, tenant=tenant):
            log.info("chunk started")
            try:
                async with self.work.running(), self.heartbeat(ttl_ms):
                    with self.rt.flows.joined(self.flow, self):
                        outcome = await self.run()
            except LeaseLost:
                outcome = ChunkOutcome.LOST
            log.info("chunk done: %s", outcome.value)
            return outcome

    def hand_back(self) -> None:
        """This process is shutting down: start no new request, record what is in flight,
        then give the chunk back for another process to claim at once."""
        self.handing_back = True
        self.stop.set()

    # --- Lanes (sized by the job's flow) -----------------------------------------------------

    @property
    def lanes(self) -> int:
        return self.lanes_pool.lanes if self.lanes_pool is not None else 0

    @property
    def demand(self) -> int:
        """Lanes this run can keep busy now: its targets not settled yet in this pass (at a
        chunk's tail fewer than its lanes; the flow gives the rest to the job's other runs)."""
        return self.left

    def resize(self, lanes: int) -> int:
        return self.lanes_pool.resize(lanes) if self.lanes_pool is not None else 0

    @contextlib.asynccontextmanager
    async def heartbeat(self, ttl_ms: int) -> AsyncIterator[None]:
        done = asyncio.Event()  # a flag, not a cancel: see ``Recorder.running``

        async def beat() -> None:
            while not await until(done, ttl_ms / 3000):
                status = await self.ledger.renew(ttl_ms)
                if status is None:
                    self.lost = True
                if status is None or status not in RUNNABLE:
                    self.stop.set()

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            done.set()
            with contextlib.suppress(Exception):
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
            how = Release.FINISHED if finished else Release.STOPPING
            if self.handing_back and not finished:
                how = Release.HANDING_BACK
            answer = await self.ledger.release(how, self.first, len(rows))
            if answer is Released.LOST:
                raise LeaseLost("lease lost before release")
            if answer is Released.RELEASED:
                return RELEASED_AS[how]
            self.stop.clear()  # resumed meanwhile, or Redis lost results: another pass

    def make_provider(self) -> Provider:
        created_ms = int(self.meta.created_at * 1000)
        return provider_for(self.spec, self.meta.org, self.rt.wiring, created_ms)

    async def one_pass(self, provider: Provider | None, rows: Sequence[Row]) -> bool:
        """Send every non-final target once through the policy; True if all are final now.

        Lanes take targets from a queue that one producer fills a whole batch at a time (one
        ``begin`` script per batch) whenever it holds a batch or less, so no task is made per
        target and the producer wakes once per batch, not once per target. How many lanes run
        is the job's flow's call (``countermand.flow``: in flight follows latency), resized
        while the pass runs, within the process's in-flight ceiling."""
        settings = self.rt.settings
        recorder = Recorder(self.ledger, settings.batch_size, self.work.caller.flush)
        queue: asyncio.Queue[Item | None] = asyncio.Queue()
        room = asyncio.Event()

        async def lane() -> None:
            try:
                while (item := await queue.get()) is not None:
                    self.unsent -= 1
                    if queue.qsize() <= settings.batch_size:
                        room.set()
                    await self.settle(provider, item, recorder)
                    self.left -= 1
                    if pool.excess and pool.retire():
                        return
                pool.retire()  # ending anyway: one fewer to retire, if the pool was shrinking
                queue.put_nowait(None)  # the end mark, for the next lane (one added late too)
            finally:
                pool.gone()

        self.left = self.unsent = len(rows)
        try:
            async with recorder.running(), asyncio.TaskGroup() as group:
                pool = LanePool(group, lane, self.rt.flows.load, len(rows), lambda: self.unsent)
                self.lanes_pool = pool
                pool.resize(self.flow.lanes_per_run(), first=True)
                complete = await self.produce(rows, queue, room)
                pool.close()
                queue.put_nowait(None)
        except BaseExceptionGroup as errors:
            if errors.subgroup(LeaseLost):
                raise LeaseLost("lease lost while working") from errors
            raise
        finally:
            self.lanes_pool = None
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
                if mark.final:  # settled in an earlier pass: nothing to send or to wait for
                    self.left -= 1
                    self.unsent -= 1
                else:
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


RELEASED_AS = {
    Release.FINISHED: ChunkOutcome.FINISHED,
    Release.STOPPING: ChunkOutcome.STOPPED,
    Release.HANDING_BACK: ChunkOutcome.HANDED_BACK,
}


class LanePool:
    """The lanes of one pass: grown (within the process's ``Load``) and shrunk (a lane retires
    after its current target) as the flow says; never more than the chunk has targets.

    Once the producer is done (``close``), a lane is still added for each target queued and
    not taken: at a chunk's tail its lanes may all be on the wire with up to two batches still
    queued, and at 1 s latency those waited a latency for a lane (seen: the last requests of a
    job at 1,000/s came up to 0.26 s after the others, and its last second at 400/s). The
    lanes end on one end mark that each passes on to the next, so a lane added late ends too."""

    def __init__(
        self,
        group: asyncio.TaskGroup,
        lane: Callable[[], Coroutine[Any, Any, None]],
        load: Load,
        most: int,
        queued: Callable[[], int],
    ) -> None:
        self._group = group
        self._lane = lane
        self._load = load
        self._most = most
        self._queued = queued  # targets queued and not taken by a lane yet
        self.count = 0
        self.excess = 0
        self._closed = False

    @property
    def lanes(self) -> int:
        return self.count - self.excess

    @property
    def closed(self) -> bool:
        return self._closed

    def resize(self, lanes: int, *, first: bool = False) -> int:
        """Grow (within the process's ``Load``) or shrink to ``lanes``; the lanes now. The
        ``first`` sizing of a pass always gets one lane, whatever the ceiling. Once the
        producer is done, growth is for the targets still queued only (a lane more would find
        only the end mark)."""
        lanes = min(max(lanes, 1), self._most)
        now = self.lanes
        if self._closed:
            lanes = min(lanes, now + self._queued())
        if lanes == now:
            return now
        if lanes < now:
            self.excess += now - lanes
            return lanes
        cancel = min(self.excess, lanes - now)
        self.excess -= cancel
        more = self._load.grant(lanes - now - cancel)
        if first and self.count == 0 and more == 0:
            self._load.lanes += 1
            more = 1
        for _ in range(more):
            self.count += 1
            self._group.create_task(self._lane())
        return self.lanes

    def retire(self) -> bool:
        """Called by a lane between targets: True if it should end (the pool is shrinking)."""
        if self.excess > 0:
            self.excess -= 1
            return True
        return False

    def gone(self) -> None:
        self.count -= 1
        self._load.give_back()

    def close(self) -> None:
        """The producer is done: every target of the pass is queued, then the end mark."""
        self._closed = True


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
        # Stopped by a flag, never cancelled: a cancel that lands in a Redis command (one
        # waiting out an outage, ``countermand.store.outage``) can be lost to a timeout inside
        # the client, and the flusher would then never end (seen: chunk runs hung at their end).
        done = asyncio.Event()

        async def tick() -> None:
            while not await until(done, FLUSH_INTERVAL):
                if self.pending:
                    await self.flush()  # LeaseLost here resurfaces at the final flush

        ticker = asyncio.create_task(tick())
        try:
            yield
        finally:
            done.set()
            with contextlib.suppress(Exception):
                await ticker
            await self.flush()
