"""What every route gets: the process's runtime, and the caller (a Bearer key, or
the dashboard's session cookie with its CSRF token on requests that change something)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from countermand.access import Principal, authenticate, session_principal
from countermand.api.problems import ApiProblem
from countermand.audit import Actor
from countermand.errors import JobNotFound
from countermand.models import JobInfo
from countermand.runtime import Runtime
from countermand.store import JobMeta, Store

COOKIE = "cm_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
JOB_ID = re.compile(r"[0-9a-f]{16}", re.ASCII)


@dataclass
class Services:
    runtime: Runtime

    @property
    def store(self) -> Store:
        return self.runtime.store


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def caller(request: Request, svc: Annotated[Services, Depends(services)]) -> Principal:
    """The authenticated caller; 401 without a valid key or session."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if header:
        principal = await authenticate(svc.store, token) if scheme.lower() == "bearer" else None
        if principal is None:
            raise ApiProblem(401, "invalid API key", {"WWW-Authenticate": "Bearer"})
        return principal
    session_id = request.cookies.get(COOKIE)
    found = await session_principal(svc.store, session_id) if session_id else None
    if found is None:
        raise ApiProblem(401, "an API key is required (Authorization: Bearer KEY)",
                         {"WWW-Authenticate": "Bearer"})  # fmt: skip
    principal, csrf = found
    if request.method not in SAFE and request.headers.get(CSRF_HEADER) != csrf:
        raise ApiProblem(403, f"a request that changes something needs the {CSRF_HEADER} header")
    return principal


Caller = Annotated[Principal, Depends(caller)]
Svc = Annotated[Services, Depends(services)]


def actor_of(principal: Principal) -> Actor:
    return Actor.key(principal.name)


def operator(principal: Principal, org: str | None = None) -> None:
    """403 unless the caller may act (on ``org``'s jobs, when given)."""
    if not principal.may_act(org):
        what = "a viewer key" if principal.role.value == "viewer" else f"no access to org {org!r}"
        raise ApiProblem(403, f"{principal.name}: {what} may not do this")


async def visible_meta(svc: Services, principal: Principal, job_id: str) -> JobMeta:
    """The job's meta if the caller may see it: 404 for a malformed or unknown id, 403 for a
    job of another org."""
    if not JOB_ID.fullmatch(job_id):
        raise JobNotFound(job_id)
    meta = await svc.store.meta(job_id)
    if not principal.sees(meta.org):
        raise ApiProblem(403, f"{principal.name}: no access to org {meta.org!r}")
    return meta


async def visible_job(svc: Services, principal: Principal, job_id: str) -> JobInfo:
    from countermand.jobs import status

    await visible_meta(svc, principal, job_id)
    return await status(svc.store, job_id)
