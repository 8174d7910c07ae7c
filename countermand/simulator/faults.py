"""The gate in front of every vendor route: request log, rate limit and injected faults.

``Gate.wrap`` turns a vendor handler into a route handler. Per request, in this order:

1. ``t = time.time()`` at arrival; the route names its tenant (vendor family and org, e.g.
   ``applivery:acme-corp``) and the target ``key``.
2. Rate limit (``rate_limit`` > 0): a sliding one-second window per tenant, decided at arrival.
   Only accepted requests count in the window: a 429 does not, so a client that keeps pushing
   still gets exactly ``rate_limit`` answers a second (the vendors document nothing; this is
   the kinder reading, and what ``/_sim/stats``' ``max_per_window`` checks with the same clock).
3. Latency: ``latency_ms`` plus a uniform draw in ``[0, jitter_ms]``, before every answer,
   429s included.
4. A 429 (plain text ``Too Many Requests``, ``Retry-After`` when configured), or else, one
   draw each from ``random.Random(seed)``: ``error_rate`` answers 503 (plain text);
   ``timeout_rate`` sleeps ``hang_seconds`` and then answers normally (so the change happens
   although the client has most likely given up: the "applied but unseen" case); ``drop_rate``
   closes the connection without an answer (nothing is changed).
5. The handler, and one log record when the answer is sent (status 0 when dropped), with its
   arrival time ``t`` and its answer time ``done``.

Faults apply to vendor routes only: never to ``/_sim/*`` nor to the EnOS token endpoint, which
is logged but unfaulted (its tenant is ``None``: a token belongs to no org) so that fault
tests do not turn into token tests. ``Retry-After`` in seconds is written as a whole number when
the setting is whole, else as a decimal (not RFC 9110, but it lets tests run fast).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from email.utils import formatdate
from typing import NamedTuple

from aiohttp import web

from countermand.simulator.config import ConfigHolder, SimulatorConfig


class Reply(web.Response):
    """A vendor answer that tells the log its vendor code and, when it knows better, its key."""

    vendor_code: int | None = None
    log_key: str | None = None


def reply(status: int, payload: object, code: int | None = None) -> Reply:
    body = json.dumps(payload, separators=(",", ":")).encode()
    response = Reply(body=body, status=status, content_type="application/json")
    response.vendor_code = code
    return response


def text_reply(status: int, text: str) -> Reply:
    return Reply(text=text, status=status)


Identify = Callable[[web.Request], tuple[str, str | None, str]]  # (route, tenant, key)
VendorHandler = Callable[[web.Request], Awaitable[Reply]]
RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LogRecord(NamedTuple):
    t: float  # arrival
    method: str
    route: str
    path: str
    query: str
    tenant: str | None
    status: int
    code: int | None
    key: str
    done: float = 0.0  # when the answer left (or the connection was dropped)


class RequestLog:
    """The last ``limit`` records; indexes count from the last reset, dropped ones included."""

    def __init__(self, limit: int) -> None:
        self._records: deque[LogRecord] = deque(maxlen=limit)
        self.total = 0

    def append(self, record: LogRecord) -> None:
        self._records.append(record)
        self.total += 1

    def since(self, index: int = 0, route: str | None = None) -> list[LogRecord]:
        first = self.total - len(self._records)  # index of the oldest record still kept
        kept = itertools.islice(self._records, max(index - first, 0), None)
        return [r for r in kept if route is None or r.route == route]

    def reset(self) -> None:
        self._records.clear()
        self.total = 0

    def __iter__(self) -> Iterator[LogRecord]:
        return iter(self._records)


class RateLimiter:
    """Sliding one-second windows of accepted request times, per tenant."""

    def __init__(self) -> None:
        self._windows: dict[str, deque[float]] = {}

    def admit(self, tenant: str, now: float, limit: float) -> bool:
        window = self._windows.get(tenant)
        if window is None:
            window = self._windows[tenant] = deque()
        cutoff = now - 1.0
        while window and window[0] <= cutoff:
            window.popleft()
        if len(window) + 1 > limit:
            return False
        window.append(now)
        return True


def retry_after_value(config: SimulatorConfig, now: float) -> str | None:
    if config.retry_after is None:
        return None
    if config.retry_after_format == "http-date":
        return formatdate(now + config.retry_after, usegmt=True)
    return f"{config.retry_after:.3f}".rstrip("0").rstrip(".")  # 2.0 -> "2", 0.25 -> "0.25"


class Gate:
    def __init__(self, holder: ConfigHolder, log: RequestLog, seed: int) -> None:
        self.holder = holder
        self.log = log
        self.rng = random.Random(f"faults/{seed}")
        self.limiter = RateLimiter()

    def wrap(
        self, identify: Identify, handler: VendorHandler, *, faults: bool = True
    ) -> RouteHandler:
        async def gated(request: web.Request) -> web.StreamResponse:
            t = time.time()
            route, tenant, key = identify(request)
            tenant = None if tenant is None else sys.intern(tenant)  # one copy per tenant
            status, code = 500, None  # what the log says if the handler raises
            try:
                if faults:
                    response = await self._serve(request, handler, tenant, t)
                else:
                    response = await handler(request)
                status = 0 if isinstance(response, _Dropped) else response.status
                code, key = response.vendor_code, response.log_key or key
                return response
            finally:
                self.log.append(
                    LogRecord(t, request.method, route, request.path, request.query_string,
                              tenant, status, code, key, time.time())
                )  # fmt: skip

        return gated

    async def _serve(
        self, request: web.Request, handler: VendorHandler, tenant: str | None, t: float
    ) -> Reply:
        config, rng = self.holder.current, self.rng
        limited = (
            config.rate_limit > 0
            and tenant is not None
            and not self.limiter.admit(tenant, t, config.rate_limit)
        )
        delay = config.latency_ms + (rng.uniform(0, config.jitter_ms) if config.jitter_ms else 0)
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        if limited:
            return _too_many(config, t)
        if config.error_rate and rng.random() < config.error_rate:
            return text_reply(503, "Service Unavailable")
        if config.timeout_rate and rng.random() < config.timeout_rate:
            await asyncio.sleep(config.hang_seconds)
        elif config.drop_rate and rng.random() < config.drop_rate:
            return _drop(request)
        return await handler(request)


def _too_many(config: SimulatorConfig, now: float) -> Reply:
    response = text_reply(429, "Too Many Requests")
    value = retry_after_value(config, now)
    if value is not None:
        response.headers["Retry-After"] = value
    return response


async def stall_cancel(config: SimulatorConfig) -> None:
    """The ``cancel_stall_s`` race hook: an accepted cancel, already in the store, waits here
    before its answer is sent (a handler's own delay, after the faults above)."""
    if config.cancel_stall_s > 0:
        await asyncio.sleep(config.cancel_stall_s)


class _Dropped(Reply):
    """Stands for the answer that was never sent; the log records status 0."""


def _drop(request: web.Request) -> Reply:
    if request.transport is not None:
        request.transport.close()
    response = _Dropped(status=204)
    response.force_close()
    return response
