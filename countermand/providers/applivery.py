"""What Applivery's Apple, Android and Windows families share: auth, envelope, error mapping.

Every Applivery answer is ``{"status": true, "data": ...}`` on success and
``{"status": false, "error": {"code": N, "message": "..."}}`` on error. Anything else (an HTML
page, a proxy's bare 404, a 200 that is not this envelope) is not Applivery speaking: the base URL
or the network is wrong, and the job pauses ``misconfigured``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from countermand.credentials import AppliveryToken
from countermand.errors import APPLIVERY, Misconfigured, UsageError, classify
from countermand.ids import APPLIVERY_ORG, IdPattern, segment
from countermand.models import Outcome
from countermand.providers.base import (
    CallResult,
    Column,
    ProviderContext,
    Target,
    missing_header,
    settle,
    validate_columns,
)
from countermand.providers.http import Response, exchange
from countermand.states import StateClass
from countermand.states import classify as classify_state


class AppliveryBase:
    """Shared spec parts; subclasses set ``name``, ``columns`` and ``path``."""

    vendor = APPLIVERY
    org_pattern: IdPattern = APPLIVERY_ORG
    extra_columns: Sequence[str] = ("vendor_status", "verified")
    columns: Sequence[Column] = ()
    can_cancel = True

    def base_url(self, settings: Any) -> str | None:
        return str(settings.applivery_url)

    def header_problem(self, header: Sequence[str]) -> str | None:
        return missing_header(self.columns, header)

    def validate(self, row: Mapping[str, str | None]) -> Target:
        return validate_columns(self.columns, row)

    def report_extra(self, extra: Mapping[str, Any]) -> list[str]:
        return [str(extra.get("status") or ""), str(extra.get("verified") or "")]


class AppliveryClient:
    """One org's authenticated calls."""

    def __init__(self, context: ProviderContext) -> None:
        credential = context.credential
        if not isinstance(credential, AppliveryToken):
            raise UsageError("Applivery providers need an Applivery token")
        self._context = context
        self._headers = {
            "Authorization": f"Bearer {credential.token.get_secret_value()}",
            "Accept": "application/json",
        }
        self._prefix = f"{context.base_url}/v1/organizations/{segment(context.org)}/mdm"
        self.pace = context.pace

    def url(self, *parts: str) -> str:
        """``{base}/v1/organizations/{org}/mdm/`` plus each part (ids URL-encoded by the caller)."""
        return "/".join((self._prefix, *parts))

    async def post(self, url: str) -> Response:
        ctx = self._context
        return await exchange(ctx.session, "POST", url, headers=self._headers, timeout=ctx.timeout)

    async def get(self, url: str, params: Mapping[str, str] | None = None) -> Response:
        if params:
            url += "?" + "&".join(f"{k}={segment(v)}" for k, v in params.items())
        ctx = self._context
        return await exchange(ctx.session, "GET", url, headers=self._headers, timeout=ctx.timeout)


def success_data(resp: Response) -> Any:
    """``data`` of a 2xx answer; a 2xx that is not Applivery's envelope is a misconfiguration."""
    body = resp.json()
    if isinstance(body, dict) and body.get("status") is True:
        return body.get("data")
    raise Misconfigured(
        f"HTTP {resp.status} is not an Applivery answer: {resp.snippet()!r}",
        http_status=resp.status,
    )


def error_result(resp: Response) -> CallResult:
    """Settle an error answer through the one table (returns a result or raises)."""
    body = resp.json()
    error = body.get("error") if isinstance(body, dict) else None
    has_envelope = isinstance(error, dict) and body.get("status") is False
    code: int | None = None
    message = f"HTTP {resp.status}: {resp.snippet()!r}"
    if has_envelope and isinstance(error, dict):
        raw_code = error.get("code")
        code = raw_code if isinstance(raw_code, int) else None
        message = str(error.get("message") or message)
    disposition = classify(APPLIVERY, resp.status, code, has_envelope)
    return settle(
        disposition,
        http_status=resp.status,
        code=code,
        message=message,
        retry_after=resp.retry_after,
    )


async def cancel_call(client: AppliveryClient, url: str, success: Outcome) -> CallResult:
    """POST a cancel; 2xx in the envelope is ``success``, errors map through the table."""
    resp = await client.post(url)
    if not 200 <= resp.status < 300:
        return error_result(resp)
    success_data(resp)
    return CallResult(success, http_status=resp.status)


async def read_call(client: AppliveryClient, url: str, table: dict[str, StateClass]) -> CallResult:
    """GET one command; its ``status`` through the state table; 404/3001 is ``not_found``."""
    resp = await client.get(url)
    if not 200 <= resp.status < 300:
        return error_result(resp)
    data = success_data(resp)
    status = str(data.get("status") or "") if isinstance(data, dict) else ""
    extra: dict[str, Any] = {"status": status}
    return CallResult(Outcome(classify_state(table, status).value), resp.status, extra=extra)


async def all_pages(
    client: AppliveryClient,
    url: str,
    limit: int = 100,
    max_pages: int = 10_000,
    pace: Callable[[], Awaitable[None]] | None = None,
) -> list[Any]:
    """Every item of a paginated Applivery list: page from 1, stop by ``hasNextPage`` where
    present, else by ``totalDocs`` (the Windows actions page has only ``items`` and
    ``totalDocs``). Errors are raised as the error table says (a per-target verdict as
    ``ListError``)."""
    items: list[Any] = []
    for page in range(1, max_pages + 1):
        if pace is not None and page > 1:
            await pace()
        resp = await client.get(url, {"page": str(page), "limit": str(limit)})
        if not 200 <= resp.status < 300:
            raise ListError(error_result(resp))
        data = success_data(resp)
        batch = data.get("items") if isinstance(data, dict) else None
        if not isinstance(batch, list):
            raise Misconfigured(f"{url}: page {page} has no items list", http_status=resp.status)
        items += batch
        more = data.get("hasNextPage")
        total = data.get("totalDocs")
        if more is False or not batch or (more is None and isinstance(total, int)
                                          and len(items) >= total):  # fmt: skip
            return items
    raise Misconfigured(f"{url}: more than {max_pages} pages")


class ListError(Exception):
    def __init__(self, result: CallResult) -> None:
        super().__init__(result.error_message)
        self.result = result


async def stale_commands(
    client: AppliveryClient,
    family: str,
    command_list: Callable[[str], str],
    is_stale: Callable[[Mapping[str, Any]], bool],
    page_size: int,
    devices: list[str] | None,
) -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
    """(device id, command) of every stale command: the devices given, or every device of the
    org (``/mdm/{family}/enterprise/devices``, all pages), then each device's command list."""
    pace = client.pace
    if devices is None:
        listed = await all_pages(client, client.url(family, "enterprise/devices"), page_size,
                                 pace=pace)  # fmt: skip
        devices = [str(d.get("id")) for d in listed if isinstance(d, dict) and d.get("id")]
    for device in devices:
        if pace is not None:
            await pace()
        try:
            items = await all_pages(client, command_list(device), page_size, pace=pace)
        except ListError:
            continue  # a device that vanished since it was listed
        for item in items:
            if isinstance(item, dict) and is_stale(item):
                yield device, item
