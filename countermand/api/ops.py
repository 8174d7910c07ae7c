"""``/v1/policies``, ``/v1/tenants``, ``/v1/audit``; and the routes that need no key:
``/healthz``, ``/readyz``, ``/metrics`` (unless ``METRICS_AUTH``) and the dashboard's session."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from countermand import audit, jobs
from countermand.access import (
    Principal,
    authenticate,
    close_session,
    open_session,
    session_principal,
)
from countermand.api.deps import COOKIE, Caller, Svc, actor_of, operator
from countermand.api.problems import ApiProblem, documented
from countermand.audit import AuditEntry
from countermand.cleanup import Policy, policy_named, read_policies, run_policy
from countermand.errors import CountermandError, JobNotFound
from countermand.models import JobInfo, Priority

router = APIRouter(prefix="/v1", tags=["operations"], responses=documented(401, 403, 422, 503))
open_router = APIRouter(tags=["open"])


class PolicyView(BaseModel):
    name: str
    provider: str
    org: str
    older_than: str
    command: str | None
    rate: float | None
    priority: Priority
    dry_run: bool
    schedule: str | None
    next_run_at: float | None  # unix seconds, from the schedule (UTC)
    last_job: JobInfo | None


class Policies(BaseModel):
    policies: list[PolicyView]
    problems: list[str]  # bad policies: file, policy, field (beat skips them)


class TenantView(BaseModel):
    tenant: str
    limit: float | None
    effective_rate: float | None
    hold_until: float | None
    throttled_last_minute: int
    throttled_total: int


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_before: str | None


class SessionView(BaseModel):
    name: str
    role: str
    orgs: list[str] | None
    csrf: str


class Login(BaseModel):
    key: str


def next_run(policy: Policy) -> float | None:
    from schedules import parse_cron

    if policy.schedule is None:
        return None
    try:
        remaining = parse_cron(policy.schedule).remaining_estimate(datetime.now(UTC))
    except ValueError:
        return None
    return round(time.time() + float(remaining.total_seconds()), 3)


async def _view(svc: Any, policy: Policy) -> PolicyView:
    last_id = await svc.store.last_cleanup_job(policy.name)
    last = None
    if last_id:
        try:
            last = await jobs.status(svc.store, last_id)
        except JobNotFound:
            last = None
    fields = policy.model_dump(include={"name", "provider", "org", "older_than", "command",
                                        "rate", "priority", "dry_run", "schedule"})  # fmt: skip
    return PolicyView(**fields, next_run_at=next_run(policy), last_job=last)


@router.get("/policies", response_model=Policies)
async def policies(svc: Svc, principal: Caller) -> Policies:
    """The stale-cleanup policies (``COUNTERMAND_POLICIES_FILE``) the caller may see."""
    path = svc.runtime.settings.policies_file
    if path is None:
        return Policies(policies=[], problems=[])
    found = read_policies(path)
    views = [await _view(svc, p) for p in found.policies.values() if principal.sees(p.org)]
    return Policies(policies=views, problems=found.problems if principal.orgs is None else [])


@router.post(
    "/policies/{name}/run", status_code=201, response_model=JobInfo, responses=documented(404)
)
async def run(name: str, svc: Svc, principal: Caller, dry_run: bool | None = None) -> JobInfo:
    """Run a policy now (as ``countermand cleanup run``): discovery, then an ordinary job."""
    operator(principal)
    policy = policy_named(svc.runtime.settings.policies_file, name)
    operator(principal, policy.org)
    job_id = await run_policy(svc.runtime, policy, actor=actor_of(principal), dry_run=dry_run)
    return await jobs.status(svc.store, job_id)


@router.get("/tenants", response_model=list[TenantView])
async def tenants(svc: Svc, principal: Caller) -> list[TenantView]:
    """Every tenant the limiter has seen: its limit, effective rate, 429 hold, recent 429s."""
    seen = await svc.store.tenants()
    return [TenantView(**asdict(t)) for t in seen if principal.sees(t.tenant.split(":", 1)[1])]


@router.get("/audit", response_model=AuditPage)
async def audit_log(
    svc: Svc,
    principal: Caller,
    job: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[str | None, Query(pattern=r"^\d+-\d+$")] = None,
) -> AuditPage:
    """Who did what, newest first (``countermand audit``); a key limited to orgs sees the
    entries of its orgs' jobs only."""
    found = await audit.entries(svc.store, job_id=job, limit=limit, before=before)
    if principal.orgs is not None:
        found = [e for e in found if await _in_orgs(svc, principal, e.job_id)]
    return AuditPage(entries=found, next_before=found[-1].id if len(found) == limit else None)


async def _in_orgs(svc: Any, principal: Principal, job_id: str | None) -> bool:
    if job_id is None:
        return False
    try:
        return principal.sees((await svc.store.meta(job_id)).org)
    except JobNotFound:
        return False


# --- open routes ---------------------------------------------------------------------------


@open_router.get("/healthz")
async def healthz() -> dict[str, bool]:
    """The process is up."""
    return {"ok": True}


@open_router.get(
    "/readyz",
    responses={503: {"description": "Redis does not answer", "content": {"application/json": {}}}},
)
async def readyz(svc: Svc) -> JSONResponse:
    """Redis answers (503 otherwise)."""
    try:
        await svc.store.ping("the store")
    except CountermandError as exc:
        return JSONResponse({"ok": False, "detail": str(exc)}, status_code=503)
    return JSONResponse({"ok": True})


@open_router.get(
    "/metrics",
    response_class=Response,
    responses={**documented(401), 200: {"description": "Prometheus text format",
                                       "content": {"text/plain": {"schema": {"type": "string"}}}}},
)  # fmt: skip
async def metrics(request: Request, svc: Svc) -> Response:
    """Prometheus metrics read from Redis: jobs by status, targets remaining, chunk messages
    waiting, tenants' effective rates and holds."""
    from countermand.metrics import api_metrics

    if svc.runtime.settings.metrics_auth:
        from countermand.api.deps import caller

        await caller(request, svc)
    body, media = await api_metrics(svc.store)
    return Response(body, media_type=media)


@open_router.post("/session", response_model=SessionView, responses=documented(401, 422, 503))
async def login(login: Login, request: Request, svc: Svc) -> JSONResponse:
    """Exchange an API key for a dashboard session (an HttpOnly, SameSite=Strict cookie)."""
    principal = await authenticate(svc.store, login.key)
    if principal is None:
        raise ApiProblem(401, "invalid API key")
    ttl = svc.runtime.settings.session_ttl
    session_id, csrf = await open_session(svc.store, principal, ttl)
    response = JSONResponse(_session_view(principal, csrf).model_dump())
    response.set_cookie(
        COOKIE, session_id, max_age=ttl, httponly=True, samesite="strict",
        secure=request.url.scheme == "https", path="/",
    )  # fmt: skip
    return response


@open_router.get("/session", response_model=SessionView, responses=documented(401, 503))
async def whoami(request: Request, svc: Svc) -> SessionView:
    """The dashboard's session, with its CSRF token; 401 when there is none."""
    session_id = request.cookies.get(COOKIE)
    found = await session_principal(svc.store, session_id) if session_id else None
    if found is None:
        raise ApiProblem(401, "no session")
    principal, csrf = found
    return _session_view(principal, csrf)


def _session_view(principal: Principal, csrf: str) -> SessionView:
    orgs = sorted(principal.orgs) if principal.orgs is not None else None
    return SessionView(name=principal.name, role=principal.role.value, orgs=orgs, csrf=csrf)


@open_router.delete("/session", status_code=204, response_class=Response)
async def logout(request: Request, svc: Svc) -> Response:
    session_id = request.cookies.get(COOKIE)
    if session_id:
        await close_session(svc.store, session_id)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response
