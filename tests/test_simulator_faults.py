"""The simulator's broken answers, each as it claims: the bytes on the wire, what a real aiohttp
client sees, and whether the vendor applied the call (``countermand/simulator/faults.py``).

Each test starts the simulator on a free port inside ``asyncio.run`` (as ``test_simulator``
does) with one fault at rate 1, and talks to it with aiohttp, or with a raw socket where only
the bytes tell (a FIN from a RST)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from countermand.simulator import APPLE, ENOS, SIMULATOR, SimulatorConfig, start
from countermand.simulator.broken import BAD_GATEWAY_PAGE, HUGE_BODY_BYTES
from countermand.simulator.cli import simulator as simulator_command
from countermand.simulator.config import BROKEN_FIELDS, RUNTIME_FIELDS
from countermand.simulator.enos import encryption, signature
from countermand.simulator.state import AppleCommand, EnosCommand

TOKEN = "sim-applivery-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ORG, EORG = "acme-corp", "o15541858646501"
CMD, MISSING = f"{1:024x}", f"{2:024x}"
CANCEL = f"/v1/organizations/{ORG}/mdm/apple/enterprise/commands/device/S1/{CMD}/cancel"
READ_MISSING = f"/v1/organizations/{ORG}/mdm/apple/enterprise/commands/device/S1/{MISSING}"
CLEAN = b'{"status":true,"data":{"canceled":"OK"}}'  # the clean answer to CANCEL
NOT_FOUND = b'{"status":false,"error":{"code":3001,"message":"Entity not found"}}'
HANG = 1.0


@dataclass
class Sim:
    url: str
    http: aiohttp.ClientSession
    app: Any

    def status(self) -> str:
        """The Apple command's status in the store: did the vendor apply the cancel?"""
        return str(self.app[SIMULATOR].store.apple.by_key[(ORG, "device", "S1", CMD)].status)

    def log(self) -> list[Any]:
        return list(self.app[SIMULATOR].log)


@asynccontextmanager
async def simulator(**config: Any) -> AsyncIterator[Sim]:
    runner, port = await start(SimulatorConfig(**{"hang_seconds": HANG, **config}))
    runner.app[SIMULATOR].store.add(APPLE, [AppleCommand(ORG, "device", "S1", CMD, "Pending")])
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            yield Sim(f"http://127.0.0.1:{port}", http, runner.app)
    finally:
        await runner.cleanup()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(autouse=True)
def _server_stays_quiet(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No broken answer is an error of the simulator itself (aiohttp logs those)."""
    with caplog.at_level(logging.WARNING, logger="aiohttp"):
        yield
    errors = [r for r in caplog.records if r.name.startswith("aiohttp")]
    assert errors == [], [r.getMessage() for r in errors]


async def raw(sim: Sim, method: str, path: str) -> tuple[bytes, bytes, str]:
    """One request over a plain socket: (head, body, how it ended: ``eof`` or ``reset``)."""
    host, port = sim.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
    writer.write(f"{request}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
    data, ended = b"", "eof"
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            data += chunk
    except ConnectionResetError:
        ended = "reset"
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body, ended


def header(head: bytes, name: str) -> str:
    for line in head.decode().split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    raise AssertionError(f"no {name} in {head!r}")


# --- applied or not ------------------------------------------------------------------------

APPLIED = {
    "error": False,
    "bad_gateway": False,
    "drop": False,
    "timeout": True,
    "malformed": True,
    "truncated": True,
    "envelope": True,
    "stall": True,
    "huge": True,
    "reset": True,
}


@pytest.mark.parametrize("fault", sorted(APPLIED))
def test_each_fault_says_whether_the_vendor_applied_the_cancel(fault: str) -> None:
    async def main() -> None:
        async with simulator(**{f"{fault}_rate": 1.0}) as sim:
            broken = fault in ("drop", "truncated", "reset")
            with pytest.raises(aiohttp.ClientError) if broken else contextlib.nullcontext():
                async with sim.http.post(CANCEL, headers=AUTH) as response:
                    await response.read()
            await _until(lambda: len(sim.log()) == 1)  # the stall's record comes when it ends
            assert sim.status() == ("Canceled" if APPLIED[fault] else "Pending")
            [record] = sim.log()
            assert record.fault == fault and record.route == "apple.cancel"
            # the vendor's own status where it answered; the proxy's 502; 0 when dropped
            expected = {"error": 503, "bad_gateway": 502, "drop": 0}.get(fault, 200)
            assert record.status == expected

    run(main())


async def _until(check: Any, deadline: float = 10) -> None:
    give_up = time.monotonic() + deadline
    while not check():
        assert time.monotonic() < give_up, "condition not met"
        await asyncio.sleep(0.01)


# --- the bytes of each broken answer -------------------------------------------------------


def test_bad_gateway_is_a_proxys_html_page() -> None:
    async def main() -> None:
        async with simulator(bad_gateway_rate=1.0) as sim:
            async with sim.http.post(CANCEL, headers=AUTH) as response:
                assert (response.status, response.content_type) == (502, "text/html")
                assert await response.text() == BAD_GATEWAY_PAGE
            assert "502 Bad Gateway" in BAD_GATEWAY_PAGE and "nginx" in BAD_GATEWAY_PAGE

    run(main())


def test_malformed_is_whole_http_around_half_the_json() -> None:
    async def main() -> None:
        async with simulator(malformed_rate=1.0) as sim:
            for path, method, status, clean in [(CANCEL, "POST", 200, CLEAN),
                                                (READ_MISSING, "GET", 404, NOT_FOUND)]:  # fmt: skip
                async with sim.http.request(method, path, headers=AUTH) as response:
                    body = await response.read()  # complete: Content-Length matches
                    assert response.status == status
                    assert response.content_type == "application/json"
                    assert response.content_length == len(body) == len(clean) // 2
                assert body == clean[: len(clean) // 2]
                with pytest.raises(ValueError):
                    json.loads(body)
            assert [(r.status, r.code, r.fault) for r in sim.log()] == [
                (200, None, "malformed"), (404, 3001, "malformed")
            ]  # fmt: skip

    run(main())


def test_truncated_promises_more_than_it_sends_then_closes() -> None:
    async def main() -> None:
        async with simulator(truncated_rate=1.0) as sim:
            head, body, ended = await raw(sim, "POST", CANCEL)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert int(header(head, "Content-Length")) == len(CLEAN)
            assert (body, ended) == (CLEAN[: len(CLEAN) // 2], "eof")  # a FIN, not a reset
            async with sim.http.get(READ_MISSING, headers=AUTH) as response:
                assert response.status == 404
                with pytest.raises(aiohttp.ClientPayloadError, match="content length"):
                    await response.read()

    run(main())


def test_reset_sends_half_the_body_then_a_tcp_reset() -> None:
    async def main() -> None:
        async with simulator(reset_rate=1.0) as sim:
            head, body, ended = await raw(sim, "POST", CANCEL)
            assert int(header(head, "Content-Length")) == len(CLEAN)
            assert (body, ended) == (CLEAN[: len(CLEAN) // 2], "reset")
            async with sim.http.get(READ_MISSING, headers=AUTH) as response:
                assert response.status == 404
                with pytest.raises(aiohttp.ClientPayloadError, match="reset"):
                    await response.read()

    run(main())


def test_unexpected_envelope_wraps_2xx_answers_only() -> None:
    async def main() -> None:
        async with simulator(envelope_rate=1.0) as sim:
            async with sim.http.post(CANCEL, headers=AUTH) as response:
                assert (response.status, response.content_type) == (200, "application/json")
                wrapped = json.loads(await response.read())  # valid JSON ...
            assert "status" not in wrapped and wrapped["statusCode"] == 200  # ... not the vendor's
            assert json.loads(wrapped["body"]) == json.loads(CLEAN)
            async with sim.http.get(READ_MISSING, headers=AUTH) as response:
                assert response.status == 404 and await response.read() == NOT_FOUND
            assert [r.fault for r in sim.log()] == ["envelope", ""]

    run(main())


def test_stall_sends_headers_then_nothing_past_the_clients_read_timeout() -> None:
    async def main() -> None:
        async with simulator(stall_rate=1.0) as sim:
            patient = aiohttp.ClientTimeout(sock_read=HANG / 5)
            async with sim.http.post(CANCEL, headers=AUTH, timeout=patient) as response:
                assert response.status == 200 and response.content_length == len(CLEAN)
                with pytest.raises(aiohttp.SocketTimeoutError):
                    await response.read()
            started = time.monotonic()
            async with sim.http.post(CANCEL, headers=AUTH) as response:  # waits it out
                assert json.loads(await response.read())["error"]["code"] == 5106  # applied
            assert time.monotonic() - started >= HANG

    run(main())


def test_huge_is_the_vendors_answer_padded_to_50_mib() -> None:
    async def main() -> None:
        async with simulator(huge_rate=1.0) as sim:
            async with sim.http.post(CANCEL, headers=AUTH) as response:
                assert response.content_length == HUGE_BODY_BYTES == 50 * 1024 * 1024
                body = await response.read()
            assert len(body) == HUGE_BODY_BYTES and json.loads(body) == json.loads(CLEAN)
            async with sim.http.get(READ_MISSING, headers=AUTH) as response:
                assert response.status == 404  # a client that leaves after the headers
            await _until(lambda: len(sim.log()) == 2)  # the handler stops writing and logs
            assert [(r.status, r.fault) for r in sim.log()] == [(200, "huge"), (404, "huge")]

    run(main())


# --- draws, log, stats, routes, settings ---------------------------------------------------


def test_one_fault_per_request_drawn_from_the_seed() -> None:
    rates = {field: 0.12 for field in BROKEN_FIELDS} | {"hang_seconds": 0.01}

    async def faults(seed: int) -> list[str]:
        async with simulator(seed=seed, **rates) as sim:
            for _ in range(40):
                try:
                    async with sim.http.get(READ_MISSING, headers=AUTH) as response:
                        await response.read()
                except aiohttp.ClientError:
                    pass
            await _until(lambda: len(sim.log()) == 40)
            stats = (await (await sim.http.get("/_sim/stats")).json())["by_fault"]
            seen = [r.fault for r in sim.log()]
            assert stats == {f: seen.count(f) for f in set(seen) if f}
            return seen

    first = run(faults(5))
    assert first == run(faults(5)) != run(faults(6))
    assert len(set(first) - {""}) >= 4


def test_enos_routes_are_faulted_the_token_endpoint_never() -> None:
    async def main() -> None:
        async with simulator(malformed_rate=1.0) as sim:
            sim.app[SIMULATOR].store.add(ENOS, [EnosCommand(EORG, "a1", "pk1", "dk1", "7", 1)])
            ts = int(time.time() * 1000)
            key, secret = "sim-access-key", "sim-secret-key"
            body = {"appKey": key, "timestamp": ts, "encryption": encryption(key, str(ts), secret)}
            async with sim.http.post("/apim-token-service/v2.0/token/get", json=body) as answer:
                token = (await answer.json())["data"]["accessToken"]  # whole JSON
            params = {"action": "cancel", "orgId": EORG, "assetId": "a1", "commandId": "7"}
            signed = signature(token, params.items(), "", str(ts), secret)
            headers = {"apim-accesstoken": token, "apim-timestamp": str(ts),
                       "apim-signature": signed}  # fmt: skip
            path = "/connect-service/v2.1/commands"
            async with sim.http.post(path, params=params, headers=headers) as answer:
                text = await answer.read()
            with pytest.raises(ValueError):
                json.loads(text)
            assert sim.app[SIMULATOR].store.enos.by_key  # the cancel was applied
            assert [c.state for c in sim.app[SIMULATOR].store.enos.by_key.values()] == [2]
            assert [(r.route, r.fault) for r in sim.log()] == [
                ("enos.token", ""), ("enos.cancel", "malformed")
            ]  # fmt: skip

    run(main())


def test_fault_rates_change_at_runtime_and_are_checked() -> None:
    assert set(BROKEN_FIELDS) <= RUNTIME_FIELDS

    async def main() -> None:
        async with simulator() as sim:
            for field in BROKEN_FIELDS:
                async with sim.http.post("/_sim/config", json={field: 0.25}) as answer:
                    assert answer.status == 200 and (await answer.json())[field] == 0.25
                async with sim.http.post("/_sim/config", json={field: 1.5}) as answer:
                    assert answer.status == 400
            async with sim.http.get("/_sim/config") as answer:
                config = await answer.json()
            assert all(config[f] == 0.25 for f in BROKEN_FIELDS)

    run(main())


@pytest.mark.parametrize("field", BROKEN_FIELDS)
def test_every_fault_rate_is_a_cli_option(field: str) -> None:
    """Each option reaches the config (a rate over 1 is refused there, before serving)."""
    from typer import Typer

    app = Typer()
    app.command()(simulator_command)
    option = "--" + field.replace("_", "-")
    done = CliRunner().invoke(app, [option, "1.5"])
    assert done.exit_code == 2 and field in done.output, done.output
