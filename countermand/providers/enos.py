"""EnOS connect-service v2.1: cancel cached commands of a device, as the vendor documents it.

* Cancel: ``POST {gateway}/connect-service/v2.1/commands?action=cancel&orgId=..`` with the
  device (``assetId``, or ``productKey`` and ``deviceKey``) and ``commandId``. Success is HTTP
  200 with ``code`` 0 and ``data`` listing what was canceled: a non-empty list is ``canceled``
  (the count and ids are kept for the report), an empty one ``nothing_pending``. ``code`` other
  than 0 is an error even under HTTP 200 and maps through ``countermand.errors.verdict``; never
  match on ``msg``.
* A row without ``command_id`` (device-wide) is a Search Command, then a cancel of each found
  command by id: EnOS's own cancel-all is not dependable across versions, and it would also
  cancel commands queued after our first try. Search names the device in the query string; its
  ``expression`` uses only the documented fields: ``state = 1`` and ``createTime < 'YYYY-MM-DD
  HH:mm:ss'``. The vendor's page does not say which time zone that text is in, so the bound is
  written ``ZONE_PAD`` later than the job's creation in UTC (no zone is ahead of UTC by more)
  and every command found is then kept only if its own ``createTime`` (epoch ms, or the same
  text read as UTC) is before the job. Pages of ``SEARCH_PAGE`` (the vendor recommends at most
  50); newest first; a device caches at most 50 commands.
* Read (Get Command): ``GET ...commands?action=get`` with the device and ``commandId``.
* Stale discovery: V2.4 Search Device lists the org's devices (or the policy's devices file
  names them), then each device is searched as above with the policy's cutoff and, if given,
  ``commandName.en_US like '<name>'`` (kept only on an exact name match).

Auth is EnOS API Management's access token and per-request signature (``enos_auth``). Every
request goes through the call path it is handed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from countermand import states
from countermand.credentials import EnosKeys
from countermand.errors import (
    ENOS,
    Misconfigured,
    TokenExpired,
    TransientError,
    Unauthorized,
    UsageError,
    verdict,
)
from countermand.ids import ENOS_ID
from countermand.models import Outcome
from countermand.providers.base import (
    Call,
    CallResult,
    Column,
    InvalidRow,
    Provider,
    ProviderContext,
    StaleQuery,
    Target,
    settle,
    validate_columns,
)
from countermand.providers.enos_auth import TokenSource, signed_headers, url_with_query
from countermand.providers.http import Response, exchange
from countermand.timeparse import parse_time

COMMANDS = "/connect-service/v2.1/commands"
DEVICES = "/connect-service/v2.4/devices"
SEARCH_PAGE = 50
DEVICE_PAGE = 50
MAX_PAGES = 10_000
ZONE_PAD_S = 14 * 3600  # UTC+14 is the furthest zone ahead of UTC
DEVICE_PARAMS = (
    ("asset_id", "assetId"),
    ("product_key", "productKey"),
    ("device_key", "deviceKey"),
)


class EnosSpec:
    name = "enos"
    vendor = ENOS
    org_pattern = ENOS_ID
    columns: Sequence[Column] = (
        Column("asset_id", ENOS_ID, required=False),
        Column("product_key", ENOS_ID, required=False),
        Column("device_key", ENOS_ID, required=False),
        Column("command_id", ENOS_ID, required=False),
    )
    extra_columns: Sequence[str] = (
        "canceled_count",
        "canceled_command_ids",
        "vendor_status",
        "verified",
    )
    can_cancel = True
    can_discover = True

    def base_url(self, settings: Any) -> str | None:
        return settings.enos_url  # type: ignore[no-any-return]

    def header_problem(self, header: Sequence[str]) -> str | None:
        if "asset_id" in header or {"product_key", "device_key"} <= set(header):
            return None
        return "header needs asset_id, or product_key and device_key"

    def validate(self, row: Mapping[str, str | None]) -> Target:
        target = validate_columns(self.columns, row)
        if "asset_id" in target:  # the asset id names the device; keys, if any, are not sent
            target.pop("product_key", None)
            target.pop("device_key", None)
        elif not {"product_key", "device_key"} <= target.keys():
            raise InvalidRow("missing asset_id, or product_key and device_key")
        return target

    def key(self, target: Target) -> str:
        device = target.get("asset_id") or f"{target['product_key']}/{target['device_key']}"
        return f"{device}#{target.get('command_id', '*')}"

    def report_extra(self, extra: Mapping[str, Any]) -> list[str]:
        ids = extra.get("ids") or []
        return [
            str(extra["n"]) if "n" in extra else "",
            ";".join(map(str, ids)),
            str(extra.get("status") or ""),
            str(extra.get("verified") or ""),
        ]

    def make(self, context: ProviderContext) -> Provider:
        return EnosProvider(context)


def device_params(target: Mapping[str, str]) -> dict[str, str]:
    return {name: target[column] for column, name in DEVICE_PARAMS if column in target}


def search_time(epoch_s: float) -> str:
    """A ``createTime`` bound for ``<``, late enough in any zone (see the module docstring)."""
    return datetime.fromtimestamp(epoch_s + ZONE_PAD_S, UTC).strftime("%Y-%m-%d %H:%M:%S")


def created_ms(command: Mapping[str, Any]) -> int | None:
    """A command's creation time in epoch ms: ``createTime`` as epoch ms, or as text (UTC)."""
    raw = command.get("createTime")
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return int(raw)
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    when = parse_time(raw.replace(" ", "T", 1) + "+00:00") if isinstance(raw, str) else None
    return None if when is None else int(when * 1000)


def command_name(command: Mapping[str, Any]) -> str | None:
    name = command.get("commandName")
    if isinstance(name, dict):
        value = name.get("defaultValue") or (name.get("i18nValue") or {}).get("en_US")
        return str(value) if value is not None else None
    return str(name) if name is not None else None


class EnosProvider:
    def __init__(self, context: ProviderContext) -> None:
        if not isinstance(context.credential, EnosKeys):
            raise UsageError("the EnOS provider needs an access key and a secret key")
        self._ctx = context
        self._keys = context.credential
        self._tokens = TokenSource.shared(context)

    async def cancel(self, target: Target, call: Call) -> CallResult:
        if "command_id" not in target:
            return await self.cancel_device(target, call)
        params = {"action": "cancel", "orgId": self._ctx.org, **device_params(target),
                  "commandId": target["command_id"]}  # fmt: skip
        data = await self._call(call, "POST", COMMANDS, params, kind="cancel")
        if isinstance(data, CallResult):
            return data
        if not isinstance(data, list):
            raise TransientError(f"EnOS cancel answered data={data!r}, expected a list")
        if not data:
            return CallResult(Outcome.NOTHING_PENDING, http_status=200)
        ids = [str(item.get("commandId")) for item in data if isinstance(item, dict)]
        return CallResult(Outcome.CANCELED, http_status=200, extra={"n": len(data), "ids": ids})

    async def cancel_device(self, target: Target, call: Call) -> CallResult:
        """Every cached command of the device created before the job, canceled by id.

        A cancel that may have been applied without a definite answer, and then heard
        "nothing cached", is read back: a command this job's own search found cached and that
        now reads canceled was canceled by this job (README, "Outcomes under faults")."""
        found = await self.cached_commands(target, call, self._ctx.job_created_ms)
        if isinstance(found, CallResult):
            return found
        canceled: list[str] = []
        for command_id in found:
            one = {**target, "command_id": command_id}
            before = call.uncertain_tries
            result = await self.cancel(one, call)
            if result.outcome is Outcome.CANCELED:
                canceled += result.extra.get("ids", [])
            elif result.outcome is Outcome.NOTHING_PENDING and call.uncertain_tries > before:
                read = await self.read(one, call)
                if read.outcome is Outcome.CANCELED:
                    canceled.append(command_id)
        if not canceled:
            return CallResult(Outcome.NOTHING_PENDING, http_status=200)
        return CallResult(
            Outcome.CANCELED, http_status=200, extra={"n": len(canceled), "ids": canceled}
        )

    async def cached_commands(
        self, target: Target, call: Call, before_ms: int | None, name: str | None = None
    ) -> list[str] | CallResult:
        """Ids of the device's cached (state 1) commands created before ``before_ms`` (and
        named ``name``), every page; an error answer about the device as its result."""
        conditions = ["state = 1"]
        if before_ms is not None:
            conditions.append(f"createTime < '{search_time(before_ms / 1000)}'")
        if name is not None:
            if "'" in name:
                raise UsageError(f"EnOS command name {name!r}: a quote cannot be searched")
            conditions.append(f"commandName.en_US like '{name}'")
        ids: list[str] = []
        async for page in self.search(device_params(target), " and ".join(conditions), call):
            if isinstance(page, CallResult):
                return page
            for command in page:
                created = created_ms(command)
                if "commandId" not in command or (
                    before_ms is not None and (created is None or created >= before_ms)
                ):
                    continue
                if name is None or command_name(command) == name:
                    ids.append(str(command["commandId"]))
        return ids

    async def search(
        self, device: dict[str, str], expression: str, call: Call
    ) -> AsyncIterator[list[dict[str, Any]] | CallResult]:
        """Search Command pages for one device until one is short; an error answer is yielded
        as its ``CallResult`` and ends the search."""
        params = {"action": "search", "orgId": self._ctx.org, **device}
        for page in range(1, MAX_PAGES + 1):
            body = _body({"expression": expression,
                          "pagination": {"pageNo": page, "pageSize": SEARCH_PAGE}})  # fmt: skip
            data = await self._call(call, "POST", COMMANDS, params, body, kind="list")
            if isinstance(data, CallResult):
                yield data
                return
            if not isinstance(data, list):
                raise TransientError(f"EnOS search answered data={data!r}, expected a list")
            yield [c for c in data if isinstance(c, dict)]
            if len(data) < SEARCH_PAGE:
                return
        raise Misconfigured(f"EnOS search: more than {MAX_PAGES} pages")

    async def devices(self, call: Call, page_size: int) -> AsyncIterator[dict[str, str]]:
        """The org's devices (V2.4 Search Device), page by page, as device parameters."""
        params = {"action": "search", "orgId": self._ctx.org}
        for page in range(1, MAX_PAGES + 1):
            body = _body({"pagination": {"pageNo": page, "pageSize": page_size}})
            data = await self._call(call, "POST", DEVICES, params, body, kind="list")
            if isinstance(data, CallResult):
                raise UsageError(f"EnOS device search refused: {data.error_code} "
                                 f"{data.error_message}")  # fmt: skip
            if not isinstance(data, list):
                raise TransientError(f"EnOS device search answered data={data!r}")
            for device in data:
                if isinstance(device, dict) and device.get("assetId"):
                    yield {"assetId": str(device["assetId"])}
            if len(data) < page_size:
                return
        raise Misconfigured(f"EnOS device search: more than {MAX_PAGES} pages")

    def stale(self, query: StaleQuery, call: Call) -> AsyncIterator[dict[str, str]]:
        """Cached commands created before the cutoff, device by device."""

        async def rows() -> AsyncIterator[dict[str, str]]:
            if query.devices is not None:
                devices: AsyncIterator[dict[str, str]] = _given(query.devices)
            else:
                devices = self.devices(call, min(query.page_size, DEVICE_PAGE))
            cutoff_ms = int(query.cutoff * 1000)
            async for device in devices:
                target = {"asset_id": device["assetId"]}
                found = await self.cached_commands(target, call, cutoff_ms, query.command)
                if isinstance(found, CallResult):
                    continue  # a device that vanished since it was listed
                for command_id in found:
                    yield {"asset_id": device["assetId"], "command_id": command_id}

        return rows()

    async def read(self, target: Target, call: Call) -> CallResult:
        """Get Command (device and ``commandId``); the command's ``state`` through states.ENOS.
        EnOS records carry no cancel time: ``state_time`` stays None."""
        if "command_id" not in target:
            return CallResult(Outcome.INVALID, error_message="polling EnOS needs command_id")
        params = {"action": "get", "orgId": self._ctx.org, **device_params(target),
                  "commandId": target["command_id"]}  # fmt: skip
        data = await self._call(call, "GET", COMMANDS, params, kind="read")
        if isinstance(data, CallResult):
            return data
        if not isinstance(data, dict) or not isinstance(data.get("state"), int):
            raise TransientError(f"EnOS get answered data={data!r}, expected a command")
        state = data["state"]
        status = f"{state} {states.ENOS_NAMES.get(state, 'unknown')}"
        cls = states.ENOS.get(state, states.StateClass.PENDING)
        return CallResult(Outcome(cls.value), http_status=200, extra={"status": status})

    async def _call(
        self,
        call: Call,
        method: str,
        path: str,
        params: dict[str, str],
        body: bytes | None = None,
        *,
        kind: str,
    ) -> Any:
        """One signed request through the call path. On 1203 (token expired) the next try
        takes a new token; a second 1203 right after renewal means the keys are wrong."""
        renewed = False

        async def send() -> Any:
            nonlocal renewed
            token = await self._tokens.get(refresh=renewed)
            headers = signed_headers(token, self._keys, params, body)
            resp = await exchange(
                self._ctx.transport, method, url_with_query(f"{self._ctx.base_url}{path}", params),
                headers=headers, timeout=self._ctx.timeout, data=body,
                max_bytes=self._ctx.max_answer_bytes,
            )  # fmt: skip
            try:
                return answer_data(resp)
            except TokenExpired as exc:
                if renewed:
                    raise Unauthorized(
                        f"EnOS token expired again right after renewal: {exc.message}",
                        http_status=exc.http_status,
                        error_code=exc.error_code,
                    ) from exc
                renewed = True
                raise

        return await call(send, kind=kind)


async def _given(devices: Sequence[str]) -> AsyncIterator[dict[str, str]]:
    for device in devices:
        yield {"assetId": device}


def _body(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def answer_data(resp: Response) -> Any:
    """``data`` of a ``code`` 0 answer. An error answer is settled through the error table:
    a per-target verdict comes back as a ``CallResult``, everything else is raised (so is a
    4xx whose JSON does not parse: ``Response.unreadable``)."""
    body = resp.json()
    code = body.get("code", body.get("status")) if isinstance(body, dict) else None
    has_envelope = isinstance(code, int) and not isinstance(code, bool)
    if resp.status == 200 and code == 0:
        return body.get("data")
    if 200 <= resp.status < 300 and not has_envelope:
        raise resp.not_the_vendor("EnOS")
    message = str(body.get("msg") or "") if isinstance(body, dict) else ""
    envelope_code = code if has_envelope else None
    found = verdict(ENOS, resp.status, envelope_code, has_envelope)
    unreadable = resp.unreadable("EnOS", found)
    if unreadable is not None:
        raise unreadable
    return settle(
        found,
        http_status=resp.status,
        code=envelope_code,
        message=message or f"HTTP {resp.status}: {resp.snippet()!r}",
        retry_after=resp.retry_after,
    )
