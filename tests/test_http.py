"""One exchange against answers no vendor should give: what each means for the call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from countermand.errors import Misconfigured, TransientError, UnreachableError
from countermand.localredis import free_port
from countermand.providers.applivery import success_data
from countermand.providers.http import exchange
from tests.conftest import run

TIMEOUT = aiohttp.ClientTimeout(total=1, sock_connect=1)


async def stall(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"status": tr')
    await asyncio.sleep(5)
    return response


async def reset(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={"Content-Length": "1000"})
    await response.prepare(request)
    await response.write(b'{"status": true')
    assert request.transport is not None
    request.transport.close()
    return response


def fixed(response: web.Response) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return response

    return handler


ROUTES = {
    "/html": lambda: web.Response(text="<html>login</html>", content_type="text/html"),
    "/garbage": lambda: web.Response(body=b'{"status": tr', content_type="application/json"),
    "/envelope": lambda: web.json_response({"ok": 1}),
    "/big": lambda: web.Response(body=b"x" * (2 * 1024 * 1024)),
}


@asynccontextmanager
async def server() -> AsyncIterator[str]:
    app = web.Application()
    for path, make in ROUTES.items():
        app.router.add_get(path, fixed(make()))
    app.router.add_get("/stall", stall)
    app.router.add_get("/reset", reset)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def get(base: str, path: str, max_bytes: int = 1024 * 1024) -> object:
    async with aiohttp.ClientSession() as session:
        resp = await exchange(
            session, "GET", base + path, headers={}, timeout=TIMEOUT, max_bytes=max_bytes
        )
        return success_data(resp)


@pytest.mark.parametrize(
    ("path", "error", "uncertain"),
    [
        ("/html", Misconfigured, None),  # a web page: the base URL is wrong
        ("/garbage", TransientError, True),  # truncated JSON: may come after the cancel took
        ("/envelope", TransientError, True),  # a 200 with an unexpected envelope
        ("/big", TransientError, True),  # over the size cap: not read
        ("/stall", TransientError, True),  # headers, then silence past the timeout
        ("/reset", TransientError, True),  # connection closed mid-body
    ],
)
def test_what_a_broken_answer_means(path: str, error: type[Exception], uncertain: bool) -> None:
    async def main() -> None:
        async with server() as base:
            with pytest.raises(error) as caught:
                await get(base, path)
            if uncertain is not None:
                assert isinstance(caught.value, TransientError)
                assert caught.value.uncertain is uncertain

    run(main())


def test_nobody_listening_reached_nobody() -> None:
    async def main() -> None:
        with pytest.raises(UnreachableError) as caught:
            await get(f"http://127.0.0.1:{free_port()}", "/x")
        assert caught.value.uncertain is False

    run(main())
