"""Applivery list reads: the Apple per-target list and the per-platform device lists.

* ``GET .../mdm/apple/enterprise/commands/{targetType}/{targetId}/grouped?page=&limit=``
  (``apple.list``): the target's commands shaped like the Apple read, newest ``sentAt`` first
  (never sent last); 3001 for a target without commands. Its routes must be registered before
  ``Applivery.routes``: the Apple read's ``{admCommandId}`` would match ``grouped`` too (and
  answer 3002), and aiohttp tries routes in the order they were added.
* ``GET .../mdm/{apple|android|windows}/enterprise/devices?page=&limit=`` (``apple.devices``,
  ``android.devices``, ``windows.devices``): the org's devices that have commands in the store,
  in the order they were first stored (Apple: the targets of type ``device``), each
  ``{"id", "serialNumber", "name"}``. Not in the reference pages, inferred from the vendor's
  docs and kept plain: ``serialNumber`` is the id unless it is 24 hex digits (an Applivery
  object id; then null), ``name`` is made up from the platform and the id. An org without
  devices has an empty list, not a 3001.

Both use the mongoose-paginate envelope, ``limit`` 10 by default and 100 at most.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from countermand.ids import (
    APPLIVERY_COMMAND,
    APPLIVERY_ORG,
    APPLIVERY_TARGET,
    APPLIVERY_TARGET_TYPE,
)
from countermand.simulator.applivery import (
    Applivery,
    apple_data,
    check_ids,
    ident,
    not_found,
    ok,
    page_envelope,
    page_params,
)
from countermand.simulator.faults import Gate, Reply, VendorHandler

ORG_PATH = "/v1/organizations/{org}/mdm"
GROUPED_PATH = ORG_PATH + "/apple/enterprise/commands/{target_type}/{target}/grouped"
PLATFORMS = {"apple": "Mac", "android": "Android", "windows": "Windows"}  # path -> device name
_APPLE_TARGET_IDS = (
    ("org", "organizationId", APPLIVERY_ORG),
    ("target_type", "targetType", APPLIVERY_TARGET_TYPE),
    ("target", "targetId", APPLIVERY_TARGET),
)
_ORG_IDS = (("org", "organizationId", APPLIVERY_ORG),)


def device_data(platform: str, device_id: str) -> dict[str, Any]:
    object_id = APPLIVERY_COMMAND.regex.fullmatch(device_id) is not None  # 24 hex digits
    return {
        "id": device_id,
        "serialNumber": None if object_id else device_id,
        "name": f"{PLATFORMS[platform]}-{device_id}",
    }


def paged(request: web.Request, items: list[Any]) -> Reply:
    """One page of ``items`` as ``page`` and ``limit`` ask, or 3002."""
    paging = page_params(request)
    if isinstance(paging, Reply):
        return paging
    page, limit = paging
    return ok(page_envelope(items[(page - 1) * limit : page * limit], len(items), page, limit))


class AppliveryLists:
    def __init__(self, applivery: Applivery) -> None:
        self.applivery = applivery
        self.store = applivery.store

    async def apple_list(self, request: web.Request) -> Reply:
        rejected = self.applivery.denied(request) or check_ids(request, _APPLE_TARGET_IDS)
        if rejected is not None:
            return rejected
        info = request.match_info
        records = self.store.apple.in_group((info["org"], info["target_type"], info["target"]))
        if not records:
            return not_found()
        records.sort(key=lambda r: r.sent_at or "", reverse=True)
        return paged(request, [apple_data(r) for r in records])

    def device_ids(self, platform: str, org: str) -> list[str]:
        """The org's devices with commands on ``platform``, in first-stored order."""
        if platform == "apple":
            targets = self.store.apple.by_group.items()
            return [g[2] for g, members in targets if members and g[:2] == (org, "device")]
        table = self.store.android if platform == "android" else self.store.windows
        return [g[1] for g, members in table.by_group.items() if members and g[0] == org]

    def devices(self, platform: str) -> VendorHandler:
        async def handler(request: web.Request) -> Reply:
            rejected = self.applivery.denied(request) or check_ids(request, _ORG_IDS)
            if rejected is not None:
                return rejected
            ids = self.device_ids(platform, request.match_info["org"])
            return paged(request, [device_data(platform, device) for device in ids])

        return handler

    def routes(self, gate: Gate) -> list[web.RouteDef]:
        """Register before ``Applivery.routes`` (see the module docstring)."""
        routes = [web.get(GROUPED_PATH, gate.wrap(ident("apple.list"), self.apple_list))]
        for platform in PLATFORMS:
            handler = gate.wrap(ident(f"{platform}.devices"), self.devices(platform))
            routes.append(web.get(f"{ORG_PATH}/{platform}/enterprise/devices", handler))
        return routes
