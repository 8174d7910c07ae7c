"""Errors, and the one table that maps vendor answers to what Countermand does with them.

Hierarchy::

    CountermandError
    ├── UsageError               bad input or a forbidden action: CLI exit 2
    │   └── InputError           a bad input file: says file, line and field
    ├── StoreUnavailable         Redis cannot be reached: CLI exit 3
    ├── LeaseLost                this process no longer owns the chunk: stop sending
    └── CallError                one API call went wrong (raised by providers)
        ├── TransientError       retry with backoff; when retries run out: outcome ``failed``
        │   ├── UnreachableError could not connect at all; if every try was this: job pauses
        │   │                    ``misconfigured``
        │   └── TokenExpired     EnOS 1203: new token, one more try
        └── JobStop              stop the whole job, never a per-target outcome
            ├── Unauthorized     pause, reason ``unauthorized``
            ├── Misconfigured    pause, reason ``misconfigured``
            └── PlanNotAllowed   abort, reason ``plan_not_allowed``

Per-target errors that retrying cannot fix (``not_pending``, ``not_found``, ``rejected``) are not
exceptions: providers return them as results. ``classify`` below is the single place that decides
which of these a vendor answer is; a unit test fails when a code the simulator can send is missing.
"""

from __future__ import annotations

from enum import StrEnum

from countermand.models import JobStatus, StopReason


class CountermandError(Exception):
    """Base of every error Countermand raises on purpose."""


class UsageError(CountermandError):
    """The request cannot be carried out as asked (CLI exit code 2)."""


class InputError(UsageError):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


class StoreUnavailable(CountermandError):
    """Redis did not answer (CLI exit code 3)."""


class LeaseLost(CountermandError):
    """Another owner holds the chunk now (this one stalled past its lease)."""


class CallError(CountermandError):
    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.error_code = error_code


class TransientError(CallError):
    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        error_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, error_code=error_code)
        self.retry_after = retry_after


class UnreachableError(TransientError):
    """The connection could not be made (refused, DNS, TLS): nothing reached the vendor."""


class TokenExpired(TransientError):
    """EnOS 1203: the provider fetches a new token and retries once before giving up."""


class JobStop(CallError):
    status: JobStatus = JobStatus.PAUSED
    reason: StopReason


class Unauthorized(JobStop):
    reason = StopReason.UNAUTHORIZED


class Misconfigured(JobStop):
    reason = StopReason.MISCONFIGURED


class PlanNotAllowed(JobStop):
    status = JobStatus.ABORTED
    reason = StopReason.PLAN_NOT_ALLOWED


class Disposition(StrEnum):
    """What an error answer means for the target or the job."""

    NOT_PENDING = "not_pending"
    NOT_FOUND = "not_found"
    REJECTED = "rejected"
    TRANSIENT = "transient"
    TOKEN_EXPIRED = "token_expired"  # EnOS 1203: fetch a new token and retry once
    UNAUTHORIZED = "unauthorized"
    MISCONFIGURED = "misconfigured"
    PLAN_NOT_ALLOWED = "plan_not_allowed"


APPLIVERY = "applivery"
ENOS = "enos"

# The one table: (vendor, vendor error code) -> disposition. Sources: ../shared/apis/.
VENDOR_CODES: dict[tuple[str, int], Disposition] = {
    (APPLIVERY, 5106): Disposition.NOT_PENDING,  # not pending or retrying any more
    (APPLIVERY, 3001): Disposition.NOT_FOUND,  # entity not found
    # Not in the reference pages: the bundled simulator's answer to a path id that fails its
    # pattern. Countermand validates ids before sending, so this only means a stricter server.
    (APPLIVERY, 3002): Disposition.REJECTED,
    (APPLIVERY, 5050): Disposition.PLAN_NOT_ALLOWED,  # billing plan lacks the feature
    (APPLIVERY, 4002): Disposition.UNAUTHORIZED,  # no auth token
    (APPLIVERY, 4004): Disposition.UNAUTHORIZED,  # invalid token
    (ENOS, 1001): Disposition.TRANSIENT,  # duplicated encryption: a replayed timestamp, re-sign
    (ENOS, 1002): Disposition.UNAUTHORIZED,  # unknown appKey
    (ENOS, 1003): Disposition.UNAUTHORIZED,  # invalid encryption (wrong secret)
    (ENOS, 1004): Disposition.REJECTED,  # invalid parameter
    (ENOS, 1005): Disposition.TRANSIENT,  # gateway internal error
    (ENOS, 1202): Disposition.REJECTED,  # empty parameter
    (ENOS, 1203): Disposition.TOKEN_EXPIRED,  # access token expired
    (ENOS, 1204): Disposition.UNAUTHORIZED,  # token refresh failed
    # Not in the EnOS reference pages: the code the bundled simulator (and, as far as we know,
    # connect-service) sends for an asset or device that does not exist. Kept tolerant: any
    # other non-zero EnOS code is ``rejected`` with its message.
    (ENOS, 11404): Disposition.NOT_FOUND,
}

TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


def classify(vendor: str, http_status: int, code: int | None, has_envelope: bool) -> Disposition:
    """Decide what an error answer means.

    A known vendor code wins. Without one: 401/403 are bad credentials; 408, 425, 429 and 5xx
    are transient; a 4xx in the vendor's envelope is a rejection (404: not found); a 4xx that is
    not in the vendor's envelope (an HTML page, a proxy's 404) means the base URL or the network
    is wrong, so the job pauses instead of marking targets.
    """
    if code is not None and (vendor, code) in VENDOR_CODES:
        return VENDOR_CODES[(vendor, code)]
    if http_status in (401, 403):
        return Disposition.UNAUTHORIZED
    if http_status in TRANSIENT_HTTP or http_status >= 500:
        return Disposition.TRANSIENT
    if not has_envelope:
        return Disposition.MISCONFIGURED
    if http_status == 404:
        return Disposition.NOT_FOUND
    return Disposition.REJECTED
