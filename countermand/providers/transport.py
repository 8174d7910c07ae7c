"""The vendor calls' HTTP/1.1 client: keep-alive connections on the process's loop, each answer
parsed by httptools (llhttp, the parser uvicorn serves with).

Why not aiohttp's ``ClientSession``, which the rest of the process still uses (webhooks, the
simulator, the API's tests): each vendor call is one small request and one small answer, and
the session's layers around it cost more than everything else a worker does per target.
Measured against the bundled simulator, one process on uvloop, 32 requests in flight, CPU per
request: 126 µs through ``ClientSession``, 25 µs over a bare ``asyncio.Protocol`` (an ad hoc
probe, not this module); the engine's own work per target is about 45 µs
(``bench/core.py --engine-only``). This module keeps to what those calls need:

* one connection per request at a time (no pipelining), reused while the server keeps it
  alive, closed after ``KEEPALIVE`` idle seconds (as aiohttp's default: a server that closed
  an idle connection just as a request went out makes that request's outcome unknown);
* at most ``limit`` connections in use, for every origin together (the session's connector
  limit before), and at most ``CONNECTING`` being made at once;
* TLS from ``ssl.create_default_context()`` (the system's certificates; ``SSL_CERT_FILE``
  adds a private CA), the server's name checked;
* ``Accept-Encoding: gzip, deflate`` as aiohttp sent it, answers decoded within the cap;
* a timeout for the whole exchange (connect included) and one for connecting;
* the answer's body read up to ``max_bytes``: a declared ``Content-Length`` over it is refused
  before the body is read, and a body without one is read no further than the cap; a head over
  ``MAX_HEAD`` bytes is refused too.

Not done, on purpose: proxies (the session never read them from the environment either),
redirects (never followed before: ``allow_redirects=False``), cookies (bearer-token APIs set
none worth keeping, and one jar would carry a tenant's to another), HTTP/2, ``Expect``,
``HEAD`` (no caller sends one).

Failures are this module's own classes; ``countermand.providers.http.exchange`` says what each
proves about the call having been applied. A connection that failed in any way is closed,
never reused.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote, urlsplit

import httptools

from countermand import __version__

KEEPALIVE = 15.0
# Connection attempts under way at once, per process. Lanes grow by hundreds at a time (the
# flow's growth), and as many new connections at once overflowed the simulator's accept queue
# (the kernel's ListenOverflows grew by 13,765 in one 300,000-target job): requests then went
# unanswered for the whole timeout, or were reset after the server had applied them. At most
# 64 at once: 6,789 and 83 cancels sent twice; at most 16: 228 and none. The price, by
# arithmetic (not measured against a remote vendor): 50 ms per connection makes about 320 a
# second, so a process would reach 1,000 in flight about 3 s after its start (the connections
# then stay open for the next requests).
CONNECTING = 16
MAX_HEAD = 64 * 1024
USER_AGENT = f"countermand/{__version__}"
_SENDABLE = re.compile(r"[\x21-\x7e]*").fullmatch  # a request target as it may go on the wire
_REQUOTE_SAFE = "/:@!$&'()*+,;=?%-._~"  # what an already encoded target keeps as it is
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True, slots=True)
class Timeouts:
    total: float  # the whole exchange, connecting included
    connect: float  # making a new connection (TCP and TLS)


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str  # the media type, lowercased, without parameters; "" when absent
    retry_after: str | None


class TransportError(Exception):
    """A request that got no whole answer."""


class InvalidURL(TransportError):
    pass


class ConnectFailed(TransportError):
    """No connection could be made: nothing was sent."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"cannot connect to {host}:{port}: {reason}")
        self.host, self.port, self.reason = host, port, reason


class ConnectTimeout(TransportError):
    """Connecting took longer than allowed: nothing was sent."""


class AnswerTimeout(TransportError):
    """The request went out and no whole answer came within the total timeout."""


class Disconnected(TransportError):
    """The request went out and the connection failed or closed before a whole answer."""


class TooLarge(TransportError):
    """The answer is over the byte cap (declared, or read so far); not read further."""

    def __init__(self, status: int, declared: int | None, cap: int) -> None:
        what = f"answer of {declared} bytes" if declared is not None else "answer"
        super().__init__(f"{what} is over the {cap}-byte cap")
        self.status = status


@dataclass(frozen=True, slots=True)
class Origin:
    host: str
    port: int
    tls: bool
    host_header: str


class Transport:
    """The process's vendor connections (``Runtime.transport``), on one event loop."""

    def __init__(
        self,
        limit: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        keepalive: float = KEEPALIVE,
    ) -> None:
        self._limit = limit
        self._busy = 0
        self._room: deque[asyncio.Future[None]] = deque()
        self._idle: dict[Origin, deque[_Connection]] = {}  # oldest first
        self._open: set[_Connection] = set()
        self._origins: dict[str, Origin] = {}
        self._ssl = ssl_context
        self._keepalive = keepalive
        self._connecting = asyncio.Semaphore(CONNECTING)
        self._closed = False

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        timeouts: Timeouts,
        data: bytes | None = None,
        max_bytes: int = 8 * 1024 * 1024,
    ) -> Answer:
        if self._closed:
            raise RuntimeError("the transport is closed")
        origin, target = self._split(url)
        head = _head(method, target, origin, headers, data)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeouts.total
        if self._busy >= self._limit:
            await self._wait_for_room()
        self._busy += 1
        conn: _Connection | None = None
        try:
            conn = self._reuse(origin, loop.time())
            if conn is None:
                conn = await self._connect(origin, min(timeouts.connect, deadline - loop.time()))
            answer = await conn.exchange(head, data, deadline, max_bytes, timeouts.total)
            if conn.reusable:
                self._keep(origin, conn, loop.time())
                conn = None
            return answer
        finally:
            if conn is not None:
                self._drop(conn)
            self._busy -= 1
            while self._room:
                waiter = self._room.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    break

    async def _wait_for_room(self) -> None:
        while self._busy >= self._limit:
            waiter = asyncio.get_running_loop().create_future()
            self._room.append(waiter)
            await waiter

    def _split(self, url: str) -> tuple[Origin, str]:
        """The origin (parsed once per scheme, host and port) and the request target."""
        start = url.find("://")
        cut = url.find("/", start + 3) if start >= 0 else -1
        prefix, target = (url, "/") if cut < 0 else (url[:cut], url[cut:])
        origin = self._origins.get(prefix)
        if origin is None:
            origin = _origin(prefix, url)
            if len(self._origins) > 64:
                self._origins.clear()
            self._origins[prefix] = origin
        fragment = target.find("#")
        if fragment >= 0:
            target = target[:fragment]
        if not _SENDABLE(target):
            target = quote(target, safe=_REQUOTE_SAFE, encoding="utf-8")
        return origin, target

    def _reuse(self, origin: Origin, now: float) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to be closed
            if not conn.closed and now - conn.idle_since < self._keepalive:
                return conn
            self._drop(conn)
        return None

    def _keep(self, origin: Origin, conn: _Connection, now: float) -> None:
        """Put a connection back for the next request; close those idle too long (checked as
        requests come: a server closes its own idle ones, and ``close`` the rest)."""
        conn.idle_since = now
        idle = self._idle.get(origin)
        if idle is None:
            idle = self._idle[origin] = deque()
        idle.append(conn)
        while idle and (now - idle[0].idle_since >= self._keepalive or idle[0].closed):
            self._drop(idle.popleft())

    def _drop(self, conn: _Connection) -> None:
        conn.close()
        self._open.discard(conn)

    async def _connect(self, origin: Origin, budget: float) -> _Connection:
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if origin.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            async with asyncio.timeout(max(budget, 0.0)), self._connecting:
                _, conn = await loop.create_connection(
                    _Connection,
                    origin.host,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context is not None else None,
                )
        except TimeoutError as exc:
            raise ConnectTimeout(f"connecting to {origin.host}:{origin.port} timed out") from exc
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise ConnectFailed(origin.host, origin.port, str(exc) or type(exc).__name__) from exc
        self._open.add(conn)
        return conn

    async def close(self) -> None:
        self._closed = True
        for conn in self._open:
            conn.close()
        self._open.clear()
        self._idle.clear()


def _origin(prefix: str, url: str) -> Origin:
    try:
        parts = urlsplit(prefix)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(url) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise InvalidURL(url)
    if "?" in prefix or "#" in prefix:
        raise InvalidURL(url)
    tls = parts.scheme == "https"
    default = 443 if tls else 80
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    return Origin(
        host=host,
        port=port or default,
        tls=tls,
        host_header=shown if port in (None, default) else f"{shown}:{port}",
    )


def _head(
    method: str, target: str, origin: Origin, headers: Mapping[str, str], data: bytes | None
) -> bytes:
    """The request line and headers. A header name or value that could end the line early
    is refused (its value is never shown: it may be a credential)."""
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {origin.host_header}\r\n"]
    given = set()
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise InvalidURL(f"header {name!r} cannot be sent")
        given.add(name.lower())
        lines.append(f"{name}: {value}\r\n")
    if "user-agent" not in given:
        lines.append(f"User-Agent: {USER_AGENT}\r\n")
    if "accept" not in given:
        lines.append("Accept: */*\r\n")
    if "accept-encoding" not in given:
        lines.append("Accept-Encoding: gzip, deflate\r\n")
    if data is not None or method in _BODY_METHODS:
        lines.append(f"Content-Length: {len(data or b'')}\r\n")
    lines.append("\r\n")
    try:
        return "".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise InvalidURL("a header holds characters HTTP/1.1 cannot carry") from exc


class _Stop(Exception):
    """Raised in a parser callback to stop parsing; the reason is ``_Connection.error``."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection and the parser of its answers."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        self.waiter: asyncio.Future[Answer] | None = None
        self.error: TransportError | None = None
        self._reset(0)

    def _reset(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.status = 0
        self.head_bytes = 0
        self.headers_done = False
        self.declared: int | None = None
        self.chunked = False
        self.encoding = ""
        self.content_type = ""
        self.retry_after: str | None = None
        self.parts: list[bytes] = []
        self.size = 0

    # --- the exchange --------------------------------------------------------------------

    async def exchange(
        self, head: bytes, data: bytes | None, deadline: float, max_bytes: int, total: float
    ) -> Answer:
        loop = asyncio.get_running_loop()
        self._reset(max_bytes)
        self.reusable = False
        waiter: asyncio.Future[Answer] = loop.create_future()
        self.waiter = waiter
        timer = loop.call_at(deadline, self._expire, total)
        try:
            assert self.transport is not None
            self.transport.write(head + data if data else head)
            return await waiter
        finally:
            timer.cancel()
            self.waiter = None

    def _expire(self, total: float) -> None:
        self._fail(AnswerTimeout(f"no whole answer within {total}s"))

    def _fail(self, error: TransportError) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():  # bytes nobody asked for: the connection is unsound
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            self._fail(self.error or Disconnected("answer not readable"))
            return
        except httptools.HttpParserUpgrade:
            self._fail(Disconnected("the server switched protocols"))
            return
        except httptools.HttpParserError as exc:
            self._fail(Disconnected(f"not an HTTP/1.1 answer: {exc}"))
            return
        if not self.headers_done:  # still in the head: bounded, as a body is
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD:
                self._fail(Disconnected(f"answer head over {MAX_HEAD} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers_done and self.declared is None and not self.chunked:
            self._complete()  # a body that ends with the connection, as HTTP/1.0 sends one
            return
        reason = "mid-answer" if self.headers_done else "before answering"
        detail = f": {exc}" if exc is not None else ""
        self._fail(Disconnected(f"the server closed the connection {reason}{detail}"))

    # --- httptools callbacks -------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        if key == b"content-type":
            self.content_type = value.split(b";", 1)[0].strip().lower().decode("latin-1")
        elif key == b"content-length":
            self.declared = int(value) if value.strip().isdigit() else None
        elif key == b"retry-after":
            self.retry_after = value.decode("latin-1")
        elif key == b"transfer-encoding":
            self.chunked = b"chunked" in value.lower()
        elif key == b"content-encoding":
            self.encoding = value.strip().lower().decode("latin-1")

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.status = self.parser.get_status_code()
        if self.declared is not None and self.declared > self.max_bytes:
            self.error = TooLarge(self.status, self.declared, self.max_bytes)
            raise _Stop

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.max_bytes:
            self.error = TooLarge(self.status, None, self.max_bytes)
            raise _Stop
        self.parts.append(body)

    def on_message_complete(self) -> None:
        if self.status < 200:  # an interim answer (100 Continue, 103): the final one follows
            self._reset(self.max_bytes)
            return
        self.reusable = self.parser.should_keep_alive()
        self._complete()

    def _complete(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        parts = self.parts
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        if self.encoding and self.encoding != "identity":
            try:
                body = _decoded(body, self.encoding, self.status, self.max_bytes)
            except TransportError as error:
                self.error = error
                self._fail(error)
                return
        waiter.set_result(Answer(self.status, body, self.content_type, self.retry_after))


def _decoded(body: bytes, encoding: str, status: int, cap: int) -> bytes:
    """A gzip or deflate body, decoded up to ``cap`` bytes."""
    if encoding in ("gzip", "x-gzip"):
        tries = [16 + zlib.MAX_WBITS]
    elif encoding == "deflate":
        tries = [zlib.MAX_WBITS, -zlib.MAX_WBITS]  # zlib-wrapped, as the RFC says, or raw
    else:
        raise Disconnected(f"answer in an encoding not asked for: {encoding}")
    for wbits in tries:
        decoder = zlib.decompressobj(wbits)
        try:
            out = decoder.decompress(body, cap + 1)
        except zlib.error:
            continue
        if len(out) > cap:
            raise TooLarge(status, None, cap)
        return out
    raise Disconnected(f"answer not valid {encoding}")
