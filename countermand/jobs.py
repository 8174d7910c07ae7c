"""Job operations shared by every interface (the CLI, the demo, cleanup, the HTTP API): one way
to prepare and submit a job, and the job controls (pause, resume, abort, retry, purge).

Submitting is three steps, each once: ``open_job`` checks the request and creates the job
(queued, nothing loaded); ``StagedJob.load`` streams the rows into Redis chunk by chunk
(validation, duplicates, invalid rows recorded) and releases nothing; ``StagedJob.release``
makes the staged chunks ready to claim once the whole input was read and accepted. An input that
fails part-way therefore sends nothing: an unreadable file or an encoding error (``InputError``)
deletes the job entirely; any other failure (the CLI killed, Redis lost) leaves it ``aborted``
with reason ``submit_interrupted``. ``submit`` does the three in a row.

Chunks never travel in the broker: the workers' runners claim ready chunks from Redis, the
highest priority first (``countermand.runner``); a job's chunks become ready when it is
released, resumed or retried, and the runners are woken at once. What still goes to the workers
through Celery (the --verify passes) goes through a port (``Dispatch``): the Celery adapter lives
in ``countermand.dispatch``, never here. Every action names its actor and is recorded in the
audit log (``countermand.audit``) once it took effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from countermand import audit
from countermand.audit import Actor
from countermand.credentials import CredentialStore
from countermand.errors import InputError, UsageError
from countermand.inputs import InputRow
from countermand.models import (
    RUNNABLE,
    JobInfo,
    JobKind,
    JobStatus,
    LimitedBy,
    Outcome,
    Priority,
    StopReason,
    TargetResult,
)
from countermand.providers import InvalidRow, ProviderSpec, get_spec
from countermand.settings import Settings
from countermand.store import NewJob, RetryAnswer, Row, Store, TenantState
from countermand.store.tenants import Share

Rows = AsyncIterable[InputRow] | Iterable[InputRow]
log = logging.getLogger("countermand.jobs")


class Dispatch(Protocol):
    """How the core hands work to the workers (``countermand.dispatch.CeleryDispatch``)."""

    def verify(self, job_ids: Sequence[str]) -> None: ...


@dataclass(slots=True)
class SubmitRequest:
    spec: ProviderSpec
    org: str
    rate: float | None = None
    dry_run: bool = False
    name: str | None = None
    kind: JobKind = JobKind.CANCEL
    auto_retry: int = 0  # --auto-retry N: rounds of the failed targets, scheduled
    abort_at: float | None = None  # --abort-at PCT
    abort_min: int = 1  # --abort-min N
    verify: bool = False  # --verify: read canceled commands back
    notify: str | None = None  # webhook URL (default: COUNTERMAND_WEBHOOK_URL)
    priority: Priority = Priority.NORMAL  # --priority: how the tenant's rate is shared

    def audited(self) -> dict[str, Any]:
        """The request as the audit log keeps it (no secret: the URL loses its query)."""
        return {
            "provider": self.spec.name, "org": self.org, "kind": self.kind.value,
            "rate": self.rate, "dry_run": self.dry_run or None, "name": self.name,
            "verify": self.verify or None, "auto_retry": self.auto_retry or None,
            "abort_at": self.abort_at, "priority": self.priority.value,
            "notify": audit.safe_url(self.notify) if self.notify else None,
        }  # fmt: skip


def new_job_id() -> str:
    """Sortable by creation second, unguessable after it: 8 hex of time + 8 random."""
    return f"{int(time.time()):08x}{secrets.token_hex(4)}"


def row_hash(key: str) -> int:
    """Signed 64-bit hash: Redis keeps sets of such integers as compact intsets."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def check_notify(url: str) -> None:
    """A webhook URL must be http(s) with a host and, if any, a numeric port; the error shows
    it without user, password or query (``audit.safe_url``)."""
    parts = urlsplit(url)
    shown = audit.safe_url(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--notify: {shown!r} is not an http(s) URL")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in 0-65535
    except ValueError as exc:
        raise UsageError(f"--notify: {shown!r} has a port that is not a number in 0-65535") from exc


def check_request(request: SubmitRequest, settings: Settings, creds: CredentialStore) -> None:
    """Everything that can be refused before a job exists (CLI exit code 2)."""
    spec = request.spec
    if request.kind is JobKind.CANCEL and not spec.can_cancel:
        raise UsageError(f"{spec.name} has no cancel: poll its commands (countermand poll)")
    if request.verify and (request.kind is not JobKind.CANCEL or request.dry_run):
        raise UsageError(
            "--verify reads back what a cancel job canceled: not with a poll or a dry run"
        )
    if request.kind is JobKind.POLL and request.dry_run:
        raise UsageError("a poll changes nothing: --dry-run is for cancel jobs")
    if problem := spec.org_pattern.check(request.org):
        raise UsageError(f"--org: {problem}")
    if request.rate is not None and request.rate <= 0:
        raise UsageError(f"--rate must be > 0, got {request.rate}")
    if request.auto_retry < 0:
        raise UsageError(f"--auto-retry must be >= 0, got {request.auto_retry}")
    if request.abort_at is not None and not 0 <= request.abort_at < 100:
        raise UsageError(f"--abort-at is a percentage in [0, 100), got {request.abort_at}")
    if request.abort_min < 1:
        raise UsageError(f"--abort-min must be >= 1, got {request.abort_min}")
    if request.notify is not None:
        check_notify(request.notify)
    if request.dry_run:
        return  # a dry run sends nothing: no credential or URL needed
    if not spec.base_url(settings):
        raise UsageError(f"{spec.name}: set COUNTERMAND_ENOS_URL to the EnOS gateway origin")
    creds.require(spec.vendor, request.org)


@dataclass
class _Chunk:
    rows: list[Row] = field(default_factory=list)
    # (offset in chunk, input line, dedup key) of each valid row
    keys: list[tuple[int, int, str]] = field(default_factory=list)
    invalid: list[tuple[int, TargetResult]] = field(default_factory=list)


async def open_job(
    store: Store,
    settings: Settings,
    credentials: CredentialStore,
    request: SubmitRequest,
    actor: Actor,
) -> StagedJob:
    """Check the request and create the job: queued, nothing loaded, nothing released."""
    if request.notify is None and settings.webhook_url:
        request.notify = settings.webhook_url
    check_request(request, settings, credentials)
    job_id = new_job_id()
    spec = request.spec
    expire_at_ms = await store.create_job(
        NewJob(
            job_id=job_id,
            provider=spec.name,
            org=request.org,
            rate=request.rate or settings.rate,
            dry_run=request.dry_run,
            name=request.name,
            chunk_size=settings.chunk_size,
            columns=[c.name for c in spec.columns],
            retention_s=settings.retention_seconds,
            kind=request.kind,
            auto_retry=request.auto_retry,
            retry_delay=settings.retry_round_delay,
            abort_at=request.abort_at,
            abort_min=request.abort_min,
            verify=request.verify,
            verify_delay=settings.verify_delay,
            notify=request.notify,
            submitted_by=str(actor),
            priority=request.priority,
        )
    )
    return StagedJob(store, request, job_id, settings.chunk_size, expire_at_ms, actor)


class StagedJob:
    """A job being loaded: rows in, then released to the workers."""

    def __init__(
        self,
        store: Store,
        request: SubmitRequest,
        job_id: str,
        size: int,
        expire_at_ms: int,
        actor: Actor,
    ) -> None:
        self.store = store
        self.request = request
        self.spec = request.spec
        self.actor = actor
        self.job_id = job_id
        self.size = size
        self.expire_at_ms = expire_at_ms
        self.columns = [c.name for c in self.spec.columns]
        self.rows_read = 0

    async def load(self, rows: Rows) -> None:
        """Stream every row into Redis; on failure nothing of the job is ever released."""
        try:
            chunks = await self._stage(rows)
            await self.store.finalize(self.job_id, chunks)
        except InputError:
            await self.store.purge(self.job_id, force=True)
            raise
        except BaseException as exc:
            await self._interrupted(exc)
            raise
        finally:
            await self.store.drop_dedup(self.job_id)

    async def release(self) -> int:
        """The staged chunks become ready to claim (the whole input was read and accepted);
        how many."""
        chunks = await self.store.make_ready(self.job_id)
        await audit.record(
            self.store, self.actor, "submit", self.job_id, rows=self.rows_read,
            **self.request.audited(),
        )  # fmt: skip
        log.info("job submitted", extra={"job_id": self.job_id})
        return chunks

    async def _stage(self, rows: Rows) -> int:
        chunk_no, current = 0, _Chunk()
        async for row in _each(rows):
            _add_row(self.spec, current, self.rows_read, row, self.columns)
            self.rows_read += 1
            if len(current.rows) == self.size:
                await self._write(chunk_no, self.rows_read - self.size, current)
                chunk_no, current = chunk_no + 1, _Chunk()
        if current.rows:
            await self._write(chunk_no, self.rows_read - len(current.rows), current)
            chunk_no += 1
        return chunk_no

    async def _write(self, chunk_no: int, first: int, chunk: _Chunk) -> None:
        hashes = [row_hash(key) for _, _, key in chunk.keys]
        fresh = await self.store.first_seen(self.job_id, hashes, self.expire_at_ms)
        for (offset, line, _key), is_first in zip(chunk.keys, fresh, strict=True):
            if not is_first:
                reason = f"line {line}: duplicate: repeats an earlier row of this job"
                chunk.invalid.append((first + offset, invalid(reason)))
        await self.store.write_chunk(
            self.job_id, chunk_no, chunk.rows, chunk.invalid, self.expire_at_ms
        )

    async def _interrupted(self, exc: BaseException) -> None:
        detail = f"input stopped loading after {self.rows_read} rows: {exc!r}"[:500]
        # If Redis itself is what failed, the job stays queued and unloaded: never sent.
        with contextlib.suppress(Exception):
            await self.store.transition(
                self.job_id,
                JobStatus.ABORTED,
                RUNNABLE,
                reason=StopReason.SUBMIT_INTERRUPTED,
                detail=detail,
            )


async def submit(
    store: Store,
    settings: Settings,
    credentials: CredentialStore,
    request: SubmitRequest,
    rows: Rows,
    actor: Actor,
) -> str:
    """Check, create, stage every row, then release; returns the job id."""
    job = await open_job(store, settings, credentials, request, actor)
    await job.load(rows)
    await job.release()
    return job.job_id


async def _each(rows: Rows) -> AsyncIterator[InputRow]:
    if isinstance(rows, AsyncIterable):
        async for row in rows:
            yield row
    else:
        for row in rows:
            yield row


def _add_row(spec: ProviderSpec, chunk: _Chunk, index: int, row: InputRow, cols: list[str]) -> None:
    chunk.rows.append([row.values.get(c) for c in cols])
    offset = len(chunk.rows) - 1
    try:
        if row.problem:
            raise InvalidRow(row.problem)
        chunk.keys.append((offset, row.line, spec.key(spec.validate(row.values))))
    except InvalidRow as exc:
        chunk.invalid.append((index, invalid(f"line {row.line}: {exc}")))


def invalid(reason: str) -> TargetResult:
    return TargetResult(Outcome.INVALID, 0, int(time.time()), error_message=reason)


async def status(store: Store, job_id: str) -> JobInfo:
    """The status object of ``status --json`` and the HTTP API: the job, plus its tenant's
    limit, effective rate and any 429 hold as the workers last applied them, and while it
    runs its share and what limits it (``limited``)."""
    info = await store.info(job_id)
    info.limiter = asdict(await running_state(store, info))
    return info


async def listed(store: Store, limit: int = 1000) -> list[JobInfo]:
    """The jobs of ``jobs``, newest first, the running ones with their share."""
    return await with_shares(store, await store.list_jobs(limit))


async def with_shares(store: Store, infos: list[JobInfo]) -> list[JobInfo]:
    """The jobs of ``jobs --json`` and the HTTP API's list, their running ones with their share
    and what limits them."""
    for info in infos:
        if info.status in RUNNABLE:
            await running_state(store, info)
    return infos


async def running_state(store: Store, info: JobInfo) -> TenantState:
    """Fill a runnable job's ``share``, ``limited_by`` and ``allowed_rate``; its tenant's
    state."""
    vendor = get_spec(info.provider).vendor
    state = await store.tenant_state(vendor, info.org)
    if info.status in RUNNABLE:
        share = await store.job_share(vendor, info.org, info.job_id)
        limited(info, state, share, await store.ceiling_rate(info.job_id))
    return state


def limited(
    info: JobInfo, tenant: TenantState, share: Share | None, ceiling_rate: float | None
) -> None:
    """A running job's ``share`` and what holds it (``limited_by``): the tenant's hold, a
    worker's in-flight ceiling (with the rate it allows), its share of the tenant's rate, or
    only its own --rate (README, "Priority and fair share"). Nothing while the job has no share:
    it is not asking for requests now (waiting on reads, or between rounds)."""
    if share is None:
        return
    info.share = round(share.rate, 3)
    if tenant.hold_until is not None:
        info.limited_by = LimitedBy.HOLD
    elif ceiling_rate is not None and ceiling_rate < share.rate * 0.98:
        info.limited_by = LimitedBy.IN_FLIGHT_CEILING
        info.allowed_rate = round(ceiling_rate, 3)
    elif share.by_job_rate:
        info.limited_by = LimitedBy.JOB_RATE
    else:
        info.limited_by = LimitedBy.TENANT_SHARE


# How long pause and abort wait for the workers to let go of the job's chunks.
STOP_WAIT = 5.0
STOP_POLL = 0.01


async def stopped_everywhere(store: Store, job_id: str, deadline: float = STOP_WAIT) -> int:
    """Wait until no worker holds a chunk of the job (each lets go once its lanes stopped and
    its calls on the wire were answered and recorded), at most ``deadline`` seconds; the chunks
    still held then (a vendor that does not answer, a worker that died with its lease).

    Without this wait, ``pause`` returned as soon as the stop was published, and a worker that
    heard it late still spent the slots it had reserved: at 2,000/s on a loaded machine, up to
    126 requests arrived after ``pause`` returned (``bench/pause.py``)."""
    end = time.monotonic() + deadline
    # the condition is in Redis, set by other processes: polled, with a deadline
    while (held := await store.chunks_held(job_id)) and time.monotonic() < end:  # noqa: ASYNC110
        await asyncio.sleep(STOP_POLL)
    return held


async def pause(store: Store, job_id: str, *, actor: Actor) -> int:
    """Pause the job; returns once no worker holds a chunk of it (``stopped_everywhere``):
    the chunks still held after ``STOP_WAIT``."""
    await store.transition(
        job_id, JobStatus.PAUSED, RUNNABLE, reason=StopReason.OPERATOR, detail=f"paused by {actor}"
    )
    await audit.record(store, actor, "pause", job_id)
    log.info("job paused by %s", actor, extra={"job_id": job_id})
    return await stopped_everywhere(store, job_id)


async def resume(store: Store, job_id: str, *, actor: Actor) -> int:
    """Back to running; every chunk with targets not yet final that nobody holds is ready to
    claim again (a chunk whose owner is still stopping is kept by it). How many."""
    chunks = await store.transition(job_id, JobStatus.RUNNING, [JobStatus.PAUSED])
    await audit.record(store, actor, "resume", job_id, chunks=chunks)
    return chunks


async def abort(store: Store, job_id: str, *, actor: Actor) -> int:
    """Abort the job; returns like ``pause``."""
    await store.transition(
        job_id,
        JobStatus.ABORTED,
        [*RUNNABLE, JobStatus.PAUSED],
        reason=StopReason.OPERATOR,
        detail=f"aborted by {actor}",
    )
    await audit.record(store, actor, "abort", job_id)
    log.info("job aborted by %s", actor, extra={"job_id": job_id})
    return await stopped_everywhere(store, job_id)


async def retry(store: Store, job_id: str, *, actor: Actor) -> list[int]:
    """Queue exactly the targets whose outcome is ``failed`` for one more round; returns the
    chunks made ready (none when nothing failed: the job is left as it is)."""
    answer, chunks = await store.retry(job_id)
    await audit.record(store, actor, "retry", job_id, queued=answer is RetryAnswer.OK)
    return chunks


async def retry_due(store: Store) -> list[str]:
    """The scheduled sweep: start every --auto-retry round that is due, each exactly once
    (the round number it saw must still be current, so a second sweep finds nothing)."""
    started = []
    for job_id, round_ in await store.retries_due():
        answer, _chunks = await store.retry(job_id, expected_round=round_)
        if answer is RetryAnswer.OK:
            started.append(job_id)
            await audit.record(store, SWEEP, "retry", job_id, round=round_ + 1)
    return started


async def purge(store: Store, job_id: str, *, actor: Actor) -> None:
    await store.purge(job_id)
    await audit.record(store, actor, "purge", job_id)


SWEEP = Actor.system("retry-sweep")
