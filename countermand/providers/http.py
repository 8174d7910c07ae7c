"""One HTTP exchange, with transport failures turned into the error tree's classes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from countermand.errors import Misconfigured, TransientError, UnreachableError


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    retry_after: float | None

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (an HTML page, a proxy's text)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def snippet(self) -> str:
        return self.body[:120].decode("utf-8", "replace").strip()


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    timeout: aiohttp.ClientTimeout,
    data: bytes | None = None,
) -> Response:
    try:
        async with session.request(
            method, url, headers=headers, data=data, timeout=timeout, allow_redirects=False
        ) as resp:
            body = await resp.read()
            return Response(resp.status, body, parse_retry_after(resp.headers.get("Retry-After")))
    except aiohttp.InvalidURL as exc:
        raise Misconfigured(f"invalid URL {url!r}") from exc
    except aiohttp.ClientConnectorError as exc:
        raise UnreachableError(f"cannot connect to {exc.host}:{exc.port}: {exc.os_error}") from exc
    except TimeoutError as exc:
        raise TransientError(f"timed out after {timeout.total}s") from exc
    except aiohttp.ClientError as exc:
        raise TransientError(f"connection error: {type(exc).__name__}: {exc}") from exc
