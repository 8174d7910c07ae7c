"""The engine: work one chunk of a job, under plain asyncio. It knows nothing of Celery.

For each batch of ``batch_size`` targets: one script checks the lease and the job status, skips
targets already final and marks the rest in flight; the calls then run with bounded concurrency
on the process's one HTTP session, each attempt paced by the tenant's limiter and retried by the
policy; results are recorded in batches (one script per batch, at least every
``FLUSH_INTERVAL``). A call that says the job itself is wrong (credentials, base URL, billing
plan) stops the job; the results already in hand are still recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from countermand import readback
from countermand.errors import (
    JobStop,
    LeaseLost,
    Misconfigured,
    TransientError,
    Unauthorized,
    UnreachableError,
    UsageError,
)
from countermand.ledger import Ledger, Mark
from countermand.limiter import Pacer
from countermand.models import Outcome, TargetResult
from countermand.providers import (
    CallResult,
    InvalidRow,
    Provider,
    ProviderContext,
    ProviderSpec,
    get_spec,
)
from countermand.providers.base import Target
from countermand.retry import RetryPolicy
from countermand.runtime import Runtime
from countermand.store import RUNNABLE, JobMeta, Row

FLUSH_INTERVAL = 0.5
SHORT_NAP = 0.05


class Stopped(Exception):
    """The job stopped (paused, aborted, lease lost): make no new attempt."""


async def run_chunk(rt: Runtime, job_id: str, chunk: int, reservation: str | None = None) -> str:
    """Work one chunk. Returns what happened: 'finished', 'stopped', or why nothing was done
    ('done', 'busy', 'gone', 'lost')."""
    try:
        meta = await rt.store.meta(job_id)
    except UsageError:
        return "gone"
    ledger = Ledger(rt.store, job_id, chunk, secrets.token_hex(8), meta.expire_at_ms)
    ttl_ms = int(rt.settings.lease_ttl * 1000)
    state = await ledger.acquire(ttl_ms, reservation)
    if state != "ok":
        return state
    run = ChunkRun(rt, meta, ledger)
    try:
        async with run.heartbeat(ttl_ms):
            return await run.work()
    except LeaseLost:
        return "lost"


class ChunkRun:
    def __init__(self, rt: Runtime, meta: JobMeta, ledger: Ledger) -> None:
        self.rt = rt
        self.meta = meta
        self.ledger = ledger
        self.spec: ProviderSpec = get_spec(meta.provider)
        self.stop = asyncio.Event()
        self.lost = False
        self.policy = RetryPolicy.from_settings(rt.settings)
        self.pacer = rt.limiter.pacer(
            self.spec.vendor,
            meta.org,
            rt.settings.tenant_limit(self.spec.vendor, meta.org),
            meta.job_id,
            meta.rate,
        )

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

    async def work(self) -> str:
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
            answer = await self.ledger.release(finished)
            if answer == "lost":
                raise LeaseLost("lease lost before release")
            if answer == "released":
                return "finished" if finished else "stopped"
            self.stop.clear()  # 'continue': the job was resumed while this owner was stopping

    def make_provider(self) -> Provider:
        return provider_for(self.rt, self.meta, pace=lambda: self.pacer.wait_turn(self.nap))

    async def one_pass(self, provider: Provider | None, rows: Sequence[Row]) -> bool:
        """Send every non-final target once through the policy; True if all are final now.

        ``concurrency`` lanes take targets from a queue that one producer fills a whole batch at
        a time (one ``begin`` script per batch) whenever it holds a batch or less, so at most
        ``concurrency`` calls are in flight, no task is made per target, and the producer wakes
        once per batch, not once per target."""
        settings = self.rt.settings
        recorder = Recorder(self.ledger, settings.batch_size)
        queue: asyncio.Queue[tuple[int, Row, Mark] | None] = asyncio.Queue()
        room = asyncio.Event()
        pacer = self.pacer

        async def lane() -> None:
            while (item := await queue.get()) is not None:
                if queue.qsize() <= settings.batch_size:
                    room.set()
                index, row, mark = item
                await self.settle(provider, pacer, index, row, mark, recorder)

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
        first = self.ledger.chunk * self.meta.chunk_size
        size = self.rt.settings.batch_size
        for start in range(0, len(rows), size):
            while queue.qsize() > size:
                room.clear()
                await room.wait()
            count = min(len(rows) - start, size)
            flag, _status, marks = await self.ledger.begin(first + start, count)
            if flag == 0 or self.stop.is_set():
                return False
            for offset, mark in enumerate(marks, start=start):
                if mark.final:
                    continue
                queue.put_nowait((first + offset, rows[offset], mark))
        return True

    async def settle(
        self,
        provider: Provider | None,
        pacer: Pacer,
        index: int,
        row: Row,
        mark: Mark,
        recorder: Recorder,
    ) -> None:
        try:
            result = await self.attempt(provider, pacer, row, mark)
        except Stopped:
            recorder.all_final = False
            return
        except JobStop as stop:
            recorder.all_final = False
            await self.stop_job(stop)
            return
        await recorder.add(index, result)

    async def attempt(
        self, provider: Provider | None, pacer: Pacer, row: Row, mark: Mark
    ) -> TargetResult:
        try:
            target = self.spec.validate(dict(zip(self.meta.columns, row, strict=True)))
        except InvalidRow as exc:
            return result_of(Outcome.INVALID, mark.attempts, message=str(exc))
        if provider is None:
            return result_of(Outcome.WOULD_CANCEL, mark.attempts)
        tries = Tries()
        try:
            call = await self.policy.run(
                lambda: self.send(provider, pacer, target, tries), self.nap
            )
        except Stopped:
            if not tries.made:
                raise
            # Stopped between tries: not final, but the calls made are on the books.
            return TargetResult(None, mark.attempts + tries.made, int(time.time()))
        except UnreachableError as exc:
            if not tries.reached:
                raise Misconfigured(f"every try failed to connect: {exc.message}") from exc
            return failed(exc, mark.attempts + tries.made)
        except TransientError as exc:
            return failed(exc, mark.attempts + tries.made)
        if self.meta.kind == "cancel" and readback.may_be_ours(call, mark.was_in_flight, target):
            call = await readback.resolve(provider, pacer, self.policy, self.nap, target, call)
        return TargetResult(
            outcome=call.outcome,
            attempts=mark.attempts + tries.made,
            updated_at=int(time.time()),
            http_status=call.http_status,
            error_code=call.error_code,
            error_message=call.error_message,
            extra=call.extra,
        )

    async def send(
        self, provider: Provider, pacer: Pacer, target: Target, tries: Tries
    ) -> CallResult:
        """One try: wait for the tenant's slot, call, share a 429 with every worker."""
        if self.stop.is_set():
            raise Stopped
        await pacer.wait_turn(self.nap)
        tries.made += 1
        try:
            if self.meta.kind == "poll":
                return await provider.read(target)
            return await provider.cancel(target)
        except UnreachableError:
            raise
        except TransientError as exc:
            tries.reached = True
            if exc.http_status == 429:
                await pacer.throttled(exc.retry_after)
            raise

    async def nap(self, delay: float) -> None:
        """Sleep, unless the job stops first (short naps just sleep: cheaper, and the stop is
        seen right after)."""
        if self.stop.is_set():
            raise Stopped
        if delay <= SHORT_NAP:
            await asyncio.sleep(max(delay, 0))
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), delay)
            raise Stopped

    async def stop_job(self, stop: JobStop) -> None:
        self.stop.set()
        detail = f"{self.spec.name} org {self.meta.org}: {stop.message}"
        if stop.error_code:
            detail += f" (code {stop.error_code})"
        with contextlib.suppress(UsageError):  # already stopped by someone else: keep theirs
            await self.rt.store.transition(
                self.meta.job_id, stop.status, RUNNABLE, reason=stop.reason, detail=detail
            )


def provider_for(
    rt: Runtime, meta: JobMeta, pace: Callable[[], Awaitable[None]] | None = None
) -> Provider:
    """The job's provider on this worker: its base URL, the org's credential, the process's
    session. Raises ``JobStop`` when either is missing here."""
    spec = get_spec(meta.provider)
    base_url = spec.base_url(rt.settings)
    if not base_url:
        raise Misconfigured(f"no base URL configured for {spec.name} on this worker")
    try:
        credential = rt.credentials.require(spec.vendor, meta.org)
    except UsageError as exc:
        raise Unauthorized(f"on this worker: {exc}") from exc
    context = ProviderContext(
        session=rt.session,
        org=meta.org,
        base_url=base_url,
        credential=credential,
        timeout=rt.timeout,
        token_margin=rt.settings.token_refresh_margin,
        shared=rt.shared,
        pace=pace,
        job_created_ms=int(meta.created_at * 1000),
    )
    return spec.make(context)


@dataclass
class Tries:
    made: int = 0
    reached: bool = False  # did any try get past connecting?


def result_of(outcome: Outcome, attempts: int, message: str | None = None) -> TargetResult:
    return TargetResult(outcome, attempts, int(time.time()), error_message=message)


def failed(exc: TransientError, attempts: int) -> TargetResult:
    return TargetResult(
        Outcome.FAILED,
        attempts,
        int(time.time()),
        http_status=exc.http_status,
        error_code=exc.error_code,
        error_message=exc.message,
    )


class Recorder:
    """Collects results and writes them in batches: when ``size`` are waiting, and at least
    every ``FLUSH_INTERVAL`` seconds, so a dying worker loses little that was already done."""

    def __init__(self, ledger: Ledger, size: int) -> None:
        self.ledger = ledger
        self.size = size
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
        await self.ledger.record(batch)

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
