"""Job operations shared by the CLI (and any future API): submit, pause, resume, abort, purge.

Dispatching a chunk to the workers is a callable handed in (``Dispatch``): the Celery wiring
lives in ``tasks/``, never here.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from countermand.credentials import CredentialStore
from countermand.errors import UsageError
from countermand.inputs import InputRow
from countermand.models import JobStatus, Outcome, StopReason, TargetResult
from countermand.providers import InvalidRow, ProviderSpec
from countermand.settings import Settings
from countermand.store import RUNNABLE, Row, Store

Dispatch = Callable[[str, Sequence[int]], None]


@dataclass(slots=True)
class SubmitRequest:
    spec: ProviderSpec
    org: str
    rate: float | None = None
    dry_run: bool = False
    name: str | None = None
    kind: str = "cancel"
    auto_retry: int = 0  # --auto-retry N: rounds of the failed targets, scheduled
    abort_at: float | None = None  # --abort-at PCT
    abort_min: int = 1  # --abort-min N
    verify: bool = False  # --verify: read canceled commands back


def new_job_id() -> str:
    """Sortable by creation second, unguessable after it: 8 hex of time + 8 random."""
    return f"{int(time.time()):08x}{secrets.token_hex(4)}"


def row_hash(key: str) -> int:
    """Signed 64-bit hash: Redis keeps sets of such integers as compact intsets."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def check_request(request: SubmitRequest, settings: Settings, creds: CredentialStore) -> None:
    """Everything that can be refused before a job exists (CLI exit code 2)."""
    spec = request.spec
    if request.kind == "cancel" and not spec.can_cancel:
        raise UsageError(f"{spec.name} has no cancel: poll its commands (countermand poll)")
    if request.verify and (request.kind != "cancel" or request.dry_run):
        raise UsageError(
            "--verify reads back what a cancel job canceled: not with a poll or a dry run"
        )
    if request.kind == "poll" and request.dry_run:
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


async def submit(
    store: Store,
    settings: Settings,
    request: SubmitRequest,
    rows: Iterable[InputRow],
    dispatch: Dispatch,
) -> str:
    """Create a job and stream its rows into Redis chunk by chunk; dispatch each chunk as soon
    as it is written. Returns the job id. A failure midway aborts the job (reason
    ``submit_interrupted``) so it never looks complete."""
    spec = request.spec
    job_id = new_job_id()
    size = settings.chunk_size
    columns = [c.name for c in spec.columns]
    await store.create_job(
        job_id,
        provider=spec.name,
        org=request.org,
        rate=request.rate or settings.rate,
        dry_run=request.dry_run,
        name=request.name,
        chunk_size=size,
        columns=columns,
        retention_s=settings.retention_seconds,
        kind=request.kind,
        auto_retry=request.auto_retry,
        retry_delay=settings.retry_round_delay,
        abort_at=request.abort_at,
        abort_min=request.abort_min,
        verify=request.verify,
        verify_delay=settings.verify_delay,
    )
    expire_at_ms = int((time.time() + settings.retention_seconds) * 1000)
    chunk_no, index = 0, 0
    current = _Chunk()
    try:
        for row in rows:
            _add_row(spec, current, index, row, columns)
            index += 1
            if len(current.rows) == size:
                await _write(store, job_id, chunk_no, index - size, current, expire_at_ms, dispatch)
                chunk_no, current = chunk_no + 1, _Chunk()
        if current.rows:
            first = index - len(current.rows)
            await _write(store, job_id, chunk_no, first, current, expire_at_ms, dispatch)
            chunk_no += 1
        await store.finalize(job_id, chunk_no)
    except BaseException as exc:
        await store.transition(
            job_id,
            JobStatus.ABORTED,
            RUNNABLE,
            reason=StopReason.SUBMIT_INTERRUPTED,
            detail=f"input stopped loading after {index} rows: {exc!r}"[:500],
        )
        raise
    finally:
        await store.drop_dedup(job_id)
    return job_id


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


async def _write(
    store: Store,
    job_id: str,
    chunk_no: int,
    first: int,
    chunk: _Chunk,
    expire_at_ms: int,
    dispatch: Dispatch,
) -> None:
    hashes = [row_hash(key) for _, _, key in chunk.keys]
    fresh = await store.first_seen(job_id, hashes, expire_at_ms)
    for (offset, line, _key), is_first in zip(chunk.keys, fresh, strict=True):
        if not is_first:
            reason = f"line {line}: duplicate: repeats an earlier row of this job"
            chunk.invalid.append((first + offset, invalid(reason)))
    await store.write_chunk(job_id, chunk_no, chunk.rows, chunk.invalid, expire_at_ms)
    if len(chunk.invalid) < len(chunk.rows):
        dispatch(job_id, [chunk_no])


async def pause(store: Store, job_id: str) -> None:
    await store.transition(
        job_id, JobStatus.PAUSED, RUNNABLE, reason=StopReason.OPERATOR, detail="paused by operator"
    )


async def resume(store: Store, job_id: str, dispatch: Dispatch) -> list[int]:
    """Back to running; every chunk with targets not yet final is dispatched again (a chunk
    still owned by a live worker drops the duplicate message)."""
    chunks = await store.transition(job_id, JobStatus.RUNNING, [JobStatus.PAUSED])
    if chunks:
        dispatch(job_id, chunks)
    return chunks


async def abort(store: Store, job_id: str) -> None:
    await store.transition(
        job_id,
        JobStatus.ABORTED,
        [*RUNNABLE, JobStatus.PAUSED],
        reason=StopReason.OPERATOR,
        detail="aborted by operator",
    )


async def retry(store: Store, job_id: str, dispatch: Dispatch) -> list[int]:
    """Queue exactly the targets whose outcome is ``failed`` for one more round; returns the
    chunks dispatched (none when nothing failed: the job is left as it is)."""
    _answer, chunks = await store.retry(job_id)
    if chunks:
        dispatch(job_id, chunks)
    return chunks


async def retry_due(store: Store, dispatch: Dispatch) -> list[str]:
    """The scheduled sweep: start every --auto-retry round that is due, each exactly once
    (the round number it saw must still be current, so a second sweep finds nothing)."""
    started = []
    for job_id, round_ in await store.retries_due():
        answer, chunks = await store.retry(job_id, expected_round=round_)
        if answer == "ok":
            dispatch(job_id, chunks)
            started.append(job_id)
    return started
