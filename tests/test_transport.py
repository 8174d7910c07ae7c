"""The vendor transport against servers that answer as HTTP/1.1 allows and as it does not: on
asyncio's loop and on uvloop's (the pool processes run uvloop)."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop

from countermand.errors import Misconfigured, TransientError, UnreachableError
from countermand.localredis import free_port
from countermand.providers.http import exchange
from countermand.providers.transport import (
    CONNECTING,
    AnswerTimeout,
    ConnectFailed,
    ConnectTimeout,
    Disconnected,
    InvalidURL,
    Timeouts,
    TooLarge,
    Transport,
)
from tests.conftest import until

T = TypeVar("T")
DATA = Path(__file__).parent / "data"
CERT, KEY = DATA / "tls-test-cert.pem", DATA / "tls-test-key.pem"  # self-signed, for tests only
QUICK = Timeouts(total=5, connect=5)
OK = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
      b"Content-Length: 2\r\n\r\n{}")  # fmt: skip
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, T]], T]:
    def on_loop(coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=LOOPS[request.param]) as runner:
            return runner.run(coro)

    return on_loop


Reply = Callable[[int, bytes, asyncio.StreamWriter], Awaitable[bool]]


async def reply_ok(_: int, __: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(OK)
    return True


@dataclass
class Server:
    """A raw HTTP/1.1 server: ``reply(request number, head, writer)`` answers each request
    and says whether to keep the connection."""

    reply: Reply
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)
    open_now: int = 0
    busy: int = 0
    most_busy: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.heads.append(head)
                self.busy += 1
                self.most_busy = max(self.most_busy, self.busy)
                try:
                    keep = await self.reply(len(self.heads), head, writer)
                    await writer.drain()
                finally:
                    self.busy -= 1
                if not keep:
                    return
        except ConnectionError:
            return
        finally:
            self.open_now -= 1
            writer.close()


@asynccontextmanager
async def serving(
    reply: Reply = reply_ok, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[Server, str]]:
    server = Server(reply)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        listener.close()


@asynccontextmanager
async def transport(**options: Any) -> AsyncIterator[Transport]:
    made = Transport(limit=options.pop("limit", 10), **options)
    try:
        yield made
    finally:
        await made.close()


def test_one_connection_serves_every_request_in_turn(run: Any) -> None:
    async def main() -> None:
        async with serving() as (server, base), transport() as client:
            for n in range(20):
                answer = await client.request("POST", f"{base}/c/{n}", headers={}, timeouts=QUICK)
                assert (answer.status, answer.body) == (200, b"{}")
                assert answer.content_type == "application/json"
        assert server.connections == 1
        assert server.heads[0].startswith(b"POST /c/0 HTTP/1.1\r\nHost: 127.0.0.1:")
        assert b"\r\nContent-Length: 0\r\n" in server.heads[0]

    run(main())


def test_a_connection_the_server_ends_is_not_reused(run: Any) -> None:
    async def close_after(_: int, __: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(OK.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        return False

    async def main() -> None:
        async with serving(close_after) as (server, base), transport() as client:
            for _ in range(3):
                assert (await client.request("GET", base, headers={}, timeouts=QUICK)).body == b"{}"
        assert server.connections == 3

    run(main())


def test_a_connection_closed_while_idle_is_replaced(run: Any) -> None:
    """The server answers, keeps quiet about it and closes the connection a moment later."""

    async def quiet_close(_: int, __: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(OK)
        return False

    async def main() -> None:
        async with serving(quiet_close) as (server, base), transport() as client:
            await client.request("GET", base, headers={}, timeouts=QUICK)
            await until(lambda: server.open_now == 0, 5)
            await until(lambda: all(c.closed for idle in client._idle.values() for c in idle), 5)
            assert (await client.request("GET", base, headers={}, timeouts=QUICK)).status == 200
        assert server.connections == 2

    run(main())


def test_idle_connections_expire(run: Any) -> None:
    async def main() -> None:
        async with serving() as (server, base), transport(keepalive=0.0) as client:
            for _ in range(3):
                await client.request("GET", base, headers={}, timeouts=QUICK)
        assert server.connections == 3

    run(main())


def test_chunked_and_connection_delimited_bodies(run: Any) -> None:
    async def chunked(n: int, _: bytes, writer: asyncio.StreamWriter) -> bool:
        if n == 1:  # an interim answer first, which HTTP/1.1 lets a server send unasked
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n")  # fmt: skip
            return True
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        return False

    async def main() -> None:
        async with serving(chunked) as (server, base), transport() as client:
            first = await client.request("GET", base, headers={}, timeouts=QUICK)
            second = await client.request("GET", base, headers={}, timeouts=QUICK)
        assert first.body == b'{"a":1}'
        assert (second.body, second.content_type) == (b"until the end", "text/plain")
        assert server.connections == 1

    run(main())


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b, wbits=-15)),  # raw, as some servers send it
    ],
)
def test_compressed_answers_are_decoded_within_the_cap(
    run: Any, encoding: str, pack: Callable[[bytes], bytes]
) -> None:
    body = b'{"status":true}'
    bomb = pack(b" " * 2_000_000)

    async def packed(n: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
        assert b"\r\nAccept-Encoding: gzip, deflate\r\n" in head
        data = pack(body) if n == 1 else bomb
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n".encode() + data)  # fmt: skip
        return True

    async def main() -> None:
        async with serving(packed) as (_, base), transport() as client:
            answer = await client.request("GET", base, headers={}, timeouts=QUICK)
            assert answer.body == body
            with pytest.raises(TooLarge):
                await client.request("GET", base, headers={}, timeouts=QUICK, max_bytes=100_000)

    run(main())


def test_an_answer_cut_short_or_never_sent(run: Any) -> None:
    async def broken(n: int, _: bytes, writer: asyncio.StreamWriter) -> bool:
        if n == 1:
            writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"status"')
            return False  # closed 10 bytes into a 100-byte body
        if n == 2:
            return False  # closed without a byte
        if n == 3:
            pad = b"X-Pad: " + b"x" * 200_000 + b"\r\n"
            writer.write(b"HTTP/1.1 200 OK\r\n" + pad + b"Content-Length: 0\r\n\r\n")
            return True
        writer.write(b"SMTP ready\r\n\r\n")
        return True

    async def main() -> None:
        async with serving(broken) as (_, base), transport() as client:
            with pytest.raises(Disconnected, match="mid-answer"):
                await client.request("GET", base, headers={}, timeouts=QUICK)
            with pytest.raises(Disconnected, match="before answering"):
                await client.request("GET", base, headers={}, timeouts=QUICK)
            with pytest.raises(Disconnected, match="head over"):
                await client.request("GET", base, headers={}, timeouts=QUICK)
            with pytest.raises(Disconnected, match=r"not an HTTP/1\.1 answer"):
                await client.request("GET", base, headers={}, timeouts=QUICK)
            # and through the call path: sent, so uncertain
            with pytest.raises(TransientError) as caught:
                await exchange(client, "POST", base, headers={}, timeout=QUICK)
            assert caught.value.uncertain is True

    run(main())


def test_no_answer_in_time_closes_the_connection(run: Any) -> None:
    async def silent(_: int, __: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(30)
        return False

    async def main() -> None:
        async with serving(silent) as (server, base), transport() as client:
            with pytest.raises(AnswerTimeout):
                await client.request("GET", base, headers={}, timeouts=Timeouts(0.2, 5))
            with pytest.raises(TransientError) as caught:
                await exchange(client, "POST", base, headers={}, timeout=Timeouts(0.2, 5))
            assert caught.value.uncertain is True
            assert not client._idle.get(next(iter(client._origins.values())))
        assert server.connections == 2

    run(main())


def test_a_cancelled_request_never_leaves_its_connection_for_the_next(run: Any) -> None:
    async def slow_first(n: int, _: bytes, writer: asyncio.StreamWriter) -> bool:
        if n == 1:
            await asyncio.sleep(30)
        writer.write(OK)
        return True

    async def main() -> None:
        async with serving(slow_first) as (server, base), transport() as client:
            task = asyncio.create_task(client.request("GET", base, headers={}, timeouts=QUICK))
            await until(lambda: len(server.heads) == 1, 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await client.request("GET", base, headers={}, timeouts=QUICK)).body == b"{}"
        assert server.connections == 2

    run(main())


def test_connections_in_use_stay_within_the_limit(run: Any) -> None:
    gate = asyncio.Event()

    async def held(_: int, __: bytes, writer: asyncio.StreamWriter) -> bool:
        await gate.wait()
        writer.write(OK)
        return True

    async def main() -> None:
        async with serving(held) as (server, base), transport(limit=2) as client:
            calls = [client.request("GET", base, headers={}, timeouts=QUICK) for _ in range(6)]
            tasks = [asyncio.create_task(call) for call in calls]
            await until(lambda: server.busy == 2, 5)
            gate.set()
            answers = await asyncio.gather(*tasks)
        assert [a.status for a in answers] == [200] * 6
        assert server.most_busy == 2 and server.connections == 2

    run(main())


def test_nobody_listening_and_a_handshake_that_never_ends(run: Any) -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts TCP, never speaks TLS

    async def main() -> None:
        async with transport() as client:
            nobody = f"http://127.0.0.1:{free_port()}/"
            with pytest.raises(ConnectFailed):
                await client.request("GET", nobody, headers={}, timeouts=QUICK)
            with pytest.raises(UnreachableError):
                await exchange(client, "POST", nobody, headers={}, timeout=QUICK)
            listener = await asyncio.start_server(mute, "127.0.0.1", 0)
            port = listener.sockets[0].getsockname()[1]
            try:
                url, patience = f"https://127.0.0.1:{port}/", Timeouts(total=5, connect=0.2)
                with pytest.raises(ConnectTimeout):
                    await client.request("GET", url, headers={}, timeouts=patience)
                with pytest.raises(TransientError) as caught:
                    await exchange(client, "POST", url, headers={}, timeout=patience)
                assert caught.value.uncertain is False  # nothing was sent
            finally:
                listener.close()

    run(main())


def test_tls_checks_the_server_and_keeps_the_connection(run: Any) -> None:
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(CERT, KEY)
    trusting = ssl.create_default_context(cafile=str(CERT))

    async def main() -> None:
        async with serving(tls=served) as (server, base):
            async with transport() as default:  # the system's CAs: a self-signed server fails
                with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
                    await default.request("GET", base, headers={}, timeouts=QUICK)
            async with transport(ssl_context=trusting) as client:
                for _ in range(3):
                    answer = await client.request("GET", f"{base}/x", headers={}, timeouts=QUICK)
                    assert answer.body == b"{}"
        assert server.connections == 1  # one for three requests (a failed handshake is none)

    run(main())


def test_what_cannot_be_sent_is_refused_before_anything_is(run: Any) -> None:
    async def main() -> None:
        async with serving() as (server, base), transport() as client:
            with pytest.raises(InvalidURL) as caught:
                headers = {"Authorization": "Bearer s3cret\r\nX-Evil: 1"}
                await client.request("GET", base, headers=headers, timeouts=QUICK)
            assert "s3cret" not in str(caught.value)
            for url in ("ftp://127.0.0.1/x", "http:///x", "127.0.0.1/x", "http://u:p@h/x"):
                with pytest.raises(Misconfigured):
                    await exchange(client, "GET", url, headers={}, timeout=QUICK)
            await client.request("GET", f"{base}/a b/é?q=1#frag", headers={}, timeouts=QUICK)
        assert server.heads[-1].startswith(b"GET /a%20b/%C3%A9?q=1 HTTP/1.1\r\n")
        assert server.connections == 1

    run(main())


def test_connections_are_made_a_few_at_a_time() -> None:
    """A burst of lanes opens its connections at most ``CONNECTING`` at a time (a burst of new
    connections overflows a server's accept queue)."""
    making, most = 0, 0

    async def main() -> None:
        loop = asyncio.get_running_loop()
        real = loop.create_connection

        async def slow(*args: Any, **kwargs: Any) -> Any:
            nonlocal making, most
            making += 1
            most = max(most, making)
            try:
                await asyncio.sleep(0.01)
                return await real(*args, **kwargs)
            finally:
                making -= 1

        loop.create_connection = slow  # type: ignore[method-assign]
        async with serving() as (server, base), transport(limit=200) as client:
            calls = [client.request("GET", base, headers={}, timeouts=QUICK) for _ in range(60)]
            answers = await asyncio.gather(*calls)
        assert [a.status for a in answers] == [200] * 60
        assert server.connections == 60

    with asyncio.Runner() as runner:
        runner.run(main())
    assert most == CONNECTING
