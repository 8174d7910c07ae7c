"""Control routes under ``/_sim/``: no auth, never faulted, never logged.

* ``GET /_sim/health`` -> ``{"ok": true}``
* ``GET /_sim/config``; ``POST /_sim/config`` with a JSON object of runtime fields (see
  ``config.RUNTIME_FIELDS``) -> the whole new config, or 400 ``{"error": ...}``
* ``GET /_sim/requests?since=N&route=R`` -> ``{"total": T, "requests": [...]}``: ``since`` is an
  index into the log (pass the last ``total`` to get only newer records)
* ``POST /_sim/requests/reset`` -> ``{"ok": true}``: empties the log (indexes restart at 0)
* ``GET /_sim/stats?window=1.0`` -> totals by route, HTTP status and injected fault
  (``by_fault``, faulted answers only), ``count_429``, and ``max_per_window``: per tenant, the
  most accepted (non-429) requests in any ``window`` seconds, a window holding the times in
  ``(t - window, t]``, as the rate limiter counts
* ``GET /_sim/commands?provider=P`` -> the provider's records (``applivery-apple``,
  ``applivery-android``, ``applivery-windows``: batches with their ``actions``, ``enos``)
* ``POST /_sim/commands`` ``{"provider": P, "records": [...], "replace": false}`` ->
  ``{"added": n}``; all or nothing, 400 with the reason when a record is bad
* ``POST /_sim/enos/expire-tokens`` -> ``{"expired": n}``: every token answers 1203 from now on
"""

from __future__ import annotations

import gc
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from countermand.simulator.config import ConfigError, ConfigHolder
from countermand.simulator.enos import Tokens
from countermand.simulator.faults import LogRecord, RequestLog
from countermand.simulator.state import CommandStore, StoreError, parse


def stats(records: Iterable[LogRecord], window: float) -> dict[str, Any]:
    by_route: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    by_fault: Counter[str] = Counter()
    accepted: defaultdict[str, list[float]] = defaultdict(list)
    total = 0
    for record in records:
        total += 1
        by_route[record.route] += 1
        by_status[str(record.status)] += 1
        if record.fault:
            by_fault[record.fault] += 1
        if record.status != 429 and record.tenant is not None:
            accepted[record.tenant].append(record.t)
    return {
        "total": total,
        "by_route": dict(by_route),
        "by_status": dict(by_status),
        "by_fault": dict(by_fault),
        "max_per_window": {
            tenant: max_in_window(times, window) for tenant, times in accepted.items()
        },
        "count_429": by_status.get("429", 0),
    }


def max_in_window(times: list[float], window: float) -> int:
    """The most times in any ``(t - window, t]``."""
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def json_object(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except ValueError as exc:
        return bad_request(f"body is not JSON: {exc}")
    return body if isinstance(body, dict) else bad_request("body must be a JSON object")


def number(request: web.Request, name: str, default: float) -> float | web.Response:
    raw = request.query.get(name)
    try:
        return default if raw is None else float(raw)
    except ValueError:
        return bad_request(f"{name} must be a number, not {raw!r}")


class Control:
    def __init__(
        self, holder: ConfigHolder, store: CommandStore, log: RequestLog, tokens: Tokens
    ) -> None:
        self.holder, self.store, self.log, self.tokens = holder, store, log, tokens

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def get_config(self, request: web.Request) -> web.Response:
        return web.json_response(self.holder.current.model_dump(mode="json"))

    async def set_config(self, request: web.Request) -> web.Response:
        body = await json_object(request)
        if isinstance(body, web.Response):
            return body
        try:
            config = self.holder.update(body)
        except ConfigError as exc:
            return bad_request(str(exc))
        return web.json_response(config.model_dump(mode="json"))

    async def requests(self, request: web.Request) -> web.Response:
        since = number(request, "since", 0)
        if isinstance(since, web.Response):
            return since
        records = self.log.since(int(since), request.query.get("route"))
        body = {"total": self.log.total, "requests": [r._asdict() for r in records]}
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def reset_requests(self, request: web.Request) -> web.Response:
        self.log.reset()
        return web.json_response({"ok": True})

    async def stats(self, request: web.Request) -> web.Response:
        window = number(request, "window", 1.0)
        if isinstance(window, web.Response):
            return window
        if not window > 0:
            return bad_request("window must be more than 0 seconds")
        return web.json_response(stats(self.log, window))

    async def commands(self, request: web.Request) -> web.Response:
        try:
            records = self.store.dump(request.query.get("provider", ""))
        except StoreError as exc:
            return bad_request(str(exc))
        return web.json_response(records)

    async def add_commands(self, request: web.Request) -> web.Response:
        body = await json_object(request)
        if isinstance(body, web.Response):
            return body
        provider, replace = body.get("provider"), body.get("replace", False)
        if not isinstance(provider, str) or not isinstance(replace, bool):
            return bad_request("expected {provider: str, records: [...], replace: bool}")
        try:
            records = parse(provider, body.get("records", []))
            added = self.store.add(provider, records, replace=replace)
        except StoreError as exc:
            return bad_request(str(exc))
        gc.freeze()  # the seeded commands too: see ``cli.serve``
        return web.json_response({"added": added})

    async def expire_tokens(self, request: web.Request) -> web.Response:
        return web.json_response({"expired": self.tokens.expire_all()})

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_sim/health", self.health),
            web.get("/_sim/config", self.get_config),
            web.post("/_sim/config", self.set_config),
            web.get("/_sim/requests", self.requests),
            web.post("/_sim/requests/reset", self.reset_requests),
            web.get("/_sim/stats", self.stats),
            web.get("/_sim/commands", self.commands),
            web.post("/_sim/commands", self.add_commands),
            web.post("/_sim/enos/expire-tokens", self.expire_tokens),
        ]
