"""The API simulator as a real HTTP server: vendor envelopes, faults, log, control routes.

Each test starts the simulator on a free port inside ``asyncio.run`` and talks to it with
aiohttp; the synchronous ``SimulatorClient`` is tested against a server in a thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from countermand.simulator import (
    ANDROID,
    APPLE,
    ENOS,
    SIMULATOR,
    Simulator,
    SimulatorClient,
    SimulatorConfig,
    SimulatorError,
    encryption,
    signature,
    start,
)
from countermand.simulator.seeding import generate
from countermand.simulator.state import (
    AndroidCommand,
    AppleCommand,
    CommandStore,
    EnosCommand,
    StoreError,
    parse,
)

TOKEN = "sim-applivery-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
APP_KEY, SECRET = "sim-access-key", "sim-secret-key"
ORG, EORG = "acme-corp", "o15541858646501"
APPLE_BASE = f"/v1/organizations/{ORG}/mdm/apple/enterprise/commands"
ANDROID_BASE = f"/v1/organizations/{ORG}/mdm/android/enterprise/devices"
HEX = [f"{n:024x}" for n in range(1, 10)]


@dataclasses.dataclass
class Sim:
    http: aiohttp.ClientSession
    sim: Simulator

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, path, **kwargs) as response:
            text = await response.text()
            is_json = response.content_type == "application/json"
            return response.status, json.loads(text) if is_json else text


Scenario = Callable[[Sim], Awaitable[None]]


def run(scenario: Scenario, **config: Any) -> None:
    async def main() -> None:
        runner, port = await start(SimulatorConfig(**config))
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                await scenario(Sim(http, runner.app[SIMULATOR]))
        finally:
            await runner.cleanup()

    asyncio.run(main())


def seed(sim: Sim) -> None:
    """A small known store: two Apple, three Android, three EnOS commands."""
    store = sim.sim.store
    store.add(APPLE, [
        AppleCommand(ORG, "device", "SERIAL1", HEX[0], "Pending"),
        AppleCommand(ORG, "device", "SERIAL1", HEX[1], "Acknowledged"),
    ])  # fmt: skip
    store.add(ANDROID, [
        AndroidCommand(ORG, "imei1", HEX[2], "PENDING", created_at="2026-01-01T00:00:00.000Z"),
        AndroidCommand(ORG, "imei1", HEX[3], "DONE", created_at="2026-01-02T00:00:00.000Z"),
        AndroidCommand(ORG, "imei1", HEX[4], "PENDING", created_at="2026-01-03T00:00:00.000Z"),
    ])  # fmt: skip
    store.add(ENOS, [
        EnosCommand(EORG, "asset01", "pk01", "dev01", "1000000000000000001", 1),
        EnosCommand(EORG, "asset01", "pk01", "dev01", "1000000000000000002", 5),
        EnosCommand(EORG, "asset01", "pk01", "dev01", "1000000000000000003", 1),
    ])  # fmt: skip


def error_code(body: Any) -> int:
    assert body["status"] is False
    return int(body["error"]["code"])


# --- State ------------------------------------------------------------------------------


def test_enos_signature_reproduces_the_worked_example() -> None:
    query = [("k3", "v3"), ("k1", "v1"), ("k2", "v2")]
    body = '{"count":20,"page":1,"desc":"description"}'
    expected = "41a6685e7d044aeb864bd6b24d90614117c638f2d94627ea5dfe5c24746850de"
    assert signature("xxxxaaaxxxx", query, body, "1572574909697", "xxxappSecretxxx") == expected


def test_generation_is_deterministic_and_mixed() -> None:
    first, again, other = (generate(s, 100, 3, ORG, EORG) for s in (1, 1, 2))
    assert first == again
    assert first != other
    apple = first[APPLE]
    assert len(apple) == len(first[ANDROID]) == len(first[ENOS]) == 300
    pending = sum(r.status == "Pending" for r in apple if isinstance(r, AppleCommand))
    retrying = sum(r.status == "Retrying" for r in apple if isinstance(r, AppleCommand))
    assert 0.5 < pending / 300 < 0.7 and 0.03 < retrying / 300 < 0.17
    for provider, records in first.items():  # generated records pass their own checks
        assert parse(provider, [dataclasses.asdict(r) for r in records]) == records


def test_seed_file_and_enos_device_names(tmp_path: Path) -> None:
    records = [dataclasses.asdict(r) for r in generate(3, 2, 2, ORG, EORG)[ENOS]]
    path = tmp_path / "seed.json"
    path.write_text(json.dumps({ENOS: records}))

    async def scenario(s: Sim) -> None:
        assert s.sim.store.dump(ENOS) == records
        assert s.sim.store.dump(APPLE) == []

    run(scenario, seed_file=path)
    store = CommandStore()
    store.add(ENOS, parse(ENOS, records))
    clash = {**records[0], "command_id": "42", "device_key": "elsewhere"}
    with pytest.raises(StoreError, match="different devices"):
        store.add(ENOS, parse(ENOS, [clash]))
    with pytest.raises(StoreError, match="command_id"):
        parse(APPLE, [{"org": ORG, "target_type": "device", "target_id": "x",
                       "command_id": "nothex", "status": "Pending"}])  # fmt: skip


# --- Applivery ----------------------------------------------------------------------------


def test_apple_cancel_read_and_errors() -> None:
    async def scenario(s: Sim) -> None:
        seed(s)
        cancel = f"{APPLE_BASE}/device/SERIAL1/{HEX[0]}/cancel"
        assert await s.call("POST", cancel, headers=AUTH) == (
            200, {"status": True, "data": {"canceled": "OK"}}
        )  # fmt: skip
        status, body = await s.call("GET", f"{APPLE_BASE}/device/SERIAL1/{HEX[0]}", headers=AUTH)
        assert status == 200 and body["data"]["status"] == "Canceled"
        assert body["data"]["canceledAt"] and body["data"]["numTries"] == 0
        status, body = await s.call("POST", cancel, headers=AUTH)
        assert (status, error_code(body)) == (400, 5106)
        assert body["error"]["message"] == "AdmCommand not status pending or tried"
        status, body = await s.call("POST", f"{APPLE_BASE}/device/SERIAL1/{HEX[1]}/cancel",
                                    headers=AUTH)  # fmt: skip
        assert (status, error_code(body)) == (400, 5106)
        status, body = await s.call("POST", f"{APPLE_BASE}/device/OTHER/{HEX[0]}/cancel",
                                    headers=AUTH)  # fmt: skip
        assert (status, error_code(body)) == (404, 3001)

    run(scenario)


def test_applivery_auth_and_invalid_ids() -> None:
    async def scenario(s: Sim) -> None:
        path = f"{APPLE_BASE}/device/SERIAL1/{HEX[0]}/cancel"
        status, body = await s.call("POST", path)
        assert (status, error_code(body)) == (401, 4002)
        status, body = await s.call("POST", path, headers={"Authorization": "Bearer nope"})
        assert (status, error_code(body)) == (401, 4004)
        bad = {
            f"/v1/organizations/a%20b/mdm/apple/enterprise/commands/device/S/{HEX[0]}": (
                "organizationId"
            ),
            f"{APPLE_BASE}/devices/S/{HEX[0]}": "targetType",
            f"{APPLE_BASE}/device/S%C3%A9/{HEX[0]}": "targetId",  # a non-ASCII letter
            f"{APPLE_BASE}/device/S%0A/{HEX[0]}": "targetId",  # a trailing newline
            f"{APPLE_BASE}/device/S/{HEX[0][:-1]}g": "admCommandId",
            f"{ANDROID_BASE}/d-1/commands/{HEX[0]}": "emmDeviceId",
            f"{ANDROID_BASE}/d1/commands/{HEX[0]}x": "emmCommandId",
            f"{ANDROID_BASE}/d1/commands?page=0": "page",
        }
        for path, name in bad.items():
            status, body = await s.call("GET", path, headers=AUTH)
            assert (status, body["error"]) == (
                400,
                {"code": 3002, "message": f"Invalid parameter: {name}"},
            )

    run(scenario)


def test_android_cancel_read_and_list() -> None:
    async def scenario(s: Sim) -> None:
        seed(s)
        cancel = f"{ANDROID_BASE}/imei1/commands/{HEX[2]}/cancel"
        status, body = await s.call("POST", cancel, headers=AUTH)
        assert status == 200 and body["status"] is True
        assert body["data"]["id"] == HEX[2] and body["data"]["status"] == "PENDING"  # accepted
        status, body = await s.call("GET", f"{ANDROID_BASE}/imei1/commands/{HEX[2]}", headers=AUTH)
        assert body["data"]["status"] == "CANCELLED" and body["data"]["config"]["done"] is True
        status, body = await s.call("POST", cancel, headers=AUTH)
        assert (status, error_code(body)) == (400, 5106)
        status, body = await s.call("POST", f"{ANDROID_BASE}/imei2/commands/{HEX[2]}/cancel",
                                    headers=AUTH)  # fmt: skip
        assert (status, error_code(body)) == (404, 3001)
        await s.call("POST", "/_sim/config", json={"android_cancel_done_rate": 1.0})
        await s.call("POST", f"{ANDROID_BASE}/imei1/commands/{HEX[4]}/cancel", headers=AUTH)
        assert s.sim.store.android.by_key[(ORG, "imei1", HEX[4])].status == "DONE"
        status, body = await s.call("GET", f"{ANDROID_BASE}/imei1/commands?page=2&limit=2",
                                    headers=AUTH)  # fmt: skip
        data = body["data"]
        assert [item["id"] for item in data["items"]] == [HEX[2]]  # newest first: 4, 3 | 2
        assert (data["totalDocs"], data["totalPages"], data["page"], data["limit"]) == (3, 2, 2, 2)
        assert data["hasNextPage"] is False and data["nextPage"] is None

    run(scenario)


# --- EnOS ---------------------------------------------------------------------------------


async def enos_token(s: Sim, app_key: str = APP_KEY, secret: str = SECRET) -> tuple[int, Any]:
    ts = int(time.time() * 1000)
    body = {"appKey": app_key, "encryption": encryption(app_key, str(ts), secret), "timestamp": ts}
    return await s.call("POST", "/apim-token-service/v2.0/token/get", json=body)


_ts = iter(range(1_700_000_000_000, 1_800_000_000_000))


async def enos(s: Sim, params: dict[str, str], method: str = "POST", token: str | None = None,
               secret: str = SECRET, ts: str | None = None) -> tuple[int, Any]:  # fmt: skip
    if token is None:
        token = (await enos_token(s))[1]["data"]["accessToken"]
    ts = ts or str(next(_ts))
    headers = {"apim-accesstoken": token, "apim-timestamp": ts,
               "apim-signature": signature(token, params.items(), "", ts, secret)}  # fmt: skip
    path = "/connect-service/v2.1/commands?" + urlencode(params)
    return await s.call(method, path, headers=headers)


def test_enos_token_service() -> None:
    async def scenario(s: Sim) -> None:
        status, body = await enos_token(s)
        assert status == 200 and body["status"] == 0 and body["data"]["expire"] == 7200
        assert (await enos_token(s))[1]["data"]["accessToken"] == body["data"]["accessToken"]
        assert (await enos_token(s, app_key="other"))[1]["status"] == 1002
        assert (await enos_token(s, secret="wrong"))[1]["status"] == 1003
        path = "/apim-token-service/v2.0/token/get"
        assert (await s.call("POST", path, json={"appKey": APP_KEY}))[1]["status"] == 1202
        await s.call("POST", "/_sim/enos/expire-tokens")
        assert (await enos_token(s))[1]["data"]["accessToken"] != body["data"]["accessToken"]

    run(scenario)


def test_enos_gateway_errors() -> None:
    async def scenario(s: Sim) -> None:
        params = {"action": "cancel", "orgId": EORG, "assetId": "asset01"}
        status, body = await s.call("POST", "/connect-service/v2.1/commands?action=cancel")
        assert (status, body["code"]) == (400, 1202)
        status, body = await enos(s, params, token="unknown")
        assert (status, body) == (401, {"code": 1203, "msg": "Access token expired"})
        token = (await enos_token(s))[1]["data"]["accessToken"]
        status, body = await enos(s, params, token=token, secret="wrong")
        assert (status, body["code"]) == (401, 1003)
        assert (await enos(s, params, token=token, ts="1"))[1]["code"] == 11404
        status, body = await enos(s, params, token=token, ts="1")  # the same request again
        assert (status, body["code"]) == (400, 1001)
        other = {**params, "assetId": "asset02"}  # another request in the same millisecond
        assert (await enos(s, other, token=token, ts="1"))[1]["code"] == 11404
        await s.call("POST", "/_sim/enos/expire-tokens")
        assert (await enos(s, params, token=token))[0:2] == (
            401, {"code": 1203, "msg": "Access token expired"}
        )  # fmt: skip

    run(scenario)


def test_enos_cancel() -> None:
    """Cancel by id and cancel-all; search and get are in ``test_simulator_enos``."""

    async def scenario(s: Sim) -> None:
        seed(s)
        one = {"action": "cancel", "orgId": EORG, "assetId": "asset01"}
        status, body = await enos(s, {**one, "commandId": "1000000000000000003"})
        assert status == 200 and (body["code"], body["msg"]) == (0, "Success")
        assert [(c["commandId"], c["state"], c["assetId"]) for c in body["data"]] == [
            ("1000000000000000003", 2, "asset01")
        ]
        assert body["data"][0]["commandName"]["defaultValue"] and body["requestId"]
        status, body = await enos(s, {**one, "commandId": "1000000000000000003"})
        assert body["data"] == []
        by_keys = {"action": "cancel", "orgId": EORG, "productKey": "pk01", "deviceKey": "dev01"}
        assert [c["commandId"] for c in (await enos(s, by_keys))[1]["data"]] == [
            "1000000000000000001"
        ]
        assert (await enos(s, by_keys))[1]["data"] == []  # nothing cached any more
        status, body = await enos(s, {**one, "assetId": "nope"})
        assert (status, body["code"], body["msg"]) == (200, 11404, "Device does not exist")
        assert (await enos(s, {**by_keys, "assetId": "other"}))[1]["code"] == 11404
        for params in ({"action": "cancel", "orgId": EORG, "productKey": "pk01"},
                       {**one, "assetId": "has space"}, {**one, "commandId": "x" * 129},
                       {**one, "action": "explode"}):  # fmt: skip
            status, body = await enos(s, params)
            assert (status, body["code"]) == (400, 1004), params
        status, body = await enos(s, {"action": "cancel", "assetId": "asset01"})
        assert (status, body["code"]) == (400, 1202)
        got = {"action": "get", "orgId": EORG, "assetId": "asset01"}
        got["commandId"] = "1000000000000000003"
        status, body = await enos(s, got, method="GET")  # the read sees the cancel
        assert (status, body["code"], body["data"]["state"]) == (200, 0, 2)

    run(scenario)


# --- Faults, log and control --------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after() -> None:
    async def scenario(s: Sim) -> None:
        path = f"{APPLE_BASE}/device/S/{HEX[0]}"
        statuses = []
        for _ in range(5):
            async with s.http.get(path, headers=AUTH) as response:
                statuses.append(response.status)
                if response.status == 429:
                    assert response.headers["Retry-After"] == "2"
                    assert await response.text() == "Too Many Requests"
        assert statuses == [404, 404, 404, 429, 429]
        other = f"/v1/organizations/other-org/mdm/apple/enterprise/commands/device/S/{HEX[0]}"
        assert (await s.call("GET", other, headers=AUTH))[0] == 404  # another tenant
        await s.call("POST", "/_sim/config", json={"retry_after_format": "http-date"})
        async with s.http.get(path, headers=AUTH) as response:
            assert response.status == 429 and response.headers["Retry-After"].endswith(" GMT")
        stats = (await s.call("GET", "/_sim/stats?window=1"))[1]
        assert stats["count_429"] == 3 and stats["total"] == 7
        assert stats["max_per_window"] == {f"applivery:{ORG}": 3, "applivery:other-org": 1}

    run(scenario, rate_limit=3, retry_after=2)


def test_error_timeout_and_drop_faults() -> None:
    async def scenario(s: Sim) -> None:
        path = f"{APPLE_BASE}/device/S/{HEX[0]}"
        assert await s.call("GET", path, headers=AUTH) == (503, "Service Unavailable")
        assert (await s.call("GET", "/_sim/health"))[0] == 200  # control routes: never faulted
        assert (await enos_token(s))[1]["status"] == 0  # nor the token endpoint
        await s.call("POST", "/_sim/config", json={"error_rate": 0, "drop_rate": 1})
        with pytest.raises(aiohttp.ServerDisconnectedError):  # POST: aiohttp does not resend
            await s.call("POST", path + "/cancel", headers=AUTH)
        await s.call("POST", "/_sim/config", json={"drop_rate": 0, "timeout_rate": 1})
        started = time.monotonic()
        assert (await s.call("GET", path, headers=AUTH))[0] == 404
        assert time.monotonic() - started >= 0.05
        log = (await s.call("GET", "/_sim/requests"))[1]["requests"]
        assert [(r["route"], r["status"]) for r in log] == [
            ("apple.get", 503), ("enos.token", 200), ("apple.cancel", 0), ("apple.get", 404)
        ]  # fmt: skip

    run(scenario, error_rate=1, hang_seconds=0.05)


def test_faults_are_deterministic_per_seed() -> None:
    def statuses(seed_value: int) -> list[int]:
        seen: list[int] = []

        async def scenario(s: Sim) -> None:
            for _ in range(20):
                seen.append((await s.call("GET", f"{APPLE_BASE}/device/S/{HEX[0]}"))[0])

        run(scenario, seed=seed_value, error_rate=0.5)
        return seen

    assert statuses(7) == statuses(7) != statuses(8)
    assert set(statuses(7)) == {401, 503}


def test_request_log_and_control_routes() -> None:
    async def scenario(s: Sim) -> None:
        seed(s)
        await s.call("POST", f"{APPLE_BASE}/device/SERIAL1/{HEX[0]}/cancel", headers=AUTH)
        await enos(s, {"action": "cancel", "orgId": EORG, "assetId": "asset01"})
        status, body = await s.call("GET", "/_sim/requests?since=1")
        assert body["total"] == 3 and [r["route"] for r in body["requests"]] == [
            "enos.token", "enos.cancel"
        ]  # fmt: skip
        cancel = body["requests"][1]
        assert (cancel["tenant"], cancel["key"], cancel["code"]) == (f"enos:{EORG}", "asset01", 0)
        assert "assetId=asset01" in cancel["query"] and cancel["method"] == "POST"
        apple = (await s.call("GET", "/_sim/requests?route=apple.cancel"))[1]["requests"]
        assert apple[0]["key"] == f"device/SERIAL1/{HEX[0]}" and apple[0]["status"] == 200
        stats = (await s.call("GET", "/_sim/stats"))[1]
        assert stats["by_route"] == {"apple.cancel": 1, "enos.token": 1, "enos.cancel": 1}
        assert stats["by_status"] == {"200": 3}
        await s.call("POST", "/_sim/requests/reset")
        assert (await s.call("GET", "/_sim/requests"))[1] == {"total": 0, "requests": []}
        for bad in ({"error_rate": 2}, {"seed": 3}, {"retry_after_format": "minutes"}):
            status, body = await s.call("POST", "/_sim/config", json=bad)
            assert status == 400 and body["error"]
        assert (await s.call("GET", "/_sim/config"))[1]["error_rate"] == 0
        assert (await s.call("GET", "/_sim/stats?window=0"))[0] == 400

    run(scenario)


@contextmanager
def threaded_simulator(**config: Any) -> Iterator[SimulatorClient]:
    loop = asyncio.new_event_loop()
    runner, port = loop.run_until_complete(start(SimulatorConfig(**config)))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield SimulatorClient(f"http://127.0.0.1:{port}")
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_sync_client() -> None:
    with threaded_simulator(devices=2) as client:
        client.wait_ready(2)
        assert client.health()
        records = client.commands(ANDROID)
        assert len(records) == 6
        assert client.add_commands(ANDROID, records[:1], replace=True) == 1
        assert client.commands(ANDROID) == records[:1]
        with pytest.raises(SimulatorError, match="HTTP 400"):
            client.add_commands(ENOS, [{"org": EORG}])
        assert client.config(latency_ms=1)["latency_ms"] == 1
        assert client.expire_enos_tokens() == 0
        assert client.requests() == {"total": 0, "requests": []}
        assert client.stats()["total"] == 0
        client.reset_requests()
    assert not SimulatorClient("http://127.0.0.1:9").health()


def test_cli_serves_until_sigterm() -> None:
    command = [sys.executable, "-m", "countermand.simulator", "--port", "0", "--devices", "1"]
    root = Path(__file__).parents[1]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=root) as process:
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            assert line.startswith("simulator listening on http://127.0.0.1:")
            client = SimulatorClient(line.split()[-1])
            client.wait_ready(5)
            assert len(client.commands(APPLE)) == 3
            process.send_signal(signal.SIGTERM)
            assert process.wait(5) == 0
        finally:
            if process.poll() is None:
                process.kill()
