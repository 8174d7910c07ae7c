"""One HTTP exchange, with transport failures turned into the error tree's classes.

What a failure says about the vendor having applied the call (``TransientError.uncertain``):
a connection that could not be made (refused, DNS, TLS, a connect timeout) reached nobody; any
failure after the request may have left (a timeout while waiting for the answer, a connection
reset or closed mid-answer, a truncated or oversized body) is uncertain. Answers are read up to
``max_bytes``; a larger one is not read at all.
"""

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
    content_type: str = ""

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (an HTML page, a proxy's text)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def snippet(self) -> str:
        return self.body[:120].decode("utf-8", "replace").strip()

    def not_the_vendor(self, vendor: str) -> Misconfigured | TransientError:
        """A 2xx that is not the vendor's envelope. An HTML page is a web server, not the API:
        the base URL is wrong (the job pauses). Anything else (malformed or truncated JSON, an
        unexpected envelope) may come after the vendor applied the call: uncertain, retried."""
        message = f"HTTP {self.status} is not a {vendor} answer: {self.snippet()!r}"
        if self.content_type.startswith("text/html"):
            return Misconfigured(message, http_status=self.status)
        return TransientError(message, http_status=self.status, uncertain=True)


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


async def _body(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    declared = resp.content_length
    if declared is not None and declared > max_bytes:
        raise TransientError(
            f"answer of {declared} bytes is over the {max_bytes}-byte cap", http_status=resp.status
        )
    if declared is not None:
        return await resp.read()
    parts, size = [], 0
    async for part in resp.content.iter_chunked(65536):
        size += len(part)
        if size > max_bytes:
            raise TransientError(f"answer over the {max_bytes}-byte cap", http_status=resp.status)
        parts.append(part)
    return b"".join(parts)


async def exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    timeout: aiohttp.ClientTimeout,
    data: bytes | None = None,
    max_bytes: int = 8 * 1024 * 1024,
) -> Response:
    try:
        async with session.request(
            method, url, headers=headers, data=data, timeout=timeout, allow_redirects=False
        ) as resp:
            body = await _body(resp, max_bytes)
            return Response(
                resp.status,
                body,
                parse_retry_after(resp.headers.get("Retry-After")),
                resp.content_type or "",
            )
    except aiohttp.InvalidURL as exc:
        raise Misconfigured(f"invalid URL {url!r}") from exc
    except aiohttp.ClientConnectorError as exc:
        raise UnreachableError(f"cannot connect to {exc.host}:{exc.port}: {exc.os_error}") from exc
    except aiohttp.ConnectionTimeoutError as exc:
        raise TransientError(
            f"connect timed out after {timeout.sock_connect}s", uncertain=False
        ) from exc
    except TimeoutError as exc:
        raise TransientError(f"timed out after {timeout.total}s") from exc
    except aiohttp.ClientError as exc:
        raise TransientError(f"connection error: {type(exc).__name__}: {exc}") from exc
