"""What Applivery's Apple, Android and Windows families share: auth, envelope, error mapping,
pages, and device-list discovery.

Every Applivery answer is ``{"status": true, "data": ...}`` on success and
``{"status": false, "error": {"code": N, "message": "..."}}`` on error. A 2xx that is not this
envelope is either a web page (the base URL is wrong: the job pauses ``misconfigured``) or a
malformed or unexpected answer (retried; for a cancel, uncertain: ``http.Response``); so is a
4xx whose JSON does not parse (its code is lost: ``Response.unreadable``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from countermand.credentials import AppliveryToken
from countermand.errors import APPLIVERY, Misconfigured, TransientError, UsageError, verdict
from countermand.ids import APPLIVERY_ORG, IdPattern, segment
from countermand.models import Outcome
from countermand.providers.base import (
    Call,
    CallResult,
    Column,
    ProviderContext,
    StaleQuery,
    Target,
    missing_header,
    settle,
    validate_columns,
)
from countermand.providers.http import Response, exchange
from countermand.states import StateClass
from countermand.states import classify as classify_state

MAX_PAGES = 10_000


class AppliveryBase:
    """Shared spec parts; subclasses set ``name``, ``columns`` and ``path``."""

    vendor = APPLIVERY
    org_pattern: IdPattern = APPLIVERY_ORG
    extra_columns: Sequence[str] = ("vendor_status", "verified")
    columns: Sequence[Column] = ()
    can_cancel = True
    can_discover = True

    def base_url(self, settings: Any) -> str | None:
        return str(settings.applivery_url)

    def header_problem(self, header: Sequence[str]) -> str | None:
        return missing_header(self.columns, header)

    def validate(self, row: Mapping[str, str | None]) -> Target:
        return validate_columns(self.columns, row)

    def report_extra(self, extra: Mapping[str, Any]) -> list[str]:
        return [str(extra.get("status") or ""), str(extra.get("verified") or "")]


class AppliveryClient:
    """One org's authenticated requests (each one is sent through a ``Call``)."""

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

    def url(self, *parts: str) -> str:
        """``{base}/v1/organizations/{org}/mdm/`` plus each part (ids URL-encoded by the caller)."""
        return "/".join((self._prefix, *parts))

    async def request(
        self, method: str, url: str, params: Mapping[str, str] | None = None
    ) -> Response:
        if params:
            url += "?" + "&".join(f"{k}={segment(v)}" for k, v in params.items())
        ctx = self._context
        return await exchange(
            ctx.transport,
            method,
            url,
            headers=self._headers,
            timeout=ctx.timeout,
            max_bytes=ctx.max_answer_bytes,
        )


def success_data(resp: Response) -> Any:
    """``data`` of a 2xx answer in the envelope; otherwise what ``not_the_vendor`` says."""
    body = resp.json()
    if isinstance(body, dict) and body.get("status") is True:
        return body.get("data")
    raise resp.not_the_vendor("Applivery")


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
    found = verdict(APPLIVERY, resp.status, code, has_envelope)
    unreadable = resp.unreadable("Applivery", found)
    if unreadable is not None:
        raise unreadable
    return settle(
        found,
        http_status=resp.status,
        code=code,
        message=message,
        retry_after=resp.retry_after,
    )


async def cancel_call(
    client: AppliveryClient, call: Call, url: str, success: Outcome
) -> CallResult:
    """POST a cancel; 2xx in the envelope is ``success``, errors map through the table."""

    async def send() -> CallResult:
        resp = await client.request("POST", url)
        if not 200 <= resp.status < 300:
            return error_result(resp)
        success_data(resp)
        return CallResult(success, http_status=resp.status)

    return await call(send, kind="cancel")


async def read_call(
    client: AppliveryClient,
    call: Call,
    url: str,
    table: dict[str, StateClass],
    time_field: Callable[[str], str],
) -> CallResult:
    """GET one command; its ``status`` through the state table, and the vendor's timestamp of
    that state (``time_field(status class)`` names the field); 404/3001 is ``not_found``."""

    async def send() -> CallResult:
        resp = await client.request("GET", url)
        if not 200 <= resp.status < 300:
            return error_result(resp)
        data = success_data(resp)
        if not isinstance(data, dict):
            raise TransientError(f"{url}: read answered data={data!r}", http_status=resp.status)
        status = str(data.get("status") or "")
        cls = classify_state(table, status)
        stamp = data.get(time_field(cls.value))
        return CallResult(
            Outcome(cls.value),
            resp.status,
            extra={"status": status},
            state_time=stamp if isinstance(stamp, str) else None,
        )

    return await call(send, kind="read")


class ListError(Exception):
    """A list page answered with a per-target verdict (e.g. 3001: the device has no list)."""

    def __init__(self, result: CallResult) -> None:
        super().__init__(result.error_message)
        self.result = result


async def pages(
    client: AppliveryClient, call: Call, url: str, limit: int = 100
) -> AsyncIterator[list[Any]]:
    """The items of a paginated Applivery list, page by page (from 1, each page one request):
    stop by ``hasNextPage`` where present, else by ``totalDocs`` (the Windows actions page has
    only ``items`` and ``totalDocs``). A per-target verdict is raised as ``ListError``."""
    seen = 0
    for page in range(1, MAX_PAGES + 1):

        async def send(page: int = page) -> tuple[list[Any], Any, Any]:
            resp = await client.request("GET", url, {"page": str(page), "limit": str(limit)})
            if not 200 <= resp.status < 300:
                raise ListError(error_result(resp))
            data = success_data(resp)
            batch = data.get("items") if isinstance(data, dict) else None
            if not isinstance(batch, list):
                raise TransientError(f"{url}: page {page} has no items list", http_status=200)
            return batch, data.get("hasNextPage"), data.get("totalDocs")

        batch, more, total = await call(send, kind="list")
        seen += len(batch)
        yield batch
        if more is False or not batch or (more is None and isinstance(total, int)
                                          and seen >= total):  # fmt: skip
            return
    raise Misconfigured(f"{url}: more than {MAX_PAGES} pages")


async def all_pages(client: AppliveryClient, call: Call, url: str, limit: int = 100) -> list[Any]:
    return [item async for batch in pages(client, call, url, limit) for item in batch]


async def stale_commands(
    client: AppliveryClient,
    call: Call,
    family: str,
    command_list: Callable[[str], str],
    is_stale: Callable[[Mapping[str, Any]], bool],
    query: StaleQuery,
) -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
    """(device id, command) of every stale command, streamed: the devices given, or every
    device of the org (``/mdm/{family}/enterprise/devices``, page by page), then each device's
    command list."""
    async for device in _devices(client, call, family, query):
        try:
            async for batch in pages(client, call, command_list(device), query.page_size):
                for item in batch:
                    if isinstance(item, dict) and is_stale(item):
                        yield device, item
        except ListError:
            continue  # a device that vanished since it was listed


async def _devices(
    client: AppliveryClient, call: Call, family: str, query: StaleQuery
) -> AsyncIterator[str]:
    if query.devices is not None:
        for device in query.devices:
            yield device
        return
    url = client.url(family, "enterprise/devices")
    async for batch in pages(client, call, url, query.page_size):
        for item in batch:
            if isinstance(item, dict) and item.get("id"):
                yield str(item["id"])
