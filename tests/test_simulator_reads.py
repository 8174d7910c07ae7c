"""The simulator's read routes (Windows, Apple per-target list, device lists) and the
``cancel_stall_s`` race hook, against the in-process HTTP server. EnOS reads are in
``test_simulator_enos``."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections import Counter

import aiohttp
import pytest

from countermand.simulator import ANDROID, APPLE, WINDOWS, SimulatorClient
from countermand.simulator.cli import simulator as simulator_cli
from countermand.simulator.seeding import generate
from countermand.simulator.state import (
    AndroidCommand,
    AppleCommand,
    WindowsAction,
    WindowsBatch,
    parse,
)
from countermand.simulator.syncml import WINDOWS_STATUS_SET
from tests.test_simulator import (
    AUTH,
    EORG,
    HEX,
    ORG,
    Sim,
    enos,
    enos_token,
    error_code,
    run,
    threaded_simulator,
)
from tests.test_simulator_enos import seed_enos

WIN = f"/v1/organizations/{ORG}/mdm/windows/enterprise/devices"
APPLE_CMDS = f"/v1/organizations/{ORG}/mdm/apple/enterprise/commands"


def actions(pairs: list[tuple[str, str]]) -> list[WindowsAction]:
    return [
        WindowsAction(f"cmd-{i}", status, action=action)  # type: ignore[arg-type]
        for i, (status, action) in enumerate(pairs)
    ]


def seed_windows(s: Sim) -> None:
    """WINDEV1: a batch of 5 actions (HEX[0]), one of 23 (HEX[1]), an empty one (HEX[2])."""
    five = [("Pending", "Replace"), ("Pending", "Replace"), ("Acknowledged", "Replace"),
            ("Pending", "Exec"), ("Acknowledged", "Replace")]  # fmt: skip
    many = [(("Pending", "Acknowledged", "OperationCanceled")[i % 3], "Replace") for i in range(23)]
    s.sim.store.add(WINDOWS, [
        WindowsBatch(ORG, "WINDEV1", HEX[0], "Five", "2026-01-02T00:00:00.000Z",
                     "2026-01-02T01:00:00.000Z", actions(five)),
        WindowsBatch(ORG, "WINDEV1", HEX[1], "Many", "2026-01-03T00:00:00.000Z",
                     actions=actions(many)),
        WindowsBatch(ORG, "WINDEV1", HEX[2], "Empty", "2026-01-01T00:00:00.000Z"),
    ])  # fmt: skip


# --- Windows ------------------------------------------------------------------------------


def test_windows_batch_read_summary_and_errors() -> None:
    async def scenario(s: Sim) -> None:
        seed_windows(s)
        status, body = await s.call("GET", f"{WIN}/WINDEV1/commands/{HEX[0]}", headers=AUTH)
        assert status == 200 and body["status"] is True
        assert body["data"] == {
            "id": HEX[0],
            "name": "Five",
            "winDeviceId": "WINDEV1",
            "summary": [
                {"status": "Pending", "action": "Replace", "num": 2},
                {"status": "Acknowledged", "action": "Replace", "num": 2},
                {"status": "Pending", "action": "Exec", "num": 1},
            ],
            "createdAt": "2026-01-02T00:00:00.000Z",
            "updatedAt": "2026-01-02T01:00:00.000Z",
        }
        data = (await s.call("GET", f"{WIN}/WINDEV1/commands/{HEX[1]}", headers=AUTH))[1]["data"]
        assert sorted((x["status"], x["num"]) for x in data["summary"]) == [
            ("Acknowledged", 8), ("OperationCanceled", 7), ("Pending", 8)
        ]  # fmt: skip
        for path in (f"WINDEV1/commands/{HEX[5]}", f"OTHER/commands/{HEX[0]}",
                     f"OTHER/commands/{HEX[0]}/actions", "OTHER/commands"):  # fmt: skip
            status, body = await s.call("GET", f"{WIN}/{path}", headers=AUTH)
            assert (status, error_code(body)) == (404, 3001), path
        bad = {
            f"{WIN}/WINDEV1/commands/{HEX[0]}x": "winCommandId",
            f"{WIN}/WIN-DEV/commands/{HEX[0]}": "winDeviceId",
            f"/v1/organizations/a_b/mdm/windows/enterprise/devices/W/commands/{HEX[0]}": (
                "organizationId"
            ),
            f"{WIN}/WINDEV1/commands/{HEX[1]}/actions?limit=101": "limit",
            f"{WIN}/WINDEV1/commands/{HEX[1]}/actions?sort=path": "sort",
            f"{WIN}/WINDEV1/commands?page=0": "page",
        }
        for path, name in bad.items():
            status, body = await s.call("GET", path, headers=AUTH)
            assert (status, body["error"]) == (
                400, {"code": 3002, "message": f"Invalid parameter: {name}"}
            ), path  # fmt: skip
        status, body = await s.call("GET", f"{WIN}/WINDEV1/commands/{HEX[0]}")
        assert (status, error_code(body)) == (401, 4002)

    run(scenario)


def test_windows_actions_pages() -> None:
    async def scenario(s: Sim) -> None:
        seed_windows(s)
        path = f"{WIN}/WINDEV1/commands/{HEX[1]}/actions"
        seen = []
        for page, size in ((1, 10), (2, 10), (3, 3), (4, 0)):
            status, body = await s.call("GET", f"{path}?page={page}", headers=AUTH)
            assert status == 200 and set(body["data"]) == {"items", "totalDocs"}
            assert body["data"]["totalDocs"] == 23 and len(body["data"]["items"]) == size
            seen += [item["cmdId"] for item in body["data"]["items"]]
        assert seen == [f"cmd-{i}" for i in range(23)]  # stored order, every action once
        first = (await s.call("GET", f"{path}?limit=1", headers=AUTH))[1]["data"]["items"][0]
        assert first == {
            "cmdId": "cmd-0", "status": "Pending",
            "config": {"path": WindowsAction("x", "Pending").path, "action": "Replace",
                       "value": None},
            "data": [], "statusCode": None, "sentAt": None, "receivedAt": None, "canceledAt": None,
        }  # fmt: skip
        items = (await s.call("GET", f"{path}?limit=100&sort=status:desc", headers=AUTH))[1]
        assert [i["status"] for i in items["data"]["items"]][::8] == [
            "Pending", "OperationCanceled", "Acknowledged"
        ]  # fmt: skip
        body = (await s.call("GET", f"{WIN}/WINDEV1/commands/{HEX[2]}/actions", headers=AUTH))[1]
        assert body["data"] == {"items": [], "totalDocs": 0}

    run(scenario)


def test_windows_batch_list_pages_newest_first() -> None:
    async def scenario(s: Sim) -> None:
        seed_windows(s)
        status, body = await s.call("GET", f"{WIN}/WINDEV1/commands?limit=2", headers=AUTH)
        data = body["data"]
        assert status == 200 and [b["id"] for b in data["items"]] == [HEX[1], HEX[0]]
        assert data["items"][1]["summary"][0] == {"status": "Pending", "action": "Replace",
                                                  "num": 2}  # fmt: skip
        assert (data["totalDocs"], data["limit"], data["page"], data["totalPages"]) == (3, 2, 1, 2)
        assert (data["hasNextPage"], data["nextPage"]) == (True, 2)
        data = (await s.call("GET", f"{WIN}/WINDEV1/commands?limit=2&page=2", headers=AUTH))[1]
        assert [b["id"] for b in data["data"]["items"]] == [HEX[2]]
        assert (data["data"]["hasNextPage"], data["data"]["nextPage"]) == (False, None)
        query = "sort=createdAt:asc&limit=3"
        data = (await s.call("GET", f"{WIN}/WINDEV1/commands?{query}", headers=AUTH))[1]
        assert [b["id"] for b in data["data"]["items"]] == [HEX[2], HEX[0], HEX[1]]
        log = (await s.call("GET", "/_sim/requests"))[1]["requests"]
        assert {(r["route"], r["tenant"]) for r in log} == {("windows.list", f"applivery:{ORG}")}
        await s.call("GET", f"{WIN}/WINDEV1/commands/{HEX[0]}", headers=AUTH)
        await s.call("GET", f"{WIN}/WINDEV1/commands/{HEX[0]}/actions", headers=AUTH)
        log = (await s.call("GET", "/_sim/requests?since=3"))[1]["requests"]
        assert [(r["route"], r["key"]) for r in log] == [
            ("windows.get", f"WINDEV1/{HEX[0]}"), ("windows.actions", f"WINDEV1/{HEX[0]}")
        ]  # fmt: skip

    run(scenario)


def test_windows_records_generated_and_posted() -> None:
    generated = generate(1, 20, 3, ORG, EORG)
    assert generated == generate(1, 20, 3, ORG, EORG)
    batches = [b for b in generated[WINDOWS] if isinstance(b, WindowsBatch)]
    assert len(batches) == 60 and all(1 <= len(b.actions) <= 60 for b in batches)
    assert any(len(b.actions) > 10 for b in batches)  # more than one page at the default limit
    statuses = Counter(a.status for b in batches for a in b.actions)
    assert set(statuses) <= WINDOWS_STATUS_SET
    mix = {"Pending", "Awaiting", "Acknowledged", "OperationCanceled",
           "CommandNotExecutedUserCanceled", "RequestFailRetryAfterSomeTime"}  # fmt: skip
    assert mix <= set(statuses)
    assert statuses["Pending"] > statuses["OperationCanceled"]
    raw = [dataclasses.asdict(b) for b in batches]
    assert parse(WINDOWS, raw) == batches
    bad_status = {**raw[0], "actions": [{"cmd_id": "c", "status": "Done"}]}
    long_id = {**raw[0], "actions": [{"cmd_id": "c" * 129, "status": "Pending"}]}
    twice = {**raw[0], "actions": [{"cmd_id": "c", "status": "Pending"}] * 2}

    async def scenario(s: Sim) -> None:
        assert len(s.sim.store.dump(WINDOWS)) == 6  # --devices 2, 3 batches each
        for record in (bad_status, long_id, twice, {**raw[0], "command_id": "x"}):
            body = {"provider": WINDOWS, "records": [raw[1], record], "replace": True}
            status, answer = await s.call("POST", "/_sim/commands", json=body)
            assert status == 400 and "record 1" in answer["error"]
        assert len(s.sim.store.dump(WINDOWS)) == 6  # all or none
        body = {"provider": WINDOWS, "records": raw[:2], "replace": True}
        assert await s.call("POST", "/_sim/commands", json=body) == (200, {"added": 2})
        status, dumped = await s.call("GET", f"/_sim/commands?provider={WINDOWS}")
        assert dumped == raw[:2]

    run(scenario, devices=2)


# --- Apple per-target list and device lists -----------------------------------------------


def test_apple_grouped_list_wins_over_the_read() -> None:
    async def scenario(s: Sim) -> None:
        s.sim.store.add(APPLE, [
            AppleCommand(ORG, "device", "SERIAL1", HEX[i], "Pending",
                         sent_at=f"2026-01-0{i + 1}T00:00:00.000Z")
            for i in range(3)
        ])  # fmt: skip
        status, body = await s.call("GET", f"{APPLE_CMDS}/device/SERIAL1/grouped?limit=2",
                                    headers=AUTH)  # fmt: skip
        data = body["data"]
        assert status == 200 and [c["id"] for c in data["items"]] == [HEX[2], HEX[1]]
        assert data["items"][0]["status"] == "Pending" and data["items"][0]["numTries"] == 0
        assert (data["totalDocs"], data["totalPages"], data["nextPage"]) == (3, 2, 2)
        page2 = await s.call("GET", f"{APPLE_CMDS}/device/SERIAL1/grouped?page=2&limit=2",
                             headers=AUTH)  # fmt: skip
        assert [c["id"] for c in page2[1]["data"]["items"]] == [HEX[0]]
        status, body = await s.call("GET", f"{APPLE_CMDS}/device/SERIAL1/{HEX[0]}", headers=AUTH)
        assert status == 200 and body["data"]["id"] == HEX[0]  # the read still answers
        status, body = await s.call("GET", f"{APPLE_CMDS}/device/OTHER/grouped", headers=AUTH)
        assert (status, error_code(body)) == (404, 3001)
        status, body = await s.call("GET", f"{APPLE_CMDS}/devices/S/grouped", headers=AUTH)
        assert (status, body["error"]["message"]) == (400, "Invalid parameter: targetType")
        log = (await s.call("GET", "/_sim/requests"))[1]["requests"]
        assert [r["route"] for r in log] == ["apple.list"] * 2 + ["apple.get"] + ["apple.list"] * 2
        assert log[0]["key"] == "device/SERIAL1"

    run(scenario)


def test_device_lists() -> None:
    async def scenario(s: Sim) -> None:
        store = s.sim.store
        store.add(APPLE, [
            AppleCommand(ORG, "device", f"SERIAL{i}", HEX[i], "Pending") for i in range(3)
        ] + [AppleCommand(ORG, "deviceUser", HEX[5], HEX[5], "Pending"),
             AppleCommand("other-org", "device", "ELSEWHERE", HEX[6], "Pending")])  # fmt: skip
        store.add(ANDROID, [AndroidCommand(ORG, HEX[7], HEX[7], "PENDING")])
        seed_windows(s)
        base = f"/v1/organizations/{ORG}/mdm"
        status, body = await s.call("GET", f"{base}/apple/enterprise/devices?limit=2", headers=AUTH)
        data = body["data"]
        assert status == 200 and [d["id"] for d in data["items"]] == ["SERIAL0", "SERIAL1"]
        assert data["items"][0] == {"id": "SERIAL0", "serialNumber": "SERIAL0",
                                    "name": "Mac-SERIAL0"}  # fmt: skip
        assert (data["totalDocs"], data["totalPages"], data["hasNextPage"]) == (3, 2, True)
        body = (await s.call("GET", f"{base}/apple/enterprise/devices?page=2&limit=2",
                             headers=AUTH))[1]  # fmt: skip
        assert [d["id"] for d in body["data"]["items"]] == ["SERIAL2"]
        body = (await s.call("GET", f"{base}/android/enterprise/devices", headers=AUTH))[1]
        assert body["data"]["items"] == [{"id": HEX[7], "serialNumber": None,
                                          "name": f"Android-{HEX[7]}"}]  # fmt: skip
        body = (await s.call("GET", f"{base}/windows/enterprise/devices", headers=AUTH))[1]
        assert [d["id"] for d in body["data"]["items"]] == ["WINDEV1"]
        nobody = "/v1/organizations/nobody/mdm/windows/enterprise/devices"
        body = (await s.call("GET", nobody, headers=AUTH))[1]
        assert body["data"]["items"] == [] and body["data"]["totalDocs"] == 0
        status, body = await s.call("GET", f"{base}/apple/enterprise/devices?limit=0",
                                    headers=AUTH)  # fmt: skip
        assert (status, error_code(body)) == (400, 3002)
        stats = (await s.call("GET", "/_sim/stats"))[1]["by_route"]
        assert stats == {"apple.devices": 3, "android.devices": 1, "windows.devices": 2}

    run(scenario)


# --- cancel_stall_s -----------------------------------------------------------------------


def test_cancel_stall_answers_late_after_the_store_changed() -> None:
    async def scenario(s: Sim) -> None:
        store = s.sim.store
        store.add(APPLE, [AppleCommand(ORG, "device", "S1", HEX[0], "Pending")])
        store.add(ANDROID, [AndroidCommand(ORG, "d1", HEX[1], "PENDING")])
        seed_enos(s)
        config = (await s.call("POST", "/_sim/config", json={"cancel_stall_s": 0.3}))[1]
        assert config["cancel_stall_s"] == 0.3
        short = aiohttp.ClientTimeout(total=0.15)
        with pytest.raises(asyncio.TimeoutError):
            await s.call("POST", f"{APPLE_CMDS}/device/S1/{HEX[0]}/cancel", headers=AUTH,
                         timeout=short)  # fmt: skip
        assert store.apple.by_key[(ORG, "device", "S1", HEX[0])].status == "Canceled"
        loop = asyncio.get_running_loop()
        started = loop.time()
        android = f"/v1/organizations/{ORG}/mdm/android/enterprise/devices/d1/commands"
        status, _ = await s.call("POST", f"{android}/{HEX[1]}/cancel", headers=AUTH,
                                 timeout=aiohttp.ClientTimeout(total=2))  # fmt: skip
        assert status == 200 and loop.time() - started >= 0.3
        token = (await enos_token(s))[1]["data"]["accessToken"]
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(
                enos(s, {"action": "cancel", "orgId": EORG, "assetId": "asset01"}, token=token),
                0.15,
            )
        assert store.enos.by_key[(EORG, "c1")].state == 2
        await s.call("POST", "/_sim/config", json={"cancel_stall_s": 0})
        status, body = await s.call("POST", f"{APPLE_CMDS}/device/S1/{HEX[0]}/cancel",
                                    headers=AUTH, timeout=short)  # fmt: skip
        assert (status, error_code(body)) == (400, 5106)  # not accepted: never stalled anyway

    run(scenario)
    assert "cancel_stall_s" in inspect.signature(simulator_cli).parameters  # --cancel-stall-s


def test_sync_client_reads_windows_records() -> None:
    with threaded_simulator(devices=1) as client:
        assert isinstance(client, SimulatorClient)
        records = client.commands(WINDOWS)
        assert len(records) == 3 and all(r["actions"] for r in records)
        assert client.add_commands(WINDOWS, records[:1], replace=True) == 1
        assert client.config(cancel_stall_s=0.5)["cancel_stall_s"] == 0.5
