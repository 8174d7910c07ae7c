"""EnOS routes: the API-management token service and connect-service v2.1 commands.

Token (``POST /apim-token-service/v2.0/token/get``): JSON ``appKey``, ``encryption``,
``timestamp``; ``encryption`` must be ``sha256_hex(appKey + str(timestamp) + secret)``. Answers
are HTTP 200 with ``status`` in the body (0 success, 1202 missing field, 1004 not a JSON object,
1002 unknown appKey, 1003 wrong encryption), as the token service documents its ``status``
field. Asking again before expiry returns the same token with the seconds it has left.

Commands (``/connect-service/v2.1/commands?action=...``): the gateway check comes first: the
three ``apim-*`` headers (1202 when one is missing), a known unexpired token (1203), the
signature ``sha256_hex(token + paramsData + timestamp + secret)`` (1003), and a signature not
seen before with that token (1001: a replayed request; two different requests signed in the
same millisecond by two processes are not replays); paramsData ends with the exact body text,
so a POST's JSON body is signed too. Then the action: ``cancel`` (POST), ``get`` (GET) and
``search`` (POST, JSON body, grammar in ``enos_search``: newest ``createTime`` first, with
``pagination {pageNo, pageSize, totalSize}`` beside ``data``; a bad body or expression is 1004
naming the problem); add an entry to ``Enos.actions`` for more. With ``cancel_stall_s`` > 0 a
cancel changes the store, then waits that long before answering. Error answers are
``{"code": N, "msg": ...}`` with HTTP 400 for 1001/1004/1202, 401 for 1002/1003/1203/1204,
and HTTP 200 for business codes (11404 device or command does not exist). The log records
code 0 for EnOS successes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from countermand.ids import ENOS_ID
from countermand.simulator.codes import declared
from countermand.simulator.config import ConfigHolder
from countermand.simulator.enos_search import SearchError, parse_search
from countermand.simulator.faults import Gate, Reply, reply, stall_cancel
from countermand.simulator.state import ENOS_CACHED, ENOS_CANCELED, CommandStore, EnosCommand

TOKEN_PATH = "/apim-token-service/v2.0/token/get"
COMMANDS_PATH = "/connect-service/v2.1/commands"
_HTTP_STATUS = {1001: 400, 1004: 400, 1202: 400, 1002: 401, 1003: 401, 1203: 401, 1204: 401}


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def params_data(params: Iterable[tuple[str, str]], body: str = "") -> str:
    """Query parameters sorted by name, written ``name value`` without separators, then body."""
    return "".join(name + value for name, value in sorted(params, key=lambda p: p[0])) + body


def signature(
    token: str, params: Iterable[tuple[str, str]], body: str, timestamp: str, secret: str
) -> str:
    """The ``apim-signature`` of a call (README: worked example in the tests)."""
    return sha256_hex(token + params_data(params, body) + timestamp + secret)


def encryption(app_key: str, timestamp: str, secret: str) -> str:
    return sha256_hex(app_key + timestamp + secret)


class Tokens:
    """Access tokens per appKey, and the signatures already used with each token."""

    def __init__(self) -> None:
        self._current: dict[str, tuple[str, float]] = {}  # appKey -> (token, expires at)
        self._expiry: dict[str, float] = {}  # token -> expires at (0: expired on request)
        self._seen: dict[str, set[str]] = {}  # token -> signatures used

    def issue(self, app_key: str, now: float, ttl: int) -> tuple[str, int]:
        current = self._current.get(app_key)
        if current is not None and current[1] > now:
            return current[0], int(current[1] - now)
        for token, expires in self._expiry.items():
            if expires <= now:
                self._seen.pop(token, None)
        token = secrets.token_hex(16)
        self._current[app_key] = (token, now + ttl)
        self._expiry[token] = now + ttl
        return token, ttl

    def valid(self, token: str, now: float) -> bool:
        return self._expiry.get(token, 0.0) > now

    def first_use(self, token: str, signed: str) -> bool:
        seen = self._seen.setdefault(token, set())
        if signed in seen:
            return False
        seen.add(signed)
        return True

    def expire_all(self) -> int:
        for token in self._expiry:
            self._expiry[token] = 0.0
        self._current.clear()
        self._seen.clear()
        return len(self._expiry)


def gateway_error(code: int, msg: str) -> Reply:
    declared("enos", code)
    return reply(_HTTP_STATUS.get(code, 200), {"code": code, "msg": msg}, code)


def answer(
    data: object, code: int = 0, msg: str = "Success", extra: Mapping[str, object] | None = None
) -> Reply:
    if code:
        declared("enos", code)
    body = {"code": code, "msg": msg, "submsg": None, "requestId": uuid.uuid4().hex, "data": data}
    return reply(200, {**body, **(extra or {})}, code)


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


class Enos:
    def __init__(self, holder: ConfigHolder, store: CommandStore) -> None:
        self.holder = holder
        self.store = store
        self.tokens = Tokens()
        self.actions: dict[tuple[str, str], Callable[[web.Request], Awaitable[Reply]]] = {
            ("POST", "cancel"): self.cancel,
            ("GET", "get"): self.get,
            ("POST", "search"): self.search,
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
        rejected = await self.gateway(request)
        if rejected is not None:
            return rejected
        action = request.query.get("action")
        if not action:
            return gateway_error(1202, "Empty parameter: action")
        handler = self.actions.get((request.method, action))
        if handler is None:
            return gateway_error(1004, f"Invalid parameter: action {action!r} for {request.method}")
        if not request.query.get("orgId"):
            return gateway_error(1202, "Empty parameter: orgId")
        return await handler(request)

    async def gateway(self, request: web.Request) -> Reply | None:
        headers = request.headers
        token = headers.get("apim-accesstoken")
        ts = headers.get("apim-timestamp")
        signed = headers.get("apim-signature")
        if not token or not ts or not signed:
            return gateway_error(1202, "Empty parameter: apim-accesstoken, -timestamp, -signature")
        if not self.tokens.valid(token, time.time()):
            return gateway_error(1203, "Access token expired")
        body = await request.text() if request.body_exists else ""
        secret = self.holder.current.enos_secret_key
        expected = signature(token, request.query.items(), body, ts, secret)
        if not hmac.compare_digest(signed.encode(), expected.encode()):
            return gateway_error(1003, "Invalid encryption")
        if not self.tokens.first_use(token, signed):
            return gateway_error(1001, "Duplicated encryption")
        return None

    async def cancel(self, request: web.Request) -> Reply:
        names = ("orgId", "assetId", "productKey", "deviceKey", "commandId")
        problem = _param_problem(request, names)
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
        problem = _param_problem(request, ("orgId", "commandId"))
        if problem is not None:
            return problem
        command_id = request.query.get("commandId")
        if not command_id:
            return gateway_error(1202, "Empty parameter: commandId")
        found = self.store.enos.by_key.get((request.query["orgId"], command_id))
        if found is None:
            return answer(None, 11404, "Command does not exist")
        return answer(command_data(found))

    async def search(self, request: web.Request) -> Reply:
        problem = _param_problem(request, ("orgId",))
        if problem is not None:
            return problem
        try:
            search = parse_search(await request.text() if request.body_exists else "")
        except SearchError as exc:
            return gateway_error(1004, f"Invalid parameter: {exc}")
        org = request.query["orgId"]
        found = [r for r in self.store.enos if r.org == org and search.matches(r)]
        found.sort(key=lambda r: (r.create_time, r.command_id), reverse=True)
        first = (search.page_no - 1) * search.page_size
        data = [command_data(r) for r in found[first : first + search.page_size]]
        pagination = {"pageNo": search.page_no, "pageSize": search.page_size}
        return answer(data, extra={"pagination": {**pagination, "totalSize": len(found)}})

    def _asset(self, org: str, query: Mapping[str, str]) -> str | None:
        """The asset id the parameters name ("" when they name no device), None when too few."""
        asset, product, device = (query.get(k) for k in ("assetId", "productKey", "deviceKey"))
        if product and device:
            by_keys = self.store.enos_asset(org, product, device) or ""
            return by_keys if not asset or asset == by_keys else ""
        return asset or None

    def routes(self, gate: Gate) -> list[web.RouteDef]:
        commands = gate.wrap(_identify, self.commands)
        return [
            web.post(TOKEN_PATH, gate.wrap(_identify_token, self.token, faults=False)),
            web.post(COMMANDS_PATH, commands),
            web.get(COMMANDS_PATH, commands),
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
    action = query.get("action", "")
    route = "enos." + action if action in ("cancel", "get", "search") else "enos.other"
    device = query.get("assetId") or f"{query.get('productKey', '')}/{query.get('deviceKey', '')}"
    command = query.get("commandId")
    key = (command or "") if action == "get" else device + ("/" + command if command else "")
    if action == "search":
        key = ""  # the expression, in the body, names what is searched
    return route, "enos:" + query.get("orgId", ""), key
