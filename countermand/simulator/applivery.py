"""Applivery MDM routes (Apple and Android commands), as ../shared/apis/ describes them.

Every answer is checked in the same order: the bearer token (401: 4002 none, 4004 wrong; one
token, ``applivery_token``, is valid for every org), then the path ids against
``countermand.ids`` (400, code 3002 ``Invalid parameter: <name>``, names as the reference pages
spell them), then the command (404 3001 unknown; 400 5106 not cancelable any more).

Android cancel is best effort, as Google's operations are: the 200 answer carries the record as
it was when the cancel was accepted (status ``PENDING``, as the reference page's example shows),
and the command then ends ``CANCELLED``, or ``DONE`` for a fraction
``android_cancel_done_rate`` of cancels. Only a read tells which: that is what clients must do.
The Android list is newest first (``createdAt`` descending), ``limit`` 10 by default, 100 at
most, with the mongoose-paginate envelope Applivery uses.

With ``cancel_stall_s`` > 0, an accepted cancel changes the store first and then waits that long
before answering (a race hook for tests). The other Applivery reads (Apple per-target list,
device lists) are in ``lists``, Windows in ``windows``; they share the helpers below.
"""

from __future__ import annotations

import random
import time
from typing import Any

from aiohttp import web

from countermand.ids import (
    APPLIVERY_COMMAND,
    APPLIVERY_DEVICE,
    APPLIVERY_ORG,
    APPLIVERY_TARGET,
    APPLIVERY_TARGET_TYPE,
    IdPattern,
)
from countermand.simulator.codes import declared
from countermand.simulator.config import ConfigHolder
from countermand.simulator.faults import Gate, Identify, Reply, reply, stall_cancel
from countermand.simulator.state import (
    APPLE_CANCELABLE,
    AndroidCommand,
    AppleCommand,
    CommandStore,
    iso,
)

APPLE_PATH = "/v1/organizations/{org}/mdm/apple/enterprise/commands/{target_type}/{target}/{cmd}"
ANDROID_PATH = "/v1/organizations/{org}/mdm/android/enterprise/devices/{device}/commands"
ENTERPRISE = "enterprises/LCsimulator"
ANDROID_COMMAND_TYPE = "type.googleapis.com/google.apps.gmm.v1.Command"

# (path parameter, name in the reference pages, pattern)
_APPLE_IDS = (
    ("org", "organizationId", APPLIVERY_ORG),
    ("target_type", "targetType", APPLIVERY_TARGET_TYPE),
    ("target", "targetId", APPLIVERY_TARGET),
    ("cmd", "admCommandId", APPLIVERY_COMMAND),
)
_ANDROID_IDS = (
    ("org", "organizationId", APPLIVERY_ORG),
    ("device", "emmDeviceId", APPLIVERY_DEVICE),
    ("cmd", "emmCommandId", APPLIVERY_COMMAND),
)


def error(status: int, code: int, message: str) -> Reply:
    declared("applivery", code)
    return reply(status, {"status": False, "error": {"code": code, "message": message}}, code)


def ok(data: object) -> Reply:
    return reply(200, {"status": True, "data": data})


def not_found() -> Reply:
    return error(404, 3001, "Entity not found")


def invalid(name: str) -> Reply:
    return error(400, 3002, f"Invalid parameter: {name}")


def now_iso() -> str:
    return iso(int(time.time() * 1000))


def check_ids(request: web.Request, ids: tuple[tuple[str, str, IdPattern], ...]) -> Reply | None:
    info = request.match_info
    for param, name, pattern in ids:
        if param in info and not pattern.regex.fullmatch(info[param]):
            return invalid(name)
    return None


def apple_data(r: AppleCommand) -> dict[str, Any]:
    return {
        "id": r.command_id,
        "organization": r.org,
        "targetType": r.target_type,
        "targetId": r.target_id,
        "requestType": r.request_type,
        "status": r.status,
        "sentAt": r.sent_at,
        "receivedAt": r.received_at,
        "triedAt": r.tried_at,
        "canceledAt": r.canceled_at,
        "numTries": r.num_tries,
    }


def android_data(r: AndroidCommand) -> dict[str, Any]:
    return {
        "id": r.command_id,
        "organization": r.org,
        "emmEnterprise": ENTERPRISE,
        "emmDevice": r.device_id,
        "mdmUser": None,
        "status": r.status,
        "config": {
            "metadata": {"@type": ANDROID_COMMAND_TYPE, "type": r.type, "createTime": r.created_at},
            "done": r.status != "PENDING",
        },
        "_config": {
            "name": f"{ENTERPRISE}/devices/{r.device_id}/operations/{r.command_id}",
            "metadata": {"type": r.type},
        },
        "updatedAt": r.updated_at,
        "createdAt": r.created_at,
    }


def page_envelope(items: list[Any], total: int, page: int, limit: int) -> dict[str, Any]:
    pages = max(1, -(-total // limit))
    return {
        "items": items,
        "totalDocs": total,
        "limit": limit,
        "page": page,
        "totalPages": pages,
        "pagingCounter": (page - 1) * limit + 1,
        "hasPrevPage": page > 1,
        "hasNextPage": page < pages,
        "prevPage": page - 1 if page > 1 else None,
        "nextPage": page + 1 if page < pages else None,
    }


def int_param(request: web.Request, name: str, default: int, high: int) -> int | None:
    """A positive integer query parameter up to ``high``, ``default`` when absent, else None."""
    raw = request.query.get(name)
    if raw is None:
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() else 0
    return value if 1 <= value <= high else None


def page_params(request: web.Request) -> tuple[int, int] | Reply:
    """``(page, limit)`` from the query (1 and 10 by default, limit 100 at most), or 3002."""
    page, limit = int_param(request, "page", 1, 10**9), int_param(request, "limit", 10, 100)
    if page is None or limit is None:
        return invalid("page" if page is None else "limit")
    return page, limit


class Applivery:
    def __init__(self, holder: ConfigHolder, store: CommandStore, seed: int) -> None:
        self.holder = holder
        self.store = store
        self.rng = random.Random(f"android/{seed}")

    def denied(self, request: web.Request) -> Reply | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if not token.strip():
            return error(401, 4002, "No auth token")
        if scheme.lower() != "bearer" or token != self.holder.current.applivery_token:
            return error(401, 4004, "Invalid Token")
        return None

    async def apple_cancel(self, request: web.Request) -> Reply:
        rejected = self.denied(request) or check_ids(request, _APPLE_IDS)
        if rejected is not None:
            return rejected
        record = self.store.apple.by_key.get(_apple_key(request))
        if record is None:
            return not_found()
        if record.status not in APPLE_CANCELABLE:
            return error(400, 5106, "AdmCommand not status pending or tried")
        record.status, record.canceled_at = "Canceled", now_iso()
        await stall_cancel(self.holder.current)
        return ok({"canceled": "OK"})

    async def apple_get(self, request: web.Request) -> Reply:
        rejected = self.denied(request) or check_ids(request, _APPLE_IDS)
        if rejected is not None:
            return rejected
        record = self.store.apple.by_key.get(_apple_key(request))
        return not_found() if record is None else ok(apple_data(record))

    async def android_cancel(self, request: web.Request) -> Reply:
        rejected = self.denied(request) or check_ids(request, _ANDROID_IDS)
        if rejected is not None:
            return rejected
        record = self.store.android.by_key.get(_android_key(request))
        if record is None:
            return not_found()
        if record.status != "PENDING":
            return error(400, 5106, "EmmCommand not status pending")
        answer = ok(android_data(record))  # as accepted: the outcome shows on the next read
        done = self.rng.random() < self.holder.current.android_cancel_done_rate
        record.status, record.updated_at = ("DONE" if done else "CANCELLED"), now_iso()
        await stall_cancel(self.holder.current)
        return answer

    async def android_get(self, request: web.Request) -> Reply:
        rejected = self.denied(request) or check_ids(request, _ANDROID_IDS)
        if rejected is not None:
            return rejected
        record = self.store.android.by_key.get(_android_key(request))
        return not_found() if record is None else ok(android_data(record))

    async def android_list(self, request: web.Request) -> Reply:
        rejected = self.denied(request) or check_ids(request, _ANDROID_IDS)
        if rejected is not None:
            return rejected
        paging = page_params(request)
        if isinstance(paging, Reply):
            return paging
        page, limit = paging
        info = request.match_info
        records = self.store.android.in_group((info["org"], info["device"]))
        if records is None:
            return not_found()
        records.sort(key=lambda r: r.created_at, reverse=True)
        items = [android_data(r) for r in records[(page - 1) * limit : page * limit]]
        return ok(page_envelope(items, len(records), page, limit))

    def routes(self, gate: Gate) -> list[web.RouteDef]:
        return [
            web.post(APPLE_PATH + "/cancel", gate.wrap(ident("apple.cancel"), self.apple_cancel)),
            web.get(APPLE_PATH, gate.wrap(ident("apple.get"), self.apple_get)),
            web.post(
                ANDROID_PATH + "/{cmd}/cancel",
                gate.wrap(ident("android.cancel"), self.android_cancel),
            ),
            web.get(ANDROID_PATH + "/{cmd}", gate.wrap(ident("android.get"), self.android_get)),
            web.get(ANDROID_PATH, gate.wrap(ident("android.list"), self.android_list)),
        ]


def _apple_key(request: web.Request) -> tuple[str, ...]:
    info = request.match_info
    return (info["org"], info["target_type"], info["target"], info["cmd"])


def _android_key(request: web.Request) -> tuple[str, ...]:
    info = request.match_info
    return (info["org"], info["device"], info["cmd"])


def ident(route: str) -> Identify:
    """The log's (route, tenant, key) for an Applivery route: key is the path after the org
    (Apple: target type, target and command; Android and Windows: device and command)."""
    names = ("target_type", "target", "cmd") if route.startswith("apple") else ("device", "cmd")

    def identify(request: web.Request) -> tuple[str, str | None, str]:
        info = request.match_info
        key = "/".join(info[name] for name in names if name in info)
        return route, "applivery:" + info["org"], key

    return identify
