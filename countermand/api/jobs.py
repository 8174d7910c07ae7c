"""``/v1/jobs`` and ``/v1/polls``: submit, list, status, report, targets, events, controls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from countermand import jobs
from countermand.api.deps import (
    Caller,
    Services,
    Svc,
    actor_of,
    operator,
    visible_job,
    visible_meta,
)
from countermand.api.problems import ApiProblem, documented
from countermand.api.upload import CSV, NDJSON, input_name, rows_of, spool
from countermand.models import JobInfo, JobKind, JobStatus, Priority
from countermand.progress import SETTLED
from countermand.providers import get_spec
from countermand.report import find_targets, report_lines

router = APIRouter(prefix="/v1", tags=["jobs"], responses=documented(401, 403, 422, 503))
JOB = documented(404)
ACT = documented(404, 409)
UPLOADED = documented(409, 413, 415)
IDEMPOTENCY_TTL = 24 * 3600
UPLOAD = {
    "requestBody": {
        "required": True,
        "description": "the input file: CSV with a header row, or JSON Lines (README, Input)",
        "content": {CSV: {"schema": {"type": "string"}}, NDJSON: {"schema": {"type": "string"}}},
    }
}


class JobPage(BaseModel):
    jobs: list[JobInfo]
    next_cursor: str | None


class TargetPage(BaseModel):
    targets: list[dict[str, Any]]
    next_cursor: int | None


async def _submit(
    request: Request, svc: Services, principal: Any, req: jobs.SubmitRequest, key: str | None
) -> JobInfo:
    operator(principal)
    operator(principal, req.org)
    store = svc.store
    if key is not None:
        earlier = await store.claim_idempotency(principal.name, key, IDEMPOTENCY_TTL)
        if earlier == "":
            raise ApiProblem(409, "a request with this Idempotency-Key is still being handled")
        if earlier:
            return await jobs.status(store, earlier)
    job_id = None
    try:
        name = input_name(request.headers.get("Content-Type", ""))
        body = await spool(request, svc.runtime.settings.api_max_upload_bytes)
        with body:
            job_id = await jobs.submit(
                store, svc.runtime.settings, svc.runtime.credentials, req,
                rows_of(body, name, req.spec), actor_of(principal),
            )  # fmt: skip
    finally:
        if key is not None:
            await store.settle_idempotency(principal.name, key, job_id, IDEMPOTENCY_TTL)
    return await jobs.status(store, job_id)


Rate = Annotated[float | None, Query(gt=0, description="requests/s for this job")]
CancelProvider = Literal["applivery-apple", "applivery-android", "enos"]
PollProvider = Literal["applivery-apple", "applivery-android", "applivery-windows", "enos"]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
PriorityQuery = Annotated[
    Priority, Query(description="how the tenant's rate is shared with its other jobs")
]


@router.post(
    "/jobs", status_code=201, response_model=JobInfo, openapi_extra=UPLOAD, responses=UPLOADED
)
async def submit_cancel(
    request: Request,
    svc: Svc,
    principal: Caller,
    provider: Annotated[CancelProvider, Query(description="the API family")],
    org: Annotated[str, Query(min_length=1)],
    rate: Rate = None,
    dry_run: bool = False,
    verify: bool = False,
    auto_retry: Annotated[int, Query(ge=0, le=100)] = 0,
    abort_at: Annotated[float | None, Query(ge=0, lt=100)] = None,
    abort_min: Annotated[int, Query(ge=1)] = 1,
    name: Annotated[str | None, Query(max_length=200)] = None,
    notify: Annotated[str | None, Query(max_length=2000)] = None,
    priority: PriorityQuery = Priority.NORMAL,
    idempotency_key: IdemKey = None,
) -> JobInfo:
    """Queue a cancel job from the input in the body (as ``countermand submit``)."""
    req = jobs.SubmitRequest(
        get_spec(provider), org, rate=rate, dry_run=dry_run, name=name, auto_retry=auto_retry,
        abort_at=abort_at, abort_min=abort_min, verify=verify, notify=notify, priority=priority,
    )  # fmt: skip
    return await _submit(request, svc, principal, req, idempotency_key)


@router.post(
    "/polls", status_code=201, response_model=JobInfo, openapi_extra=UPLOAD, responses=UPLOADED
)
async def submit_poll(
    request: Request,
    svc: Svc,
    principal: Caller,
    provider: Annotated[PollProvider, Query(description="the API family")],
    org: Annotated[str, Query(min_length=1)],
    rate: Rate = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    notify: Annotated[str | None, Query(max_length=2000)] = None,
    priority: PriorityQuery = Priority.NORMAL,
    idempotency_key: IdemKey = None,
) -> JobInfo:
    """Queue a poll job (reads each command's state, changes nothing), as ``countermand poll``."""
    req = jobs.SubmitRequest(
        get_spec(provider), org, rate=rate, name=name, kind=JobKind.POLL, notify=notify,
        priority=priority,
    )  # fmt: skip
    return await _submit(request, svc, principal, req, idempotency_key)


def _cursor(raw: str | None) -> tuple[float, str] | None:
    if not raw:
        return None
    score, _, job_id = raw.partition(":")
    try:
        return float(score), job_id
    except ValueError:
        raise ApiProblem(422, f"cursor {raw!r} is not one this API gave") from None


@router.get("/jobs", response_model=JobPage)
async def list_jobs(
    svc: Svc,
    principal: Caller,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> JobPage:
    """Jobs newest first, the caller's orgs only; ``next_cursor`` pages on."""
    found: list[JobInfo] = []
    at = _cursor(cursor)
    while len(found) < limit:
        page, at = await svc.store.jobs_page(limit, at)
        found += [j for j in page if principal.sees(j.org)][: limit - len(found)]
        if at is None:
            break
    await jobs.with_shares(svc.store, found)
    return JobPage(jobs=found, next_cursor=f"{at[0]!r}:{at[1]}" if at else None)


@router.get("/jobs/{job_id}", response_model=JobInfo, responses=JOB)
async def job_status(job_id: str, svc: Svc, principal: Caller) -> JobInfo:
    return await visible_job(svc, principal, job_id)


@router.get(
    "/jobs/{job_id}/report",
    response_class=StreamingResponse,
    responses={**JOB, 200: {"description": "the report", "content": {
        CSV: {"schema": {"type": "string"}}, NDJSON: {"schema": {"type": "string"}}}}},
)  # fmt: skip
async def job_report(
    job_id: str,
    svc: Svc,
    principal: Caller,
    format: Annotated[str, Query(pattern="^(csv|jsonl)$")] = "csv",
) -> StreamingResponse:
    """One row per target, in input order (the CLI's report), streamed."""
    await visible_meta(svc, principal, job_id)
    media = CSV if format == "csv" else NDJSON
    headers = {"Content-Disposition": f'attachment; filename="{job_id}.{format}"'}
    lines = (line.encode() async for line in report_lines(svc.store, job_id, format))
    return StreamingResponse(lines, media_type=media, headers=headers)


@router.get("/jobs/{job_id}/targets", response_model=TargetPage, responses=JOB)
async def job_targets(
    job_id: str,
    svc: Svc,
    principal: Caller,
    outcome: Annotated[str | None, Query(max_length=40)] = None,
    q: Annotated[str | None, Query(max_length=200, description="text in an input cell")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[int, Query(ge=0)] = 0,
) -> TargetPage:
    """Targets (report records with their index) by outcome and/or text, page by page."""
    await visible_meta(svc, principal, job_id)
    found, after = await find_targets(
        svc.store, job_id, outcome=outcome, query=q, start=cursor, limit=limit
    )
    return TargetPage(targets=found, next_cursor=after)


@router.get(
    "/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={**JOB, 200: {"description": "server-sent events",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)  # fmt: skip
async def job_events(job_id: str, request: Request, svc: Svc, principal: Caller) -> Response:
    """Server-sent events: ``progress`` with the status object at least once a second while
    the job runs, then ``end`` with the final status (completed, paused or aborted)."""
    await visible_meta(svc, principal, job_id)

    async def events() -> AsyncIterator[bytes]:
        while not await request.is_disconnected():
            info = await jobs.status(svc.store, job_id)
            data = json.dumps(info.model_dump(mode="json"), separators=(",", ":"))
            if info.status in SETTLED and info.loaded:
                yield f"event: end\ndata: {data}\n\n".encode()
                return
            yield f"event: progress\ndata: {data}\n\n".encode()
            await asyncio.sleep(0.5)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


async def _act(svc: Services, principal: Any, job_id: str) -> None:
    operator(principal)  # a viewer is refused before anything is looked up
    meta = await visible_meta(svc, principal, job_id)
    operator(principal, meta.org)


@router.post("/jobs/{job_id}/pause", response_model=JobInfo, responses=ACT)
async def pause(job_id: str, svc: Svc, principal: Caller) -> JobInfo:
    await _act(svc, principal, job_id)
    await jobs.pause(svc.store, job_id, actor=actor_of(principal))
    return await jobs.status(svc.store, job_id)


@router.post("/jobs/{job_id}/resume", response_model=JobInfo, responses=ACT)
async def resume(job_id: str, svc: Svc, principal: Caller) -> JobInfo:
    await _act(svc, principal, job_id)
    await jobs.resume(svc.store, job_id, actor=actor_of(principal))
    return await jobs.status(svc.store, job_id)


@router.post("/jobs/{job_id}/abort", response_model=JobInfo, responses=ACT)
async def abort(job_id: str, svc: Svc, principal: Caller) -> JobInfo:
    await _act(svc, principal, job_id)
    await jobs.abort(svc.store, job_id, actor=actor_of(principal))
    return await jobs.status(svc.store, job_id)


@router.post("/jobs/{job_id}/retry", response_model=JobInfo, responses=ACT)
async def retry(job_id: str, svc: Svc, principal: Caller) -> JobInfo:
    await _act(svc, principal, job_id)
    await jobs.retry(svc.store, job_id, actor=actor_of(principal))
    return await jobs.status(svc.store, job_id)


@router.delete("/jobs/{job_id}", status_code=204, response_class=Response, responses=ACT)
async def purge(job_id: str, svc: Svc, principal: Caller) -> Response:
    await _act(svc, principal, job_id)
    await jobs.purge(svc.store, job_id, actor=actor_of(principal))
    return Response(status_code=204)


__all__ = ["JobStatus", "router"]
