"""Applivery MDM, Windows: command batches and their actions, read and polled (no cancel).

* ``GET .../devices/{winDeviceId}/commands/{winCommandId}`` (``windows.get``): the batch with
  ``summary``, its actions counted by (status, action) in the order they first appear.
* ``GET .../commands/{winCommandId}/actions?page=&limit=&sort=`` (``windows.actions``): the
  batch's actions in stored order, envelope ``{"items", "totalDocs"}`` only, as the reference
  page shows.
* ``GET .../devices/{winDeviceId}/commands?page=&limit=&sort=`` (``windows.list``): the
  device's batches, newest first (``createdAt:desc``), in the mongoose-paginate envelope.

Checks and errors are the Applivery ones (``applivery``): token, then ids (3002 with the
pages' names ``organizationId``, ``winDeviceId``, ``winCommandId``, ``page``, ``limit``,
``sort``), then 3001 for an unknown batch, or a device without batches. ``sort`` is
``field``, ``field:asc`` or ``field:desc`` over the fields in ``_BATCH_SORT`` and
``_ACTION_SORT``; an absent value sorts last either way.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from countermand.ids import APPLIVERY_COMMAND, APPLIVERY_DEVICE, APPLIVERY_ORG
from countermand.simulator.applivery import (
    Applivery,
    check_ids,
    ident,
    invalid,
    not_found,
    ok,
    page_envelope,
    page_params,
)
from countermand.simulator.faults import Gate, Reply
from countermand.simulator.state import WindowsAction, WindowsBatch

WINDOWS_PATH = "/v1/organizations/{org}/mdm/windows/enterprise/devices/{device}/commands"
_IDS = (
    ("org", "organizationId", APPLIVERY_ORG),
    ("device", "winDeviceId", APPLIVERY_DEVICE),
    ("cmd", "winCommandId", APPLIVERY_COMMAND),
)
_SORT = re.compile(r"([\w.]+)(?::(asc|desc))?", re.ASCII)
_BATCH_SORT = frozenset({"id", "name", "createdAt", "updatedAt"})
_ACTION_SORT = frozenset({"cmdId", "status", "statusCode", "sentAt", "receivedAt", "canceledAt"})


def summary(batch: WindowsBatch) -> list[dict[str, Any]]:
    counts: dict[tuple[str, str], int] = {}
    for action in batch.actions:
        key = (action.status, action.action)
        counts[key] = counts.get(key, 0) + 1
    return [{"status": s, "action": a, "num": n} for (s, a), n in counts.items()]


def batch_data(r: WindowsBatch) -> dict[str, Any]:
    return {
        "id": r.command_id,
        "name": r.name,
        "winDeviceId": r.device_id,
        "summary": summary(r),
        "createdAt": r.created_at,
        "updatedAt": r.updated_at,
    }


def action_data(a: WindowsAction) -> dict[str, Any]:
    return {
        "cmdId": a.cmd_id,
        "status": a.status,
        "config": {"path": a.path, "action": a.action, "value": a.value},
        "data": [],
        "statusCode": a.status_code,
        "sentAt": a.sent_at,
        "receivedAt": a.received_at,
        "canceledAt": a.canceled_at,
    }


def sorted_items(
    request: web.Request, items: list[dict[str, Any]], fields: frozenset[str], default: str | None
) -> list[dict[str, Any]] | Reply:
    """``items`` in the order ``sort`` (or ``default``) asks for, absent values last; or 3002."""
    sort = request.query.get("sort", default)
    if sort is None:
        return items
    match = _SORT.fullmatch(sort)
    if match is None or match[1] not in fields:
        return invalid("sort")
    field = match[1]
    present = [item for item in items if item[field] is not None]
    present.sort(key=lambda item: item[field], reverse=match[2] == "desc")
    return present + [item for item in items if item[field] is None]


class Windows:
    def __init__(self, applivery: Applivery) -> None:
        self.applivery = applivery
        self.store = applivery.store

    def checked(self, request: web.Request) -> WindowsBatch | Reply:
        """The batch the path names, or the error answer."""
        rejected = self.applivery.denied(request) or check_ids(request, _IDS)
        if rejected is not None:
            return rejected
        info = request.match_info
        found = self.store.windows.by_key.get((info["org"], info["device"], info["cmd"]))
        return not_found() if found is None else found

    async def get(self, request: web.Request) -> Reply:
        batch = self.checked(request)
        return batch if isinstance(batch, Reply) else ok(batch_data(batch))

    async def actions(self, request: web.Request) -> Reply:
        batch = self.checked(request)
        if isinstance(batch, Reply):
            return batch
        paging = page_params(request)
        if isinstance(paging, Reply):
            return paging
        page, limit = paging
        items = sorted_items(request, [action_data(a) for a in batch.actions], _ACTION_SORT, None)
        if isinstance(items, Reply):
            return items
        return ok({"items": items[(page - 1) * limit : page * limit], "totalDocs": len(items)})

    async def batches(self, request: web.Request) -> Reply:
        rejected = self.applivery.denied(request) or check_ids(request, _IDS)
        if rejected is not None:
            return rejected
        paging = page_params(request)
        if isinstance(paging, Reply):
            return paging
        page, limit = paging
        info = request.match_info
        batches = self.store.windows.in_group((info["org"], info["device"]))
        if batches is None:
            return not_found()
        rendered = [batch_data(b) for b in batches]
        items = sorted_items(request, rendered, _BATCH_SORT, "createdAt:desc")
        if isinstance(items, Reply):
            return items
        page_items = items[(page - 1) * limit : page * limit]
        return ok(page_envelope(page_items, len(items), page, limit))

    def routes(self, gate: Gate) -> list[web.RouteDef]:
        return [
            web.get(WINDOWS_PATH + "/{cmd}", gate.wrap(ident("windows.get"), self.get)),
            web.get(
                WINDOWS_PATH + "/{cmd}/actions", gate.wrap(ident("windows.actions"), self.actions)
            ),
            web.get(WINDOWS_PATH, gate.wrap(ident("windows.list"), self.batches)),
        ]
