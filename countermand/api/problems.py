"""Errors as ``application/problem+json`` (RFC 9457), with the message the CLI prints.

404 an unknown job (a malformed job id too), 409 an action the job's status refuses, 422 bad
parameters or a bad input file, 413 an upload over ``API_MAX_UPLOAD_BYTES``, 401 no valid key
or session, 403 a key that may not do this, 503 Redis cannot be reached.
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from countermand.errors import (
    CountermandError,
    JobNotFound,
    PolicyNotFound,
    StatusConflict,
    StoreUnavailable,
    UsageError,
)

MEDIA = "application/problem+json"


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


def documented(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` for these problem statuses (``application/problem+json``)."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        code: {"model": Problem, "description": HTTPStatus(code).phrase,
               "content": {MEDIA: {"schema": schema}}}
        for code in codes
    }  # fmt: skip


class ApiProblem(Exception):
    """A problem the API itself decides (auth, size)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def problem(
    request: Request, status: int, detail: str | None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = Problem(
        title=HTTPStatus(status).phrase, status=status, detail=detail, instance=request.url.path
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=MEDIA, headers=headers
    )


def status_of(exc: CountermandError) -> int:
    if isinstance(exc, JobNotFound | PolicyNotFound):
        return 404
    if isinstance(exc, StatusConflict):
        return 409
    if isinstance(exc, UsageError):
        return 422
    if isinstance(exc, StoreUnavailable):
        return 503
    return 500


def install(app: FastAPI) -> None:
    async def countermand_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CountermandError)
        return problem(request, status_of(exc), str(exc))

    async def api_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem(request, exc.status, exc.detail, exc.headers)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem(request, exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return problem(request, 422, where)

    app.add_exception_handler(CountermandError, countermand_error)
    app.add_exception_handler(ApiProblem, api_problem)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
