"""The HTTP API and the dashboard, one FastAPI app (``countermand api``).

All state is in Redis, so several API processes may run behind a load balancer. The process
holds one ``Runtime`` (the store, an HTTP session for policy runs' discovery), made when the app
starts and closed when it stops; it sends no Celery message (workers claim jobs from Redis).
The OpenAPI document is derived from the pydantic models (``/openapi.json``, ``/docs``); the
dashboard is served from the package (no CDN) at ``/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from countermand import __version__
from countermand.api import jobs, ops, problems
from countermand.api.deps import Services
from countermand.runtime import Runtime
from countermand.settings import Settings, get_settings

DASHBOARD = resources.files("countermand.api") / "dashboard"


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.open(settings or get_settings())
        app.state.services = Services(runtime)
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(
        title="Countermand",
        version=__version__,
        description="Bulk cancellation of pending device-management commands: jobs, reports, "
        "live progress, controls. Errors are application/problem+json (RFC 9457).",
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(jobs.router)
    app.include_router(ops.router)
    app.include_router(ops.open_router)
    app.mount("/static", StaticFiles(directory=str(DASHBOARD)), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(str(DASHBOARD / "index.html"), headers=SECURITY_HEADERS)

    @app.middleware("http")
    async def secure(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app


# The dashboard runs only its own files (no inline script, no CDN): a strict policy holds.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
