"""What Applivery's Apple, Android and Windows families share: auth, envelope, error mapping.

Every Applivery answer is ``{"status": true, "data": ...}`` on success and
``{"status": false, "error": {"code": N, "message": "..."}}`` on error. Anything else (an HTML
page, a proxy's bare 404, a 200 that is not this envelope) is not Applivery speaking: the base URL
or the network is wrong, and the job pauses ``misconfigured``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


class AppliveryBase:
    """Shared spec parts; subclasses set ``name``, ``columns`` and ``path``."""

    vendor = APPLIVERY
    org_pattern: IdPattern = APPLIVERY_ORG
    extra_columns: Sequence[str] = ()
    columns: Sequence[Column] = ()

    def base_url(self, settings: Any) -> str | None:
        return str(settings.applivery_url)

    def header_problem(self, header: Sequence[str]) -> str | None:
        return missing_header(self.columns, header)

    def validate(self, row: Mapping[str, str | None]) -> Target:
        return validate_columns(self.columns, row)

    def report_extra(self, extra: Mapping[str, Any]) -> list[str]:
        return []


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
