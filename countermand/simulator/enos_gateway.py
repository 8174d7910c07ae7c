"""The EnOS API-management gateway as the simulator plays it: signatures, tokens, envelopes.

``check`` is the gateway's part of every connect-service call (v2.1 commands, v2.4 devices),
in this order: the three ``apim-*`` headers (1202 when one is missing), a known unexpired token
(1203), the signature ``sha256_hex(token + paramsData + timestamp + secret)`` (1003), and a
signature not seen before with that token (1001: a replayed request; two different requests
signed in the same millisecond by two processes are not replays). paramsData is the query
parameters sorted by name, written ``name value`` without separators, then the exact body text,
so a POST's JSON body is signed too.

Error answers are ``{"code": N, "msg": ...}`` with HTTP 400 for 1001/1004/1202, 401 for
1002/1003/1203/1204, and HTTP 200 for business codes (11404); successes are ``answer``'s
``{"code": 0, "msg": "Success", "submsg": null, "requestId": ..., "data": ...}``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from aiohttp import web

from countermand.simulator.codes import declared
from countermand.simulator.faults import Reply, reply

_HTTP_STATUS = {1001: 400, 1004: 400, 1202: 400, 1002: 401, 1003: 401, 1203: 401, 1204: 401}
T = TypeVar("T")
EMPTY = "The parameter is empty."  # the 1202 text for a missing device or commandId


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def params_data(params: Iterable[tuple[str, str]], body: str = "") -> str:
    """Query parameters sorted by name, written ``name value`` without separators, then body."""
    return "".join(name + value for name, value in sorted(params, key=lambda p: p[0])) + body


def signature(
    token: str, params: Iterable[tuple[str, str]], body: str, timestamp: str, secret: str
) -> str:
    """The ``apim-signature`` of a call (README: worked example in the tests)."""
    return sha256_hex(token + params_data(params, body) + timestamp + secret)


def encryption(app_key: str, timestamp: str, secret: str) -> str:
    return sha256_hex(app_key + timestamp + secret)


class Tokens:
    """Access tokens per appKey, and the signatures already used with each token."""

    def __init__(self) -> None:
        self._current: dict[str, tuple[str, float]] = {}  # appKey -> (token, expires at)
        self._expiry: dict[str, float] = {}  # token -> expires at (0: expired on request)
        self._seen: dict[str, set[str]] = {}  # token -> signatures used

    def issue(self, app_key: str, now: float, ttl: int) -> tuple[str, int]:
        current = self._current.get(app_key)
        if current is not None and current[1] > now:
            return current[0], int(current[1] - now)
        for token, expires in self._expiry.items():
            if expires <= now:
                self._seen.pop(token, None)
        token = secrets.token_hex(16)
        self._current[app_key] = (token, now + ttl)
        self._expiry[token] = now + ttl
        return token, ttl

    def valid(self, token: str, now: float) -> bool:
        return self._expiry.get(token, 0.0) > now

    def first_use(self, token: str, signed: str) -> bool:
        seen = self._seen.setdefault(token, set())
        if signed in seen:
            return False
        seen.add(signed)
        return True

    def expire_all(self) -> int:
        for token in self._expiry:
            self._expiry[token] = 0.0
        self._current.clear()
        self._seen.clear()
        return len(self._expiry)


def gateway_error(code: int, msg: str) -> Reply:
    declared("enos", code)
    return reply(_HTTP_STATUS.get(code, 200), {"code": code, "msg": msg}, code)


def answer(
    data: object, code: int = 0, msg: str = "Success", extra: Mapping[str, object] | None = None
) -> Reply:
    if code:
        declared("enos", code)
    body = {"code": code, "msg": msg, "submsg": None, "requestId": uuid.uuid4().hex, "data": data}
    return reply(200, {**body, **(extra or {})}, code)


def page(
    items: Sequence[T],
    page_no: int,
    page_size: int,
    render: Callable[[T], object],
    msg: str = "Success",
) -> Reply:
    """Page ``page_no`` of ``items``, rendered, as ``data``; ``pagination {pageNo, pageSize,
    totalSize}`` beside it."""
    first = (page_no - 1) * page_size
    data = [render(item) for item in items[first : first + page_size]]
    pagination = {"pageNo": page_no, "pageSize": page_size, "totalSize": len(items)}
    return answer(data, msg=msg, extra={"pagination": pagination})


async def check(request: web.Request, tokens: Tokens, secret: str) -> Reply | None:
    """The gateway's refusal of ``request``, or None when it may reach the service."""
    headers = request.headers
    token = headers.get("apim-accesstoken")
    ts = headers.get("apim-timestamp")
    signed = headers.get("apim-signature")
    if not token or not ts or not signed:
        return gateway_error(1202, "Empty parameter: apim-accesstoken, -timestamp, -signature")
    if not tokens.valid(token, time.time()):
        return gateway_error(1203, "Access token expired")
    body = await request.text() if request.body_exists else ""
    expected = signature(token, request.query.items(), body, ts, secret)
    if not hmac.compare_digest(signed.encode(), expected.encode()):
        return gateway_error(1003, "Invalid encryption")
    if not tokens.first_use(token, signed):
        return gateway_error(1001, "Duplicated encryption")
    return None
