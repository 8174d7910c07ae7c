"""One exchange against answers no vendor should give: what each means for the call, alone
and through the providers against every fault of the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
from aiohttp import web
from pydantic import SecretStr

from countermand.credentials import AppliveryToken, EnosKeys
from countermand.errors import (
    JobStop,
    Misconfigured,
    TransientError,
    Unauthorized,
    UnreachableError,
)
from countermand.localredis import free_port
from countermand.models import Outcome
from countermand.providers import ProviderContext, get_spec
from countermand.providers.applivery import error_result, success_data
from countermand.providers.base import CallResult
from countermand.providers.enos import answer_data
from countermand.providers.http import Response, exchange
from countermand.providers.transport import Timeouts, Transport
from countermand.simulator import APPLE, ENOS, SIMULATOR, SimulatorConfig, start
from countermand.simulator.config import BROKEN_FIELDS
from countermand.simulator.state import WINDOWS, parse
from tests.conftest import run

T = TypeVar("T")

TIMEOUT = Timeouts(total=1, connect=1)


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
    "/cut-404": lambda: web.Response(
        status=404, body=b'{"status":false,"err', content_type="application/json"
    ),
    "/cut-400": lambda: web.Response(
        status=400, body=b'{"status":false,"error":{"co', content_type="application/json"
    ),
    "/cut-401": lambda: web.Response(status=401, body=b'{"sta', content_type="application/json"),
    "/page-404": lambda: web.Response(
        status=404, text="<h1>Not Found</h1>", content_type="text/html"
    ),
    "/proxy-502": lambda: web.Response(
        status=502, text="<html><h1>502 Bad Gateway</h1></html>", content_type="text/html"
    ),
    "/deep": lambda: web.Response(body=b"[" * 100_000, content_type="application/json"),
}


@asynccontextmanager
async def server() -> AsyncIterator[str]:
    app = web.Application()
    for path, make in ROUTES.items():
        app.router.add_get(path, fixed(make()))
    app.router.add_get("/stall", stall)
    app.router.add_get("/reset", reset)
    app.router.add_get("/huge", huge)
    app.router.add_get("/huge-chunked", huge)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def answer(base: str, path: str, max_bytes: int = 1024 * 1024) -> Response:
    transport = Transport(limit=10)
    try:
        return await exchange(
            transport, "GET", base + path, headers={}, timeout=TIMEOUT, max_bytes=max_bytes
        )
    finally:
        await transport.close()


async def get(base: str, path: str, max_bytes: int = 1024 * 1024) -> object:
    """An Applivery reading of the answer: the envelope's data, or its error settled."""
    resp = await answer(base, path, max_bytes)
    return success_data(resp) if 200 <= resp.status < 300 else error_result(resp)


HUGE = 50 * 1024 * 1024
written: dict[str, int] = {}  # bytes each /huge handler managed to write before the client left
finished: dict[str, asyncio.Event] = {}


async def huge(request: web.Request) -> web.StreamResponse:
    """50 MiB of JSON padding, announced (``/huge``) or chunked without a length, counted."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    if request.path == "/huge":
        response.content_length = HUGE
    await response.prepare(request)
    sent, part = 0, b" " * 65536
    try:
        while sent < HUGE:
            await response.write(part)
            sent += len(part)
    except ConnectionError:
        pass
    finally:
        written[request.path] = sent
        finished[request.path].set()
    return response


@pytest.mark.parametrize(
    ("path", "error", "uncertain"),
    [
        ("/html", Misconfigured, None),  # a web page: the base URL is wrong
        ("/garbage", TransientError, True),  # truncated JSON: may come after the cancel took
        ("/envelope", TransientError, True),  # a 200 with an unexpected envelope
        ("/big", TransientError, True),  # over the size cap: not read
        ("/stall", TransientError, True),  # headers, then silence past the timeout
        ("/reset", TransientError, True),  # connection closed mid-body
        ("/cut-404", TransientError, True),  # a 3001 cut short: not a proxy's 404 page
        ("/cut-400", TransientError, True),  # a 5106 cut short: not this target's rejection
        ("/cut-401", Unauthorized, None),  # 401 says it all, readable body or not
        ("/page-404", Misconfigured, None),  # a web server's 404 page: the base URL is wrong
        ("/proxy-502", TransientError, True),  # a gateway error: never proof of a wrong URL
        ("/deep", TransientError, True),  # JSON nested past the parser: no crash
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


def test_only_a_2xx_web_page_proves_the_base_url_wrong() -> None:
    """The same proxy page is a pause as a 2xx, a transient (uncertain) retry as a 502."""

    async def main() -> None:
        async with server() as base:
            page = await answer(base, "/proxy-502")
        assert isinstance(Response(200, page.body, None, page.content_type).not_the_vendor("x"),
                          Misconfigured)  # fmt: skip
        with pytest.raises(TransientError) as caught:
            error_result(page)
        assert caught.value.uncertain is True

    run(main())


@pytest.mark.parametrize("path", ["/huge", "/huge-chunked"])
def test_a_huge_answer_is_refused_without_being_read(path: str) -> None:
    """50 MiB, declared or chunked: refused at the cap (1 MiB here); the server could write
    only what the sockets' buffers hold before the client went away."""

    async def main() -> None:
        finished[path] = asyncio.Event()
        async with server() as base:
            with pytest.raises(TransientError, match="cap") as caught:
                await get(base, path)
            assert caught.value.uncertain is True
            await asyncio.wait_for(finished[path].wait(), 30)
        assert written[path] < HUGE // 4, written[path]

    run(main())


# --- the providers against every fault of the simulator ---------------------------------

APPLE_TOKEN = AppliveryToken(SecretStr("sim-applivery-token"))
ENOS_KEYS = EnosKeys(SecretStr("sim-access-key"), SecretStr("sim-secret-key"))
ORG, EORG, HEX = "acme-corp", "o15541858646501", [f"{n:024x}" for n in range(1, 5)]
FAULTS = [field.removesuffix("_rate") for field in BROKEN_FIELDS]


class Once:
    """One try per request, no pacing: what a single answer makes a provider do."""

    uncertain_tries = 0

    async def __call__(self, send: Callable[[], Awaitable[T]], *, kind: str = "cancel") -> T:
        return await send()


async def what_it_means(
    fault: str, provider: str, method: str, target: dict[str, str]
) -> CallResult | Exception:
    config = SimulatorConfig(**{f"{fault}_rate": 1.0}, hang_seconds=1.0)
    runner, port = await start(config)
    store = runner.app[SIMULATOR].store
    store.add(APPLE, parse(APPLE, [{"org": ORG, "target_type": "device", "target_id": "S1",
                                    "command_id": HEX[0], "status": "Pending"}]))  # fmt: skip
    enos = {"org": EORG, "asset_id": "a1", "product_key": "pk1", "device_key": "dk1",
            "command_id": "1001", "state": 1}  # fmt: skip
    store.add(ENOS, parse(ENOS, [enos]))
    store.add(WINDOWS, parse(WINDOWS, [{"org": ORG, "device_id": "D1", "command_id": HEX[1],
              "actions": [{"cmd_id": "1", "status": "Pending"}]}]))  # fmt: skip
    try:
        transport = Transport(limit=10)
        try:
            context = ProviderContext(
                transport=transport,
                org=EORG if provider == "enos" else ORG,
                base_url=f"http://127.0.0.1:{port}",
                credential=ENOS_KEYS if provider == "enos" else APPLE_TOKEN,
                timeout=Timeouts(total=0.5, connect=0.5),
                shared={},
            )
            made: Any = get_spec(provider).make(context)
            try:
                result: CallResult = await getattr(made, method)(target, Once())
            except Exception as exc:  # what the call path would see
                return exc
            return result
        finally:
            await transport.close()
    finally:
        await runner.cleanup()


CALLS = {
    "apple-cancel": ("applivery-apple", "cancel",
                     {"target_type": "device", "target_id": "S1", "command_id": HEX[0]}),
    "apple-read-missing": ("applivery-apple", "read",
                           {"target_type": "device", "target_id": "S1", "command_id": HEX[3]}),
    "enos-cancel": ("enos", "cancel", {"asset_id": "a1", "command_id": "1001"}),
    "enos-read": ("enos", "read", {"asset_id": "a1", "command_id": "1001"}),
    "windows-read": ("applivery-windows", "read", {"device_id": "D1", "command_id": HEX[1]}),
}  # fmt: skip


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("call", sorted(CALLS))
def test_every_broken_answer_is_retried_uncertain_never_a_stop(fault: str, call: str) -> None:
    """Every fault of the simulator, to a cancel, a read (of a missing command: a 404 in the
    envelope, broken) and a Windows batch read: a TransientError, uncertain, never a job stop
    nor a crash. The one exception is by design: the unexpected envelope breaks only 2xx
    answers, so the 404 of a missing command still reads ``not_found``."""
    provider, method, target = CALLS[call]
    seen = run(what_it_means(fault, provider, method, target))
    if fault == "envelope" and call == "apple-read-missing":
        assert isinstance(seen, CallResult) and seen.outcome is Outcome.NOT_FOUND, seen
        return
    assert isinstance(seen, TransientError), seen
    assert not isinstance(seen, JobStop | UnreachableError)
    assert seen.uncertain is True


def test_vendors_read_the_same_broken_answers_the_same_way() -> None:
    """The rule is shared (``Response.unreadable``): a cut 404 is retried for both vendors."""
    cut = Response(404, b'{"code":114', None, "application/json")
    with pytest.raises(TransientError):
        error_result(cut)
    with pytest.raises(TransientError):
        answer_data(cut)
