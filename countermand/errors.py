"""Errors, and the one table that maps vendor answers to what Countermand does with them.

Hierarchy::

    CountermandError
    ├── UsageError               bad input or a forbidden action: CLI exit 2, HTTP 422
    │   ├── InputError           a bad input file: says file, line and field
    │   └── StatusConflict       an action the job's status refuses: CLI exit 2, HTTP 409
    ├── JobNotFound              no such job (never submitted, purged, expired): CLI exit 2,
    │                            HTTP 404
    ├── StoreUnavailable         Redis cannot be reached: CLI exit 3
    ├── LeaseLost                this process no longer owns the chunk: stop sending
    ├── Stopped                  the job stopped (pause, abort): start no new request
    └── CallError                one API call went wrong (raised by providers)
        ├── TransientError       retry with backoff; when retries run out: outcome ``failed``.
        │   │                    ``uncertain``: the vendor may have applied the call (timeout,
        │   │                    connection lost after sending, 5xx, malformed answer);
        │   │                    ``throttled``: a 429 (HTTP or EnOS envelope code)
        │   ├── UnreachableError could not connect at all; if every try was this: job pauses
        │   │                    ``misconfigured``
        │   └── TokenExpired     EnOS 1203: new token, one more try
        └── JobStop              stop the whole job, never a per-target outcome
            ├── Unauthorized     pause, reason ``unauthorized``
            ├── Misconfigured    pause, reason ``misconfigured``
            └── PlanNotAllowed   abort, reason ``plan_not_allowed``

Per-target answers that retrying cannot change (``not_pending``, ``not_found``, ``rejected``)
are not exceptions: providers return them as results. ``verdict`` below is the one step from a
vendor answer (vendor, HTTP status, envelope code) to an outcome, a retry or a stop; a unit
test fails when a code the simulator can send has no entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from countermand.models import JobStatus, Outcome, StopReason


class CountermandError(Exception):
    """Base of every error Countermand raises on purpose."""


class UsageError(CountermandError):
    """The request cannot be carried out as asked (CLI exit code 2)."""


class InputError(UsageError):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


class StatusConflict(UsageError):
    """The job's status does not allow the action (pause a completed job, purge a running one)."""


class PolicyNotFound(UsageError):
    """No such stale-cleanup policy in the policies file (CLI exit 2, HTTP 404)."""


class JobNotFound(CountermandError):
    """No job with this id: never submitted, purged, or expired (CLI exit 2, HTTP 404)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"unknown job {job_id!r} (never submitted, purged or expired)")
        self.job_id = job_id


class StoreUnavailable(CountermandError):
    """Redis did not answer (CLI exit code 3)."""


class LeaseLost(CountermandError):
    """Another owner holds the chunk now (this one stalled past its lease)."""


class Stopped(CountermandError):
    """The job stopped (paused, aborted, lease lost): start no new request."""


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
        uncertain: bool = True,
        throttled: bool = False,
    ) -> None:
        super().__init__(message, http_status=http_status, error_code=error_code)
        self.retry_after = retry_after
        self.uncertain = uncertain and not throttled  # the vendor may have applied the call
        self.throttled = throttled  # a 429: the tenant's hold or rate, not the target's


class UnreachableError(TransientError):
    """The connection could not be made (refused, DNS, TLS): nothing reached the vendor."""

    def __init__(self, message: str) -> None:
        super().__init__(message, uncertain=False)


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


@dataclass(frozen=True, slots=True)
class Retry:
    """A verdict: try again. ``uncertain``: the call may have been applied (resolve a later
    "too late" by a read); ``throttled``: a 429; ``token``: EnOS 1203."""

    uncertain: bool
    throttled: bool = False
    token: bool = False


RETRY_UNCERTAIN = Retry(uncertain=True)
RETRY_REFUSED = Retry(uncertain=False)  # the vendor refused before doing anything
THROTTLED = Retry(uncertain=False, throttled=True)
TOKEN = Retry(uncertain=False, token=True)

Verdict = Outcome | type[JobStop] | Retry

APPLIVERY = "applivery"
ENOS = "enos"

# The one table: (vendor, envelope code) -> verdict. Sources: ../shared/apis/README.md.
VENDOR_CODES: dict[tuple[str, int], Verdict] = {
    (APPLIVERY, 5106): Outcome.NOT_PENDING,  # not pending or retrying any more
    (APPLIVERY, 3001): Outcome.NOT_FOUND,  # entity not found
    # Not in the reference pages: the bundled simulator's answer to a path id that fails its
    # pattern. Countermand validates ids before sending, so this only means a stricter server.
    (APPLIVERY, 3002): Outcome.REJECTED,
    (APPLIVERY, 5050): PlanNotAllowed,  # billing plan lacks the feature
    (APPLIVERY, 4002): Unauthorized,  # no auth token
    (APPLIVERY, 4004): Unauthorized,  # invalid token
    (ENOS, 1001): RETRY_REFUSED,  # duplicated encryption: a replayed timestamp, re-sign
    (ENOS, 1002): Unauthorized,  # unknown appKey
    (ENOS, 1003): Unauthorized,  # invalid encryption (wrong secret)
    (ENOS, 1004): Outcome.REJECTED,  # invalid parameter
    (ENOS, 1005): RETRY_UNCERTAIN,  # gateway internal error
    (ENOS, 1202): Outcome.REJECTED,  # empty parameter
    (ENOS, 1203): TOKEN,  # access token expired
    (ENOS, 1204): Unauthorized,  # token refresh failed
    # The official SDK's envelope codes (the contract note): throttling as code 429 under HTTP
    # 200, timestamp/signature check (re-signed on the next try), permission denied, and the
    # HTTP-like ones.
    (ENOS, 429): THROTTLED,
    (ENOS, 497): RETRY_REFUSED,
    (ENOS, 498): Unauthorized,
    (ENOS, 400): Outcome.REJECTED,
    (ENOS, 401): Unauthorized,
    (ENOS, 403): Unauthorized,
    (ENOS, 404): Outcome.NOT_FOUND,
    (ENOS, 500): RETRY_UNCERTAIN,
    (ENOS, 503): RETRY_UNCERTAIN,
    (ENOS, 504): RETRY_UNCERTAIN,
    # Not in the EnOS reference pages: the code the bundled simulator (and, as far as we know,
    # connect-service) sends for an asset or command that does not exist. Kept tolerant: any
    # other non-zero EnOS code is ``rejected`` with its message.
    (ENOS, 11404): Outcome.NOT_FOUND,
}

# HTTP statuses that name one target's request, not the base URL (an over-long URL or header):
# without the vendor's envelope they are that target's ``rejected``, never a job-wide pause.
TARGET_HTTP = frozenset({400, 413, 414, 431})


def verdict(vendor: str, http_status: int, code: int | None, has_envelope: bool) -> Verdict:
    """What an error answer means, in one step.

    A known vendor code wins. Without one: 401/403 are bad credentials; 429 is throttling; 408
    and 425 were refused before any work (retry); 5xx may have been applied (retry, uncertain);
    a redirect means the base URL is wrong; a 4xx in the vendor's envelope is a rejection (404:
    not found). Without the envelope, 400/413/414/431 concern this target's request
    (``rejected``), while any other 4xx (a proxy's or web server's 404) means the base URL or
    the network is wrong, so the job pauses instead of marking targets.
    """
    if code is not None and (vendor, code) in VENDOR_CODES:
        return VENDOR_CODES[(vendor, code)]
    if http_status in (401, 403):
        return Unauthorized
    if http_status == 429:
        return THROTTLED
    if http_status in (408, 425):
        return RETRY_REFUSED
    if http_status >= 500:
        return RETRY_UNCERTAIN
    if 300 <= http_status < 400:
        return Misconfigured
    if has_envelope:
        return Outcome.NOT_FOUND if http_status == 404 else Outcome.REJECTED
    return Outcome.REJECTED if http_status in TARGET_HTTP else Misconfigured
