"""The provider contract: what the engine knows of a vendor API, and nothing more.

A provider family has two halves:

* a ``ProviderSpec`` (pure, no I/O): its name, its vendor (the rate-limit tenant is
  ``(vendor, org)``), the input columns, how a row is validated, the dedup key, report columns;
* a ``Provider`` made per chunk from a ``ProviderContext`` (the process's HTTP session, the
  org, its credential): ``cancel`` sends one call and returns a ``CallResult`` or raises one of
  the ``CallError`` classes of ``countermand.errors``. Providers do not retry and do not rate
  limit: the engine does both, the same way for every vendor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from countermand.credentials import Credential
from countermand.errors import (
    Disposition,
    JobStop,
    Misconfigured,
    PlanNotAllowed,
    TokenExpired,
    TransientError,
    Unauthorized,
)
from countermand.ids import IdPattern
from countermand.models import Outcome

Target = Mapping[str, str]  # validated input values by column name, defaults filled in


class InvalidRow(Exception):
    """A row that must not be sent; the message is the ``invalid`` outcome's reason."""


@dataclass(slots=True)
class CallResult:
    outcome: Outcome
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ProviderContext:
    session: aiohttp.ClientSession
    org: str
    base_url: str
    credential: Credential
    timeout: aiohttp.ClientTimeout
    token_margin: float = 300.0  # renew cached tokens this many seconds before they expire
    shared: dict[Any, Any] = field(default_factory=dict)  # per-process caches (EnOS tokens)
    # Waits for the tenant's next slot: a provider that needs more than one request for one
    # target (EnOS device-wide cancel) awaits it before each request after the first.
    pace: Callable[[], Awaitable[None]] | None = None
    # When the job was submitted (epoch ms): a device-wide EnOS cancel only cancels commands
    # created before it, so a repeat never reaches commands queued later.
    job_created_ms: int | None = None


class Provider(Protocol):
    async def cancel(self, target: Target) -> CallResult:
        """Cancel the target's command (or commands)."""

    async def read(self, target: Target) -> CallResult:
        """The command's current state: outcome ``pending``, ``done``, ``canceled`` or
        ``errored`` (countermand.states), the vendor's status string in ``extra["status"]``."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    pattern: IdPattern | None = None
    required: bool = True
    default: str | None = None


class ProviderSpec(Protocol):
    name: str  # CLI name, e.g. "applivery-apple"
    vendor: str  # rate-limit tenant family: "applivery" or "enos"
    columns: Sequence[Column]  # input columns, in report order
    org_pattern: IdPattern
    extra_columns: Sequence[str]  # provider-specific report columns, after the fixed ones
    can_cancel: bool  # False: poll only (Applivery Windows has no cancel endpoint)

    def header_problem(self, header: Sequence[str]) -> str | None:
        """Why a file with this header cannot be read (a usage error), or None."""

    def validate(self, row: Mapping[str, str | None]) -> Target:
        """The validated target, or ``InvalidRow`` with the reason."""

    def key(self, target: Target) -> str:
        """Identity of the call a target makes: two rows with one key are duplicates."""

    def report_extra(self, extra: Mapping[str, Any]) -> list[str]:
        """Values of ``extra_columns`` from a stored result's ``extra``."""

    def base_url(self, settings: Any) -> str | None:
        """The API origin from settings (None when not configured)."""

    def make(self, context: ProviderContext) -> Provider: ...


def validate_columns(columns: Sequence[Column], row: Mapping[str, str | None]) -> dict[str, str]:
    """Shared row check: required cells present, every id fully matching its pattern."""
    target: dict[str, str] = {}
    for column in columns:
        value = row.get(column.name)
        if value is None or value == "":
            if column.required:
                raise InvalidRow(f"missing {column.name}")
            if column.default is None:
                continue
            value = column.default
        if column.pattern is not None and (problem := column.pattern.check(value)):
            raise InvalidRow(f"{column.name}: {problem}")
        target[column.name] = value
    return target


def missing_header(columns: Sequence[Column], header: Sequence[str]) -> str | None:
    missing = [c.name for c in columns if c.required and c.name not in header]
    return f"header lacks required column(s): {', '.join(missing)}" if missing else None


_RESULT_OUTCOMES = {
    Disposition.NOT_PENDING: Outcome.NOT_PENDING,
    Disposition.NOT_FOUND: Outcome.NOT_FOUND,
    Disposition.REJECTED: Outcome.REJECTED,
}
_STOPS: dict[Disposition, type[JobStop]] = {
    Disposition.UNAUTHORIZED: Unauthorized,
    Disposition.MISCONFIGURED: Misconfigured,
    Disposition.PLAN_NOT_ALLOWED: PlanNotAllowed,
}


def settle(
    disposition: Disposition,
    *,
    http_status: int,
    code: int | None,
    message: str,
    retry_after: float | None = None,
) -> CallResult:
    """Turn a classified error answer into a target result, or raise what the engine handles."""
    error_code = None if code is None else str(code)
    if disposition in _RESULT_OUTCOMES:
        return CallResult(_RESULT_OUTCOMES[disposition], http_status, error_code, message)
    if disposition in _STOPS:
        raise _STOPS[disposition](message, http_status=http_status, error_code=error_code)
    if disposition is Disposition.TOKEN_EXPIRED:
        raise TokenExpired(message, http_status=http_status, error_code=error_code)
    raise TransientError(
        message, http_status=http_status, error_code=error_code, retry_after=retry_after
    )
