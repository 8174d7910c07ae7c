"""The vocabulary: outcomes, job statuses, a target's stored result and a job's status object.

Outcome names and the status object's keys are a public contract (README, "Outcomes"): scripts
outside this repository parse them. Add to them; never rename.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class Outcome(StrEnum):
    """A target's final outcome. Each target ends with exactly one."""

    CANCELED = "canceled"
    CANCEL_REQUESTED = "cancel_requested"
    NOT_PENDING = "not_pending"
    NOTHING_PENDING = "nothing_pending"
    NOT_FOUND = "not_found"
    REJECTED = "rejected"
    FAILED = "failed"
    INVALID = "invalid"
    WOULD_CANCEL = "would_cancel"
    # Poll jobs (and verify): the command's current state class (countermand.states).
    PENDING = "pending"
    DONE = "done"
    ERRORED = "errored"


REMAINING = "remaining"  # report/status name of a target that has no final outcome yet

# One or two characters per outcome keep Redis small: a result is stored once per target.
OUTCOME_CODES: dict[Outcome, str] = {
    Outcome.CANCELED: "c",
    Outcome.CANCEL_REQUESTED: "r",
    Outcome.NOT_PENDING: "p",
    Outcome.NOTHING_PENDING: "e",
    Outcome.NOT_FOUND: "n",
    Outcome.REJECTED: "j",
    Outcome.FAILED: "f",
    Outcome.INVALID: "i",
    Outcome.WOULD_CANCEL: "w",
    Outcome.PENDING: "g",
    Outcome.DONE: "d",
    Outcome.ERRORED: "o",
}
CODE_OUTCOMES: dict[str, Outcome] = {code: outcome for outcome, code in OUTCOME_CODES.items()}
# Non-final markers: an attempt was started (the call may have reached the API), and a failed
# target queued again by ``retry`` (its earlier attempts are kept).
IN_FLIGHT = "~"
QUEUED = "q"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"


RUNNABLE = (JobStatus.QUEUED, JobStatus.RUNNING)


class Priority(StrEnum):
    """How a job shares its tenant's rate with the other jobs on it (README, "Priority and fair
    share"): ``urgent`` takes all but a floor kept for the others; ``normal`` and ``bulk`` share
    what is left 4:1; jobs of one priority share evenly."""

    URGENT = "urgent"
    NORMAL = "normal"
    BULK = "bulk"


# The order runners claim chunks in (lower first); also the Lua header's PRIORITY_RANK.
PRIORITY_RANK: dict[Priority, int] = {Priority.URGENT: 0, Priority.NORMAL: 1, Priority.BULK: 2}
# The shares (countermand/store/lua/limiter.lua): the floor an urgent job leaves to the other
# jobs of its tenant, and the part of the rest normal jobs take from bulk ones.
URGENT_FLOOR = 0.05
NORMAL_PART = 0.8


class LimitedBy(StrEnum):
    """What holds a running job below its own ``--rate`` (the status object's ``limited_by``)."""

    JOB_RATE = "job_rate"  # nothing but its own --rate: it runs at it
    TENANT_SHARE = "tenant_share"  # its share of the tenant's rate is lower
    IN_FLIGHT_CEILING = "in_flight_ceiling"  # the vendor's latency x its rate needs more in flight
    HOLD = "hold"  # the tenant is held after a 429 with Retry-After


class JobKind(StrEnum):
    """What a job does to each target: cancel its command, or only read it (``poll``)."""

    CANCEL = "cancel"
    POLL = "poll"


class Verified(StrEnum):
    """The report's ``verified`` column: the state class a read found, or ``unknown`` when a
    read could not tell whether this job's cancel took (README, "Outcomes under faults")."""

    PENDING = "pending"
    DONE = "done"
    CANCELED = "canceled"
    ERRORED = "errored"
    UNKNOWN = "unknown"


class StopReason(StrEnum):
    """Why a job paused or aborted (the status object's ``reason``)."""

    OPERATOR = "operator"  # pause or abort asked for by a person
    UNAUTHORIZED = "unauthorized"  # bad or missing credential: fix it, then resume
    MISCONFIGURED = "misconfigured"  # answers are not the vendor's: base URL or network
    PLAN_NOT_ALLOWED = "plan_not_allowed"  # Applivery 5050: the billing plan lacks the feature
    SUBMIT_INTERRUPTED = "submit_interrupted"  # the input never finished loading
    ABORT_THRESHOLD = "abort_threshold"  # --abort-at: too many failed or rejected


@dataclass(slots=True)
class TargetResult:
    """What is stored for one target; ``encode`` is the compact form kept in Redis:
    ``[code, attempts, updated_at, http_status, error_code, error_message, extra,
    uncertain_since]`` with trailing nulls dropped (most results are 3 or 4 items).

    ``uncertain_since`` (Redis time, seconds) is set once an attempt of this job may have
    reached the vendor without a definite answer (a timeout, a connection lost after sending,
    a 5xx, a malformed answer, a worker or Redis lost mid-call); it is kept through retry rounds
    and tells a later "too late" answer to be resolved by a read (``countermand.truth``).
    Python writes a non-final result only as ``QUEUED`` (no call on the wire); the in-flight
    mark ``IN_FLIGHT`` is written by ``begin.lua`` alone."""

    outcome: Outcome | None  # None: not final yet
    attempts: int = 0
    updated_at: int = 0  # unix seconds
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    uncertain_since: int | None = None

    @property
    def final(self) -> bool:
        return self.outcome is not None

    def encode(self) -> str:
        code = OUTCOME_CODES[self.outcome] if self.outcome else QUEUED
        if (
            self.error_code is None
            and self.error_message is None
            and not self.extra
            and self.uncertain_since is None
        ):
            # The common answer, formatted directly (json.dumps costs more than the call's
            # bookkeeping otherwise); same text json.dumps would give.
            tail = "" if self.http_status is None else f",{int(self.http_status)}"
            return f'["{code}",{int(self.attempts)},{int(self.updated_at)}{tail}]'
        items: list[Any] = [
            code,
            self.attempts,
            self.updated_at,
            self.http_status,
            self.error_code,
            self.error_message,
            self.extra or None,
            self.uncertain_since,
        ]
        while items[-1] is None:
            items.pop()
        return json.dumps(items, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls, raw: str | bytes) -> TargetResult:
        items = json.loads(raw)
        items += [None] * (8 - len(items))
        code, attempts, updated_at, http_status, error_code, message, extra, since = items[:8]
        return cls(
            outcome=None if code in (IN_FLIGHT, QUEUED) else CODE_OUTCOMES[code],
            attempts=attempts or 0,
            updated_at=updated_at or 0,
            http_status=http_status,
            error_code=error_code,
            error_message=message,
            extra=extra or {},
            uncertain_since=since,
        )


class JobInfo(BaseModel):
    """The status object of ``status --json``, ``submit --json`` and ``jobs --json``."""

    job_id: str
    kind: JobKind = JobKind.CANCEL
    provider: str
    org: str
    name: str | None = None
    status: JobStatus
    reason: str | None = None
    reason_detail: str | None = None
    total: int
    loaded: bool
    counts: dict[str, int]
    rate: float
    dry_run: bool
    created_at: float
    updated_at: float | None = None
    finished_at: float | None = None
    round: int = 0  # retry rounds started (by hand or --auto-retry)
    auto_retry: int = 0  # rounds --auto-retry may start
    next_retry_at: float | None = None
    abort_at: float | None = None
    abort_min: int | None = None
    verify: bool = False  # --verify: canceled and cancel_requested are read back
    # Targets whose outcome a read could not decide (report: verified = "unknown"); at most the
    # targets with an uncertain attempt (README, "Outcomes under faults").
    undecided: int = 0
    submitted_by: str | None = None  # key:<name>, os:<user> or system:<part> (audit log)
    priority: Priority = Priority.NORMAL
    # While the job runs (status and jobs): the requests/s its tenant grants it now, what
    # holds it below its --rate, and, when that is the in-flight ceiling, the rate it allows.
    share: float | None = None
    limited_by: LimitedBy | None = None
    allowed_rate: float | None = None
    limiter: dict[str, Any] | None = None  # the tenant's effective rate and hold (status only)

    @property
    def done(self) -> int:
        return self.total - self.counts.get(REMAINING, 0)


def empty_counts() -> dict[str, int]:
    """Every outcome key present, plus ``remaining``: scripts never meet a missing key."""
    counts = {outcome.value: 0 for outcome in Outcome}
    counts[REMAINING] = 0
    return counts
