"""EnOS connect-service v2.1: cancel one cached command of a device, or all of them.

``POST {gateway}/connect-service/v2.1/commands?action=cancel&orgId=..`` with ``assetId`` (or
``productKey`` and ``deviceKey``) and an optional ``commandId``. Success is HTTP 200 with
``code`` 0 and ``data`` listing what was canceled: a non-empty list is ``canceled`` (the count
and ids are kept for the report), an empty one ``nothing_pending``. ``code`` other than 0 is an
error even under HTTP 200 and maps through ``countermand.errors.VENDOR_CODES``.

Auth is EnOS API Management's access token and per-request signature (``enos_auth``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from countermand import states
from countermand.credentials import EnosKeys
from countermand.errors import ENOS, Misconfigured, TokenExpired, Unauthorized, UsageError, classify
from countermand.ids import ENOS_ID
from countermand.models import Outcome
from countermand.providers.base import (
    CallResult,
    Column,
    InvalidRow,
    Provider,
    ProviderContext,
    Target,
    settle,
    validate_columns,
)
from countermand.providers.enos_auth import TokenSource, signed_headers, url_with_query
from countermand.providers.http import Response, exchange

SERVICE = "/connect-service/v2.1/commands"
SEARCH_PAGE = 100
MAX_SEARCH_PAGES = 10_000  # a device caches at most 50 commands; an org may hold many
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


class EnosProvider:
    def __init__(self, context: ProviderContext) -> None:
        if not isinstance(context.credential, EnosKeys):
            raise UsageError("the EnOS provider needs an access key and a secret key")
        self._ctx = context
        self._keys = context.credential
        self._tokens = TokenSource.shared(context)

    async def cancel(self, target: Target) -> CallResult:
        if "command_id" not in target:
            return await self.cancel_device(target)
        params = {"action": "cancel", "orgId": self._ctx.org}
        for column, name in (*DEVICE_PARAMS, ("command_id", "commandId")):
            if column in target:
                params[name] = target[column]
        data = await self._call("POST", params)
        if isinstance(data, CallResult):
            return data
        if not isinstance(data, list):
            raise Misconfigured(f"EnOS cancel answered data={data!r}, expected a list")
        if not data:
            return CallResult(Outcome.NOTHING_PENDING, http_status=200)
        ids = [str(item.get("commandId")) for item in data if isinstance(item, dict)]
        return CallResult(Outcome.CANCELED, http_status=200, extra={"n": len(data), "ids": ids})

    async def cancel_device(self, target: Target) -> CallResult:
        """Every cached command of a device, by id: the ids come from a search for commands
        cached (state 1) and created before the job was submitted, so a repeat (a redelivered
        chunk) cancels nothing queued later, and the report lists exactly what was canceled.
        EnOS's own device-wide cancel (no commandId) would also cancel commands queued after
        our first try."""
        found = await self.cached_commands(target)
        if isinstance(found, CallResult):
            return found
        canceled: list[str] = []
        for command_id in found:
            if self._ctx.pace is not None:
                await self._ctx.pace()
            result = await self.cancel({**target, "command_id": command_id})
            if result.outcome is Outcome.CANCELED:
                canceled += result.extra.get("ids", [])
        if not canceled:
            return CallResult(Outcome.NOTHING_PENDING, http_status=200)
        return CallResult(
            Outcome.CANCELED, http_status=200, extra={"n": len(canceled), "ids": canceled}
        )

    async def cached_commands(self, target: Target) -> list[str] | CallResult:
        """Ids of the device's cached (state 1) commands: ``action=search``, every page."""
        if any("'" in target[column] for column, _ in DEVICE_PARAMS if column in target):
            return CallResult(Outcome.REJECTED, error_message="cannot search an id with a quote")
        conditions = [f"{name} = '{target[column]}'" for column, name in DEVICE_PARAMS
                      if column in target] + ["state = 1"]  # fmt: skip
        if self._ctx.job_created_ms is not None:
            conditions.append(f"createTime < {self._ctx.job_created_ms}")
        ids: list[str] = []
        async for page in self.search(conditions, SEARCH_PAGE):
            if isinstance(page, CallResult):
                return page
            ids += [str(c["commandId"]) for c in page if "commandId" in c]
        return ids

    async def stale(
        self, cutoff: float, command: str | None, page_size: int, devices: list[str] | None
    ) -> AsyncIterator[dict[str, str]]:
        """Cached (state 1) commands created before ``cutoff`` (epoch s), every search page."""
        conditions = ["state = 1", f"createTime < {int(cutoff * 1000)}"]
        if command:
            conditions.append(f"commandName = '{command}'")
        async for page in self.search(conditions, page_size):
            if isinstance(page, CallResult):
                raise UsageError(f"EnOS search refused: {page.error_code} {page.error_message}")
            for found in page:
                if not devices or found.get("assetId") in devices:
                    yield {"asset_id": str(found["assetId"]), "command_id": str(found["commandId"])}

    async def search(
        self, conditions: list[str], page_size: int
    ) -> AsyncIterator[list[dict[str, Any]] | CallResult]:
        """``action=search`` pages (commands as dicts) until one is short; an error answer is
        yielded as its ``CallResult`` and ends the search. Each page after the first is paced."""
        params = {"action": "search", "orgId": self._ctx.org}
        for page in range(1, MAX_SEARCH_PAGES + 1):
            if page > 1 and self._ctx.pace is not None:
                await self._ctx.pace()
            body = json.dumps(
                {"expression": " and ".join(conditions),
                 "pagination": {"pageNo": page, "pageSize": page_size}},
                separators=(",", ":"),
            ).encode()  # fmt: skip
            data = await self._call("POST", params, body)
            if isinstance(data, CallResult):
                yield data
                return
            if not isinstance(data, list):
                raise Misconfigured(f"EnOS search answered data={data!r}, expected a list")
            yield [c for c in data if isinstance(c, dict)]
            if len(data) < page_size:
                return
        raise Misconfigured(f"EnOS search: more than {MAX_SEARCH_PAGES} pages")

    async def read(self, target: Target) -> CallResult:
        """``action=get`` by command id; the command's ``state`` through states.ENOS."""
        if "command_id" not in target:
            return CallResult(Outcome.INVALID, error_message="polling EnOS needs command_id")
        params = {"action": "get", "orgId": self._ctx.org, "commandId": target["command_id"]}
        data = await self._call("GET", params)
        if isinstance(data, CallResult):
            return data
        if not isinstance(data, dict) or not isinstance(data.get("state"), int):
            raise Misconfigured(f"EnOS get answered data={data!r}, expected a command")
        state = data["state"]
        status = f"{state} {states.ENOS_NAMES.get(state, 'unknown')}"
        cls = states.ENOS.get(state, states.StateClass.PENDING)
        return CallResult(Outcome(cls.value), http_status=200, extra={"status": status})

    async def _call(self, method: str, params: dict[str, str], body: bytes | None = None) -> Any:
        """One signed call; on 1203 (token expired) a new token and exactly one more try."""
        for fresh in (False, True):
            token = await self._tokens.get(refresh=fresh)
            headers = signed_headers(token, self._keys, params, body)
            url = url_with_query(f"{self._ctx.base_url}{SERVICE}", params)
            resp = await exchange(
                self._ctx.session,
                method,
                url,
                headers=headers,
                timeout=self._ctx.timeout,
                data=body,
            )
            try:
                return answer_data(resp)
            except TokenExpired as exc:
                if fresh:
                    raise Unauthorized(
                        f"EnOS token expired again right after renewal: {exc.message}",
                        http_status=exc.http_status,
                        error_code=exc.error_code,
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover


def answer_data(resp: Response) -> Any:
    """``data`` of a ``code`` 0 answer. An error answer is settled through the error table:
    a per-target verdict comes back as a ``CallResult``, everything else is raised."""
    body = resp.json()
    code = body.get("code", body.get("status")) if isinstance(body, dict) else None
    has_envelope = isinstance(code, int)
    if resp.status == 200 and code == 0:
        return body.get("data")
    if resp.status == 200 and not has_envelope:
        raise Misconfigured(f"HTTP 200 is not an EnOS answer: {resp.snippet()!r}", http_status=200)
    message = str(body.get("msg") or "") if isinstance(body, dict) else ""
    disposition = classify(ENOS, resp.status, code if has_envelope else None, has_envelope)
    return settle(
        disposition,
        http_status=resp.status,
        code=code if has_envelope else None,
        message=message or f"HTTP {resp.status}: {resp.snippet()!r}",
        retry_after=resp.retry_after,
    )
