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
4. A 429 (plain text ``Too Many Requests``, ``Retry-After`` when configured), or else the
   faults below, one draw each from ``random.Random(seed)`` for every rate above 0 (a rate of
   0 draws nothing, so a run without a fault draws as it did before the fault existed), in
   this order: ``error``, ``bad_gateway``, ``timeout``, ``drop``, then, on the handler's
   answer, ``malformed``, ``truncated``, ``envelope``, ``stall``, ``huge``, ``reset``; the
   first that hits is the request's only fault.
5. The handler, and one log record when the answer is sent (status 0 when dropped), with its
   arrival time ``t``, its answer time ``done`` and the ``fault`` it suffered ("" for none).

Every fault says whether the vendor applied the call, as a real vendor behind a real proxy
would have. Not applied (the handler never runs, nothing changes):

* ``error_rate``: 503, plain text (an overloaded vendor refusing work).
* ``bad_gateway_rate``: 502, nginx's ``text/html`` "502 Bad Gateway" page: a reverse proxy
  whose upstream did not answer. A 5xx from a gateway is not proof of a wrong base URL.
* ``drop_rate``: the connection closed without an answer, before the request was handled.

Applied (the handler runs and changes the store; what the client hears is broken):

* ``timeout_rate``: the answer waits ``hang_seconds`` and then goes out whole (the client has
  most likely given up: the "applied but unseen" case).
* ``malformed_rate``: the vendor's status and headers, its JSON body cut in half, with a
  Content-Length that matches (a buggy serialiser or buffer flush: the HTTP is complete, the
  JSON is not).
* ``truncated_rate``: the vendor's Content-Length, half the body, then the connection closed
  (a FIN): an upstream or proxy that died while streaming the answer.
* ``envelope_rate``: a 2xx only (other answers pass unbroken): valid JSON in an API gateway's
  envelope (``statusCode``, ``headers``, the vendor's answer as a string in ``body``), as a
  misconfigured Lambda-proxy integration passes the backend's answer on after it ran.
* ``stall_rate``: status line and headers at once, then nothing for ``hang_seconds`` (past any
  sane client timeout), then the body: a vendor that took the call and stalled mid-answer.
* ``huge_rate``: the vendor's answer padded with spaces to 50 MiB (``broken.HUGE_BODY_BYTES``,
  declared in Content-Length, still valid JSON, streamed): a vendor bug dumping far too much
  after the call took effect; a client must refuse it by its size cap without reading it.
* ``reset_rate``: the vendor's Content-Length, half the body, then a TCP reset (RST).

A broken answer's log record keeps the vendor's status and code (what it decided; the 502 is
logged as 502), and names the fault. Faults apply to vendor routes only: never to ``/_sim/*``
nor to the EnOS token endpoint, which is logged but unfaulted (its tenant is ``None``: a token
belongs to no org) so that fault tests do not turn into token tests. ``Retry-After`` in seconds
is written as a whole number when the setting is whole, else as a decimal (not RFC 9110, but it
lets tests run fast).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from email.utils import formatdate
from typing import NamedTuple

from aiohttp import web

from countermand.simulator import broken
from countermand.simulator.config import ConfigHolder, SimulatorConfig
from countermand.simulator.replies import Reply, reply, text_reply

__all__ = ["Gate", "Identify", "LogRecord", "Reply", "RequestLog", "reply", "text_reply"]

# Faults after the handler: (log name, rate field), drawn in this order.
AFTER = (
    ("malformed", "malformed_rate"),
    ("truncated", "truncated_rate"),
    ("envelope", "envelope_rate"),
    ("stall", "stall_rate"),
    ("huge", "huge_rate"),
    ("reset", "reset_rate"),
)


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
    fault: str = ""  # the fault injected ("" for none): the names of ``Served.fault``


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
            served = Served()
            try:
                if faults:
                    return await self._serve(request, handler, tenant, t, served)
                return served.took(await handler(request))
            finally:
                self.log.append(
                    LogRecord(t, request.method, route, request.path, request.query_string,
                              tenant, served.status, served.code, served.key or key,
                              time.time(), served.fault)
                )  # fmt: skip

        return gated

    async def _serve(
        self,
        request: web.Request,
        handler: VendorHandler,
        tenant: str | None,
        t: float,
        served: Served,
    ) -> web.StreamResponse:
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
            return served.took(_too_many(config, t))
        if config.error_rate and rng.random() < config.error_rate:
            return served.took(text_reply(503, "Service Unavailable"), "error")
        if config.bad_gateway_rate and rng.random() < config.bad_gateway_rate:
            return served.took(broken.bad_gateway(), "bad_gateway")
        if config.timeout_rate and rng.random() < config.timeout_rate:
            await asyncio.sleep(config.hang_seconds)
            return served.took(await handler(request), "timeout")
        if config.drop_rate and rng.random() < config.drop_rate:
            return served.took(_drop(request), "drop")
        answer = served.took(await handler(request))
        fault = self._after(config)
        if fault is None or (fault == "envelope" and not 200 <= answer.status < 300):
            return answer
        served.fault = fault
        return await _broken(fault, request, answer, config)

    def _after(self, config: SimulatorConfig) -> str | None:
        """The fault drawn for the handler's answer, if any (one draw per rate above 0)."""
        for name, field in AFTER:
            rate = getattr(config, field)
            if rate and self.rng.random() < rate:
                return name
        return None


class Served:
    """What the log records of one answer: the vendor's status and code (0: dropped; 500
    until the handler returns), its key, and the fault: ``error``, ``bad_gateway``,
    ``timeout``, ``drop``, or one of ``AFTER``'s names."""

    __slots__ = ("code", "fault", "key", "status")

    def __init__(self) -> None:
        self.status = 500
        self.code: int | None = None
        self.key: str | None = None
        self.fault = ""

    def took(self, answer: Reply, fault: str = "") -> Reply:
        self.status = 0 if isinstance(answer, _Dropped) else answer.status
        self.code, self.key, self.fault = answer.vendor_code, answer.log_key, fault
        return answer


async def _broken(
    fault: str, request: web.Request, answer: Reply, config: SimulatorConfig
) -> web.StreamResponse:
    if fault == "malformed":
        return broken.malformed(answer)
    if fault == "envelope":
        return broken.gateway_envelope(answer)
    if fault == "truncated":
        return await broken.truncated(request, answer)
    if fault == "stall":
        return await broken.stall(request, answer, config.hang_seconds)
    if fault == "huge":
        return await broken.huge(request, answer)
    return await broken.reset(request, answer)


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
