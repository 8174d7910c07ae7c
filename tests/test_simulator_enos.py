"""The simulator's EnOS reads as the vendor documents them (../shared/apis/README.md): V2.1
Search Command and Get Command with the device in the query, V2.4 Search Device, against the
in-process HTTP server. Requests are signed with the simulator's own ``signature`` (pinned to
the README's worked example in ``test_simulator``), so that these tests do not depend on the
client's code; ``test_providers`` runs the client against the same routes.

Cancel, the token service and the gateway's header checks are in ``test_simulator``."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from countermand.simulator import ENOS, signature
from countermand.simulator.state import EnosCommand
from tests.test_simulator import EORG, SECRET, Sim, enos, enos_token, run

COMMANDS = "/connect-service/v2.1/commands"
DEVICES = "/connect-service/v2.4/devices"
NOON = 1_770_724_800_000  # 2026-02-10 12:00:00 UTC, in epoch milliseconds
HOUR = 3_600_000
A1 = {"assetId": "asset01"}
ODD = "a+1&x=%41/?"  # an asset id of reserved URL characters


def seed_enos(s: Sim) -> None:
    """asset01 (pk01/dev01): c1..c4; asset02 (pk01/dev02): c5; ODD: c6; org o2: c9."""
    s.sim.store.add(ENOS, [
        EnosCommand(EORG, "asset01", "pk01", "dev01", "c1", 1, NOON, "Reboot device"),
        EnosCommand(EORG, "asset01", "pk01", "dev01", "c2", 5, NOON + 1000, "set_mode"),
        EnosCommand(EORG, "asset01", "pk01", "dev01", "c3", 1, NOON + HOUR, "reboot"),
        EnosCommand(EORG, "asset01", "pk01", "dev01", "c4", 2, NOON + HOUR, "Int_value"),
        EnosCommand(EORG, "asset02", "pk01", "dev02", "c5", 1, NOON + 24 * HOUR, "reboot"),
        EnosCommand(EORG, ODD, "pk03", "dev03", "c6", 1, NOON, "reboot"),
        EnosCommand("o2", "asset09", "pk09", "dev09", "c9", 1, NOON, "reboot"),
    ])  # fmt: skip


_ts = itertools.count(1_900_000_000_000)


def sign(token: str, params: Mapping[str, str], raw: bytes) -> dict[str, str]:
    ts = str(next(_ts))
    signed = signature(token, params.items(), raw.decode(), ts, SECRET)
    return {"apim-accesstoken": token, "apim-timestamp": ts, "apim-signature": signed,
            "Content-Type": "application/json"}  # fmt: skip


def url(path: str, params: Mapping[str, str]) -> str:
    return path + "?" + urlencode(params, quote_via=quote, safe="")


async def signed(
    s: Sim, method: str, path: str, params: Mapping[str, str], body: object = b"",
    sent: bytes | None = None,
) -> tuple[int, Any]:  # fmt: skip
    """A signed call (JSON ``body``, or bytes as they are); ``sent`` replaces the body after
    signing."""
    token = (await enos_token(s))[1]["data"]["accessToken"]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = sign(token, params, raw)
    return await s.call(method, url(path, params), data=sent or raw, headers=headers)


async def search(
    s: Sim, body: object, device: Mapping[str, str] = A1, org: str = EORG,
    sent: bytes | None = None,
) -> tuple[int, Any]:  # fmt: skip
    params = {"action": "search", "orgId": org, **device}
    return await signed(s, "POST", COMMANDS, params, body, sent)


async def get(s: Sim, params: Mapping[str, str], method: str = "GET") -> tuple[int, Any]:
    return await signed(s, method, COMMANDS, {"action": "get", "orgId": EORG, **params})


async def find_devices(s: Sim, body: object = b"", org: str = EORG) -> tuple[int, Any]:
    return await signed(s, "POST", DEVICES, {"action": "search", "orgId": org}, body)


def ids(answer: dict[str, Any], name: str = "commandId") -> list[str]:
    return [item[name] for item in answer["data"]]


# --- V2.1 Search Command ------------------------------------------------------------------

ACCEPTED = {
    "": ["c4", "c3", "c2", "c1"],  # newest first; c3 and c4 tie, by commandId descending
    "  ": ["c4", "c3", "c2", "c1"],
    "state = 1": ["c3", "c1"],
    "state=7": [],
    "commandName.en_US like 'REBOOT'": ["c3", "c1"],  # fuzzy: any case, anywhere in the name
    "commandName.defaultValue = 'boot'": ["c3", "c1"],  # = is the same fuzzy match
    "commandName.zh_CN like 'mode'": ["c2"],
    "commandName.en_US like 'nothing'": [],
    "createTime < '2026-02-10 12:00:01'": ["c1"],  # < excludes the second itself
    "createTime >= '2026-02-10 12:00:01'": ["c4", "c3", "c2"],  # >= includes it
    "createTime >= '2026-02-10 12:00:00'": ["c4", "c3", "c2", "c1"],  # UTC: noon is c1's time
    "createTime < '2026-02-10 12:00:00'": [],
    "createTime >= '2026-02-10 12:00:01' and createTime < '2026-02-10 13:00:00'": ["c2"],
    "state = 1 and commandName.en_US like 'reboot' and createTime >= '2026-02-10 12:30:00'": ["c3"],
}


def test_search_accepted_forms_name_the_device_in_the_query() -> None:
    async def scenario(s: Sim) -> None:
        seed_enos(s)
        for expression, found in ACCEPTED.items():
            status, body = await search(s, {"expression": expression})
            assert (status, body["code"], body["msg"]) == (200, 0, "Success"), expression
            assert ids(body) == found, expression
            assert body["pagination"] == {"pageNo": 1, "pageSize": 100, "totalSize": len(found)}
        for device in ({"productKey": "pk01", "deviceKey": "dev01"},
                       {**A1, "productKey": "pk01", "deviceKey": "dev01"}):  # fmt: skip
            assert ids((await search(s, {"expression": "state = 1"}, device))[1]) == ["c3", "c1"]
        assert ids((await search(s, {}, {"assetId": "asset02"}))[1]) == ["c5"]
        assert ids((await search(s, b"", {"assetId": ODD}))[1]) == ["c6"]  # reserved characters
        assert ids((await search(s, {}, {"assetId": "asset09"}, org="o2"))[1]) == ["c9"]
        first = (await search(s, {"expression": "state = 5"}))[1]["data"][0]
        assert (first["assetId"], first["commandName"]["defaultValue"]) == ("asset01", "set_mode")

    run(scenario)


def test_search_reads_createtime_text_as_utc_in_any_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "Asia/Shanghai")  # UTC+8: a local reading would miss by 8 hours
    time.tzset()
    try:

        async def scenario(s: Sim) -> None:
            seed_enos(s)
            body = {"expression": "createTime < '2026-02-10 12:00:01'"}
            assert ids((await search(s, body))[1]) == ["c1"]

        run(scenario)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_search_pages_of_fifty_newest_first() -> None:
    async def scenario(s: Sim) -> None:
        s.sim.store.add(ENOS, [  # stored oldest last, so that only sorting gives newest first
            EnosCommand(EORG, "asset01", "pk01", "dev01", f"c{i:03d}", 1 + i % 2, NOON + i * 1000)
            for i in reversed(range(120))
        ])  # fmt: skip
        seen = []
        for page_no, size in ((1, 50), (2, 50), (3, 20), (4, 0)):
            body = {"pagination": {"pageNo": page_no, "pageSize": 50}}
            answer = (await search(s, body))[1]
            assert len(answer["data"]) == size
            assert answer["pagination"] == {"pageNo": page_no, "pageSize": 50, "totalSize": 120}
            seen += ids(answer)
        assert seen == [f"c{i:03d}" for i in reversed(range(120))]
        answer = (await search(s, {"expression": "state = 2"}))[1]  # the default: 100 a page
        assert len(answer["data"]) == 60 and answer["pagination"]["totalSize"] == 60
        assert len((await search(s, {}))[1]["data"]) == 100

    run(scenario)


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("assetId = 'asset01'", "field 'assetId' is not searchable (state, commandName"),
        ("productKey = 'pk01'", "field 'productKey' is not searchable"),
        ("deviceKey = 'dev01'", "field 'deviceKey' is not searchable"),
        ("state = 1 and commandId = 'c1'", "field 'commandId' is not searchable"),
        ("colour = 1", "'colour' is not searchable (state, commandName.<locale> and createTime"),
        ("state = 1 and colour = 1", "and createTime only) at position 14"),
        ("createTime >= 1770724800000", "not the number 1770724800000 at position 14"),
        ("createTime > '2026-02-10 12:00:00'", "createTime takes < or >=, not '>' at position 11"),
        ("createTime <= '2026-02-10 12:00:00'", "createTime takes < or >=, not '<='"),
        ("createTime = '2026-02-10 12:00:00'", "createTime takes < or >=, not '='"),
        ("createTime < '2026-02-10T12:00:00'", "time for createTime, not '2026-02-10T12:00:00'"),
        ("createTime < '2026-02-10 12:00'", "'YYYY-MM-DD HH:mm:ss' time for createTime, not"),
        ("createTime < '2026-02-30 12:00:00'", "at position 13"),
        ("commandName like 'reboot'", "commandName needs a locale: commandName.defaultValue"),
        ("commandName.EN like 'x'", "locale 'EN' is neither defaultValue nor like en_US at"),
        ("commandName.EN like 'x'", "nor like en_US at position 12"),
        ("commandName.en_us like 'x'", "locale 'en_us'"),
        ("commandName.en_US in ('a')", "commandName.en_US takes like or =, not 'in'"),
        ("commandName.en_US LIKE 'a'", "takes like or =, not 'LIKE'"),
        ("commandName.en_US like 5", "expected a 'quoted string' for commandName.en_US"),
        ("state > 1", "state takes =, not '>' at position 6"),
        ("state in (1, 5)", "state takes =, not 'in' at position 6"),
        ("state = '1'", "expected an integer for state at position 8, found \"'1'\""),
        ("state = 1 or state = 2", "expected 'and' or the end at position 10, found 'or'"),
        ("state = 1 AND state = 2", "expected 'and' or the end at position 10"),
        ("state = 1 and", "expected a field (state, commandName.<locale> and createTime)"),
        ("commandName.en_US like 'abc", "an unterminated string at position 23"),
        ("state = 1; x", "character ';' at position 9"),
        ("state = 1.5", "character '1' at position 8"),
    ],
)
def test_search_refuses_undocumented_expressions(expression: str, problem: str) -> None:
    async def scenario(s: Sim) -> None:
        seed_enos(s)
        status, answer = await search(s, {"expression": expression})
        assert (status, answer["code"]) == (400, 1004)
        assert answer["msg"].startswith("Invalid parameter: expression: ")
        assert problem in answer["msg"]

    run(scenario)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"expression": 5}, "expression must be a string"),
        ({"expresion": "state = 1"}, "unknown key 'expresion'"),
        ({"sorters": [{"field": "createTime"}]}, "unknown key 'sorters'"),
        ({"pagination": {"pageSize": 1001}}, "pagination.pageSize must be an integer from 1"),
        ({"pagination": {"pageSize": 0}}, "pagination.pageSize must be"),
        ({"pagination": {"pageNo": 1, "sorters": []}}, "pagination: unknown key 'sorters'"),
        ({"pagination": {"pageNo": 0}}, "pagination.pageNo must be"),
        ({"pagination": {"pageNo": True}}, "pagination.pageNo must be"),
        ({"pagination": []}, "pagination must be an object"),
        ([1], "body must be a JSON object"),
        (b"{nope", "body is not JSON"),
    ],
)
def test_search_refuses_malformed_bodies(body: object, problem: str) -> None:
    async def scenario(s: Sim) -> None:
        seed_enos(s)
        status, answer = await search(s, body)
        assert (status, answer["code"]) == (400, 1004)
        assert answer["msg"].startswith("Invalid parameter: ") and problem in answer["msg"]

    run(scenario)


def test_search_needs_one_known_device_in_the_query() -> None:
    empty = (400, 1202, "The parameter is empty.")
    unknown = (200, 11404, "Device does not exist")
    cases = [
        ({}, empty),
        ({"productKey": "pk01"}, empty),
        ({"deviceKey": "dev01"}, empty),
        ({"assetId": "nope"}, unknown),
        ({"productKey": "pk01", "deviceKey": "nope"}, unknown),
        ({"assetId": "asset02", "productKey": "pk01", "deviceKey": "dev01"}, unknown),
        ({"assetId": "asset09"}, unknown),  # another org's device
        ({"assetId": "has space"}, (400, 1004, "Invalid parameter: assetId")),
    ]

    async def scenario(s: Sim) -> None:
        seed_enos(s)
        for device, expected in cases:
            status, answer = await search(s, {"expression": "state = 1"}, device)
            assert (status, answer["code"], answer["msg"]) == expected, device

    run(scenario)


def test_search_signature_covers_the_body() -> None:
    async def scenario(s: Sim) -> None:
        seed_enos(s)
        body, other = {"expression": "state = 1"}, json.dumps({"expression": "state = 5"})
        status, answer = await search(s, body, sent=other.encode())
        assert (status, answer["code"]) == (401, 1003)  # signed one body, sent another
        status, answer = await enos(s, {"action": "search", "orgId": EORG, **A1})  # bodiless
        assert (status, answer["code"], ids(answer)) == (200, 0, ["c4", "c3", "c2", "c1"])
        status, answer = await enos(s, {"action": "search", "orgId": EORG, **A1}, method="GET")
        assert (status, answer["code"]) == (400, 1004)  # search is POST only

    run(scenario)


# --- V2.1 Get Command ---------------------------------------------------------------------


def test_get_names_the_device_and_the_command() -> None:
    async def scenario(s: Sim) -> None:
        seed_enos(s)
        for device in (A1, {"productKey": "pk01", "deviceKey": "dev01"}):
            status, body = await get(s, {**device, "commandId": "c2"})
            assert (status, body["code"], body["data"]["commandId"]) == (200, 0, "c2"), device
            assert (body["data"]["state"], body["data"]["createTime"]) == (5, NOON + 1000)
        missing = (400, 1202, "The parameter is empty.")
        for params, expected in [
            ({"commandId": "c2"}, missing),
            ({"productKey": "pk01", "commandId": "c2"}, missing),
            (A1, missing),
            ({**A1, "commandId": "c5"}, (200, 11404, "Command does not exist")),  # asset02's
            ({**A1, "commandId": "c404"}, (200, 11404, "Command does not exist")),
            ({"assetId": "nope", "commandId": "c2"}, (200, 11404, "Device does not exist")),
            ({**A1, "commandId": "x" * 129}, (400, 1004, "Invalid parameter: commandId")),
        ]:
            status, body = await get(s, params)
            assert (status, body["code"], body["msg"]) == expected, params
        assert (await get(s, {**A1, "commandId": "c2"}, method="POST"))[1]["code"] == 1004

    run(scenario)


# --- V2.4 Search Device -------------------------------------------------------------------


def seed_devices(s: Sim) -> None:
    """23 devices a22, a21, ... a00 stored in that order (pkA when even, pkB when odd), and
    one in org o2; then a later command of a22, which does not move it."""
    s.sim.store.add(ENOS, [
        EnosCommand(EORG, f"a{i:02d}", "pkA" if i % 2 == 0 else "pkB", f"d{i:02d}", f"c{i}", 1)
        for i in reversed(range(23))
    ] + [EnosCommand("o2", "b00", "pkA", "d00", "c99", 1)])  # fmt: skip
    s.sim.store.add(ENOS, [EnosCommand(EORG, "a22", "pkA", "d22", "c-late", 1)])


def test_device_search_pages_and_shape() -> None:
    async def scenario(s: Sim) -> None:
        seed_devices(s)
        status, body = await find_devices(s)
        assert (status, body["code"], body["msg"]) == (200, 0, "OK") and body["requestId"]
        assert ids(body, "assetId") == [f"a{i:02d}" for i in range(22, 12, -1)]  # stored order
        assert body["pagination"] == {"pageNo": 1, "pageSize": 10, "totalSize": 23}
        assert body["data"][0] == {
            "orgId": EORG, "assetId": "a22", "productKey": "pkA", "deviceKey": "d22",
            "deviceName": {"defaultValue": "d22", "i18nValue": {"en_US": "d22"}},
            "status": "online",
        }  # fmt: skip
        body = (await find_devices(s, {"pagination": {"pageNo": 3}}))[1]
        assert ids(body, "assetId") == ["a02", "a01", "a00"]
        assert body["pagination"] == {"pageNo": 3, "pageSize": 10, "totalSize": 23}
        body = (await find_devices(s, {"pagination": {"pageNo": 1, "pageSize": 50}}))[1]
        assert len(body["data"]) == 23
        assert ids((await find_devices(s, {}, org="o2"))[1], "assetId") == ["b00"]
        assert (await find_devices(s, {}, org="nobody"))[1]["data"] == []

    run(scenario)


@pytest.mark.parametrize(
    ("expression", "found"),
    [
        ("assetId in ('a03','a05', 'zz')", ["a05", "a03"]),
        ("assetId = 'a07'", ["a07"]),
        ("productKey = 'pkB' and deviceKey in ('d01', 'd02', 'd03')", ["a03", "a01"]),
        ("deviceKey = 'd00' and status = 'online'", ["a00"]),
        ("status = 'offline'", []),
        ("assetId = 'b00'", []),  # another org's
    ],
)
def test_device_search_expressions(expression: str, found: list[str]) -> None:
    async def scenario(s: Sim) -> None:
        seed_devices(s)
        body = {"expression": expression, "pagination": {"pageNo": 1, "pageSize": 50}}
        status, answer = await find_devices(s, body)
        assert (status, answer["code"], ids(answer, "assetId")) == (200, 0, found)
        assert answer["pagination"]["totalSize"] == len(found)
        everything = (await find_devices(s, {"expression": "productKey = 'pkA'"}))[1]
        assert everything["pagination"]["totalSize"] == 12 and len(everything["data"]) == 10

    run(scenario)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"expression": "deviceName = 'd01'"}, "field 'deviceName' is not searchable"),
        ({"expression": "modelId = 'm'"}, "field 'modelId' is not searchable"),
        ({"expression": "status in ('online')"}, "status takes =, not 'in' at position 7"),
        ({"expression": "status = 'ONLINE'"}, "status 'ONLINE' is not one of inactive, online"),
        ({"expression": "assetId != 'a01'"}, "assetId takes = or in, not '!='"),
        ({"expression": "assetId like 'a0'"}, "assetId takes = or in, not 'like'"),
        ({"expression": "assetId = 5"}, "expected a 'quoted string' for assetId at position 10"),
        ({"expression": "assetId in 'a01'"}, "expected '(' after assetId in"),
        ({"expression": "assetId in ('a01' 'a02')"}, "expected ',' or ')' at position 18"),
        ({"expression": "assetId = 'a01' or assetId = 'a02'"}, "expected 'and' or the end"),
        ({"projection": ["assetId"]}, "unknown key 'projection'"),
        ({"pagination": {"pageSize": 1001}}, "pagination.pageSize must be an integer from 1"),
    ],
)
def test_device_search_refuses_undocumented_forms(body: object, problem: str) -> None:
    async def scenario(s: Sim) -> None:
        seed_devices(s)
        status, answer = await find_devices(s, body)
        assert (status, answer["code"]) == (400, 1004)
        assert answer["msg"].startswith("Invalid parameter: ") and problem in answer["msg"]

    run(scenario)


def test_device_search_passes_the_gateway_and_its_faults() -> None:
    async def scenario(s: Sim) -> None:
        seed_devices(s)
        status, body = await s.call("POST", f"{DEVICES}?action=search&orgId={EORG}")
        assert (status, body["code"]) == (400, 1202)  # unsigned
        params = {"action": "search", "orgId": EORG}
        token = (await enos_token(s))[1]["data"]["accessToken"]
        headers = sign(token, params, b'{"expression": ""}')
        status, body = await s.call("POST", url(DEVICES, params), headers=headers,
                                    data=b'{"expression": "status = \'online\'"}')  # fmt: skip
        assert (status, body["code"]) == (401, 1003)  # the body is signed
        for method, query, code in [("GET", params, 1004), ("POST", {"orgId": EORG}, 1202),
                                    ("POST", {**params, "action": "get"}, 1004),
                                    ("POST", {"action": "search"}, 1202)]:  # fmt: skip
            assert (await signed(s, method, DEVICES, query))[1]["code"] == code, (method, query)

    run(scenario)


def test_device_search_shares_the_tenant_rate_limit_and_faults() -> None:
    async def scenario(s: Sim) -> None:
        seed_enos(s)
        assert (await search(s, {}))[0] == 200
        assert (await find_devices(s))[0] == 200
        assert await find_devices(s) == (429, "Too Many Requests")  # third of enos:EORG
        assert (await find_devices(s, org="o2"))[0] == 200  # another tenant
        await s.call("POST", "/_sim/config", json={"rate_limit": 0, "error_rate": 1})
        assert await find_devices(s) == (503, "Service Unavailable")
        log = (await s.call("GET", "/_sim/requests?route=enos.devices"))[1]["requests"]
        assert [r["status"] for r in log] == [200, 429, 200, 503]

    run(scenario, rate_limit=2)


# --- Request log --------------------------------------------------------------------------


def test_request_log_routes_and_keys() -> None:
    async def scenario(s: Sim) -> None:
        seed_enos(s)
        await search(s, {}, A1)
        await search(s, {}, {"productKey": "pk01", "deviceKey": "dev01"})
        await get(s, {**A1, "commandId": "c2"})
        await enos(s, {"action": "cancel", "orgId": EORG, **A1, "commandId": "c1"})
        await find_devices(s, {"expression": "assetId = 'asset01'"})
        await find_devices(s, {}, org="o2")
        log = [r for r in (await s.call("GET", "/_sim/requests"))[1]["requests"]
               if r["route"] != "enos.token"]  # fmt: skip
        assert [(r["route"], r["tenant"], r["key"], r["code"]) for r in log] == [
            ("enos.search", f"enos:{EORG}", "asset01", 0),
            ("enos.search", f"enos:{EORG}", "pk01/dev01", 0),
            ("enos.get", f"enos:{EORG}", "c2", 0),
            ("enos.cancel", f"enos:{EORG}", "asset01/c1", 0),
            ("enos.devices", f"enos:{EORG}", "", 0),
            ("enos.devices", "enos:o2", "", 0),
        ]
        assert log[4]["path"] == DEVICES and log[4]["method"] == "POST"

    run(scenario)
