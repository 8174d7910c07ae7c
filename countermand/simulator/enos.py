"""EnOS routes: the API-management token service, connect-service v2.1 commands, v2.4 devices.

Token (``POST /apim-token-service/v2.0/token/get``): JSON ``appKey``, ``encryption``,
``timestamp``; ``encryption`` must be ``sha256_hex(appKey + str(timestamp) + secret)``. Answers
are HTTP 200 with ``status`` in the body (0 success, 1202 missing field, 1004 not a JSON object,
1002 unknown appKey, 1003 wrong encryption), as the token service documents its ``status``
field. Asking again before expiry returns the same token with the seconds it has left.

Every other route passes the gateway check first (``enos_gateway``: headers 1202, token 1203,
signature over the query and the exact body 1003, replay 1001), then needs ``action`` (1202
when absent, 1004 when not one of the route's for that method) and ``orgId`` (1202). Ids in
the query are 1-128 printable ASCII characters (1004 otherwise). A device is named in the query
by ``assetId``, or ``productKey`` and ``deviceKey`` (both naming different devices: 11404).

``/connect-service/v2.1/commands``:

* ``POST ?action=cancel`` with the device and an optional ``commandId`` (without it: every
  cached command of the device): ``data`` lists the commands canceled, only state 1 ones. Too
  few device parameters: 1004. With ``cancel_stall_s`` > 0 the store changes, then the answer
  waits that long.
* ``POST ?action=search`` with the device (one per call; none: 1202 "The parameter is empty.";
  unknown: 11404 "Device does not exist", a choice: the vendor's page names no code), checked
  before the JSON body (``enos_search``: ``state =``, ``commandName.<locale> like|=``,
  ``createTime <|>= 'YYYY-MM-DD HH:mm:ss'`` read as UTC, joined by ``and``; anything else 1004
  naming the problem and its position): that device's commands, newest ``createTime`` first
  (ties: ``commandId`` descending), one page as ``data``, ``pagination {pageNo, pageSize,
  totalSize}`` beside it.
* ``GET ?action=get`` with the device and ``commandId`` (either absent: 1202 "The parameter is
  empty."): the command as ``data``; 11404 "Command does not exist" when there is none or it
  belongs to another device, 11404 "Device does not exist" when the device is unknown.

``POST /connect-service/v2.4/devices?action=search``: the org's devices (``enos_devices``);
any other action or method there is 1004.

Add an entry to ``Enos.actions`` or ``Enos.device_actions`` for more. The log records code 0
for EnOS successes; routes ``enos.cancel`` (key: the device, then ``/commandId`` when given),
``enos.search`` (key: the device), ``enos.get`` (key: the command id), ``enos.devices`` (key
""), ``enos.other`` for anything else, all with tenant ``enos:<orgId>``; ``enos.token`` has
no tenant.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from countermand.ids import ENOS_ID
from countermand.simulator.codes import declared
from countermand.simulator.config import ConfigHolder
from countermand.simulator.enos_devices import search_devices
from countermand.simulator.enos_gateway import (
    EMPTY,
    Tokens,
    answer,
    check,
    encryption,
    gateway_error,
    page,
    params_data,
    signature,
)
from countermand.simulator.enos_search import SearchError, parse_search
from countermand.simulator.faults import Gate, Reply, reply, stall_cancel
from countermand.simulator.state import ENOS_CACHED, ENOS_CANCELED, CommandStore, EnosCommand

__all__ = [  # Tokens and the signing helpers live in enos_gateway; callers import them here
    "COMMANDS_PATH",
    "DEVICES_PATH",
    "TOKEN_PATH",
    "Enos",
    "Tokens",
    "command_data",
    "encryption",
    "params_data",
    "signature",
]

TOKEN_PATH = "/apim-token-service/v2.0/token/get"
COMMANDS_PATH = "/connect-service/v2.1/commands"
DEVICES_PATH = "/connect-service/v2.4/devices"
DEVICE_PARAMS = ("orgId", "assetId", "productKey", "deviceKey")
Action = Callable[[web.Request], Awaitable[Reply]]


def command_data(r: EnosCommand) -> dict[str, Any]:
    """The getCommand structure."""
    return {
        "commandId": r.command_id,
        "orgId": r.org,
        "productKey": r.product_key,
        "deviceKey": r.device_key,
        "assetId": r.asset_id,
        "createTime": r.create_time,
        "createLocalTime": r.create_time,
        "commandType": r.command_type,
        "commandName": {"defaultValue": r.command_name, "i18nValue": {"en_US": r.command_name}},
        "timeout": 1,
        "pendingTtl": 6000,
        "state": r.state,
        "tslIdentifier": r.tsl_identifier,
        "inputData": r.input_data,
    }


def _param_problem(query: web.Request, names: Iterable[str]) -> Reply | None:
    for name in names:
        value = query.query.get(name)
        if value is not None and not ENOS_ID.regex.fullmatch(value):
            return gateway_error(1004, f"Invalid parameter: {name}")
    return None


async def _body(request: web.Request) -> str:
    return await request.text() if request.body_exists else ""


class Enos:
    def __init__(self, holder: ConfigHolder, store: CommandStore) -> None:
        self.holder = holder
        self.store = store
        self.tokens = Tokens()
        self.actions: dict[tuple[str, str], Action] = {
            ("POST", "cancel"): self.cancel,
            ("GET", "get"): self.get,
            ("POST", "search"): self.search,
        }
        self.device_actions: dict[tuple[str, str], Action] = {
            ("POST", "search"): self.search_devices,
        }

    async def token(self, request: web.Request) -> Reply:
        config = self.holder.current
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _token_error(1004, "Invalid parameter: body must be a JSON object")
        app_key, enc, ts = (body.get(name) for name in ("appKey", "encryption", "timestamp"))
        if not app_key or not enc or ts is None or ts == "":
            return _token_error(1202, "Empty parameter: appKey, encryption and timestamp")
        if app_key != config.enos_access_key:
            return _token_error(1002, "Invalid appKey", str(app_key))
        if enc != encryption(str(app_key), str(ts), config.enos_secret_key):
            return _token_error(1003, "Invalid encryption", str(app_key))
        token, expire = self.tokens.issue(app_key, time.time(), config.enos_token_ttl)
        data = {"accessToken": token, "expire": expire}
        return _token_reply({"status": 0, "msg": "Success", "data": data}, 0, app_key)

    async def commands(self, request: web.Request) -> Reply:
        return await self._dispatch(request, self.actions)

    async def devices(self, request: web.Request) -> Reply:
        return await self._dispatch(request, self.device_actions)

    async def _dispatch(
        self, request: web.Request, actions: Mapping[tuple[str, str], Action]
    ) -> Reply:
        rejected = await check(request, self.tokens, self.holder.current.enos_secret_key)
        if rejected is not None:
            return rejected
        action = request.query.get("action")
        if not action:
            return gateway_error(1202, "Empty parameter: action")
        handler = actions.get((request.method, action))
        if handler is None:
            return gateway_error(1004, f"Invalid parameter: action {action!r} for {request.method}")
        if not request.query.get("orgId"):
            return gateway_error(1202, "Empty parameter: orgId")
        return await handler(request)

    async def cancel(self, request: web.Request) -> Reply:
        problem = _param_problem(request, (*DEVICE_PARAMS, "commandId"))
        if problem is not None:
            return problem
        query = request.query
        org, command_id = query["orgId"], query.get("commandId")
        asset = self._asset(org, query)
        if asset is None:
            return gateway_error(1004, "Invalid parameter: assetId, or productKey and deviceKey")
        if not asset or ("asset", org, asset) not in self.store.enos_devices:
            return answer(None, 11404, "Device does not exist")
        if command_id is not None:
            found = self.store.enos.by_key.get((org, command_id))
            targets = [found] if found is not None and found.asset_id == asset else []
        else:
            targets = self.store.enos.in_group((org, asset)) or []
        canceled = [r for r in targets if r.state == ENOS_CACHED]
        for record in canceled:
            record.state = ENOS_CANCELED
        await stall_cancel(self.holder.current)
        return answer([command_data(r) for r in canceled])

    async def get(self, request: web.Request) -> Reply:
        problem = _param_problem(request, (*DEVICE_PARAMS, "commandId"))
        if problem is not None:
            return problem
        command_id = request.query.get("commandId")
        if not command_id:
            return gateway_error(1202, EMPTY)
        asset = self._device(request.query)
        if isinstance(asset, Reply):
            return asset
        found = self.store.enos.by_key.get((request.query["orgId"], command_id))
        if found is None or found.asset_id != asset:
            return answer(None, 11404, "Command does not exist")
        return answer(command_data(found))

    async def search(self, request: web.Request) -> Reply:
        problem = _param_problem(request, DEVICE_PARAMS)
        if problem is not None:
            return problem
        asset = self._device(request.query)
        if isinstance(asset, Reply):
            return asset
        try:
            search = parse_search(await _body(request))
        except SearchError as exc:
            return gateway_error(1004, f"Invalid parameter: {exc}")
        mine = self.store.enos.in_group((request.query["orgId"], asset)) or []
        found = [r for r in mine if search.matches(r)]
        found.sort(key=lambda r: (r.create_time, r.command_id), reverse=True)
        return page(found, search.page_no, search.page_size, command_data)

    async def search_devices(self, request: web.Request) -> Reply:
        problem = _param_problem(request, ("orgId",))
        if problem is not None:
            return problem
        return search_devices(self.store, request.query["orgId"], await _body(request))

    def _asset(self, org: str, query: Mapping[str, str]) -> str | None:
        """The asset id the parameters name ("" when they name no device), None when too few."""
        asset, product, device = (query.get(k) for k in ("assetId", "productKey", "deviceKey"))
        if product and device:
            by_keys = self.store.enos_asset(org, product, device) or ""
            return by_keys if not asset or asset == by_keys else ""
        return asset or None

    def _device(self, query: Mapping[str, str]) -> str | Reply:
        """The asset id of the known device the query names, or the refusal (search, get)."""
        org = query["orgId"]
        asset = self._asset(org, query)
        if asset is None:
            return gateway_error(1202, EMPTY)
        if not asset or ("asset", org, asset) not in self.store.enos_devices:
            return answer(None, 11404, "Device does not exist")
        return asset

    def routes(self, gate: Gate) -> list[web.RouteDef]:
        commands = gate.wrap(_identify, self.commands)
        devices = gate.wrap(_identify, self.devices)
        return [
            web.post(TOKEN_PATH, gate.wrap(_identify_token, self.token, faults=False)),
            web.post(COMMANDS_PATH, commands),
            web.get(COMMANDS_PATH, commands),
            web.post(DEVICES_PATH, devices),
            web.get(DEVICES_PATH, devices),
        ]


def _token_error(status: int, msg: str, app_key: str = "") -> Reply:
    declared("enos", status)
    return _token_reply({"status": status, "msg": msg}, status, app_key)


def _token_reply(body: dict[str, Any], status: int, app_key: str) -> Reply:
    response = reply(200, {**body, "business": "apim-token-service"}, status)
    response.log_key = app_key
    return response


def _identify_token(request: web.Request) -> tuple[str, str | None, str]:
    return "enos.token", None, ""


def _identify(request: web.Request) -> tuple[str, str | None, str]:
    query = request.query
    action, tenant = query.get("action", ""), "enos:" + query.get("orgId", "")
    if request.path == DEVICES_PATH:
        return ("enos.devices" if action == "search" else "enos.other"), tenant, ""
    route = "enos." + action if action in ("cancel", "get", "search") else "enos.other"
    device = query.get("assetId") or f"{query.get('productKey', '')}/{query.get('deviceKey', '')}"
    command = query.get("commandId")
    if action == "get":
        return route, tenant, command or ""
    if action == "search":
        return route, tenant, device
    return route, tenant, device + ("/" + command if command else "")
