"""The provider contract: what the engine knows of a vendor API, and nothing more.

A provider family has two halves:

* a ``ProviderSpec`` (pure, no I/O): its name, its vendor (the rate-limit tenant is
  ``(vendor, org)``), the input columns, how a row is validated, the dedup key, report columns;
* a ``Provider`` made per piece of work from a ``ProviderContext`` (the process's vendor transport,
  the org, its credential): ``cancel`` and ``read`` return a ``CallResult`` or raise one of the
  ``CallError`` classes of ``countermand.errors``; a ``Discovery`` (stale cleanup) yields the
  stale commands of an org.

Every request a provider makes goes through the ``Call`` it is handed (``countermand.calls``):
one limiter token per request, the retry policy, 429s shared with every worker. Providers
never pace, retry or send around it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from countermand.credentials import Credential
from countermand.errors import JobStop, Retry, TokenExpired, TransientError, Verdict
from countermand.ids import IdPattern
from countermand.models import Outcome
from countermand.providers.transport import Timeouts, Transport

T = TypeVar("T")
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
    # A read: the vendor's own timestamp of the command's current state, as written (Apple
    # ``canceledAt``, Android ``updatedAt``); None when the vendor gives none (EnOS).
    state_time: str | None = None


class Call(Protocol):
    """The one call path, as a provider sees it (``countermand.calls.TargetCalls``)."""

    uncertain_tries: int  # tries that may have been applied without a definite answer

    async def __call__(self, send: Callable[[], Awaitable[T]], *, kind: str = "cancel") -> T:
        """Send one request; ``kind`` (``cancel``, ``read``, ``list`` for pages, searches and
        device lists) labels it in the metrics."""


@dataclass(slots=True)
class ProviderContext:
    transport: Transport  # the process's vendor connections
    org: str
    base_url: str
    credential: Credential
    timeout: Timeouts
    token_margin: float = 300.0  # renew cached tokens this many seconds before they expire
    shared: dict[Any, Any] = field(default_factory=dict)  # per-process caches (EnOS tokens)
    # When the job was submitted (epoch ms): a device-wide EnOS cancel only cancels commands
    # created before it, so a repeat never reaches commands queued later.
    job_created_ms: int | None = None
    max_answer_bytes: int = 8 * 1024 * 1024  # answers larger than this are not read


class Provider(Protocol):
    async def cancel(self, target: Target, call: Call) -> CallResult:
        """Cancel the target's command (or commands)."""

    async def read(self, target: Target, call: Call) -> CallResult:
        """The command's current state: outcome ``pending``, ``done``, ``canceled`` or
        ``errored`` (countermand.states), the vendor's status string in ``extra["status"]``."""


@dataclass(frozen=True, slots=True)
class StaleQuery:
    """What a cleanup policy looks for."""

    cutoff: float  # epoch seconds: commands created before this are stale
    command: str | None  # only commands of this name (EnOS), type (Android), requestType (Apple)
    page_size: int
    devices: Sequence[str] | None  # only these devices; None: every device of the org


@runtime_checkable
class Discovery(Protocol):
    def stale(self, query: StaleQuery, call: Call) -> AsyncIterator[dict[str, str]]:
        """Input rows (the provider's columns) of every stale pending command, streamed."""


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
    can_discover: bool  # True: make() returns a Discovery too (stale cleanup)

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


def settle(
    found: Verdict,
    *,
    http_status: int,
    code: int | None,
    message: str,
    retry_after: float | None = None,
) -> CallResult:
    """Carry out a verdict of ``errors.verdict``: a per-target result is returned; a retry or a
    job-wide stop is raised for the call path and the engine."""
    error_code = None if code is None else str(code)
    if isinstance(found, Outcome):
        return CallResult(found, http_status, error_code, message)
    if isinstance(found, Retry):
        kind = TokenExpired if found.token else TransientError
        raise kind(
            message,
            http_status=http_status,
            error_code=error_code,
            retry_after=retry_after,
            uncertain=found.uncertain,
            throttled=found.throttled,
        )
    assert issubclass(found, JobStop)
    raise found(message, http_status=http_status, error_code=error_code)
