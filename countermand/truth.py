"""What a "too late" answer to a cancel means when an earlier attempt may have been applied.

A cancel whose attempt may have reached the vendor without a definite answer (a timeout, a
connection lost after sending, a 5xx, a malformed answer, a worker or Redis lost mid-call) can
have canceled the command: the next attempt then hears "too late" (Applivery 5106, EnOS
"nothing cached") although this job canceled it. Such an answer is resolved by reading the
command, and the read decides with what the vendor's answer carries, against ``since``: the
Redis time of this job's first uncertain attempt at the target (or, when Redis may have lost
that mark, the job's creation), less ``tolerance`` seconds of clock difference.

====================================  ==================  ===============  ==================
the read says                         vendor's time       outcome          verified
====================================  ==================  ===============  ==================
canceled                              >= since - tol      canceled         canceled
canceled                              <  since - tol      the "too late"   canceled (before
                                                          answer           the job)
canceled                              none / unreadable   the "too late"   unknown
                                      (EnOS: no cancel    answer
                                      time)
done / errored                        -                   the "too late"   done / errored
pending                               -                   the "too late"   pending
not found, rejected, or no read       -                   the "too late"   unknown
====================================  ==================  ===============  ==================

Apple reads give ``canceledAt``, Android reads ``updatedAt``; EnOS records carry no cancel
time. An EnOS device-wide row (no command id) after an uncertain attempt keeps what this pass
canceled and says ``unknown``: an earlier attempt may have canceled more of the device's
commands. ``unknown`` is never a guess: the outcome stays what the vendor answered, and the
job's ``undecided`` count holds such targets (at most those with an uncertain attempt).
"""

from __future__ import annotations

from dataclasses import dataclass

from countermand.errors import TransientError
from countermand.models import Outcome, Verified
from countermand.providers import Call, CallResult, Provider, Target
from countermand.timeparse import iso_utc, parse_time

TOO_LATE = (Outcome.NOT_PENDING, Outcome.NOTHING_PENDING)


@dataclass(frozen=True, slots=True)
class Evidence:
    since: float  # Redis seconds: this job's first attempt that may have been applied
    tolerance: float  # seconds


def needs_read(answer: CallResult, target: Target, uncertain: bool) -> bool:
    """Must this cancel answer be resolved? Only after an uncertain attempt (``uncertain``:
    one of this job, or Redis may have lost its mark)."""
    if not uncertain:
        return False
    return answer.outcome in TOO_LATE or "command_id" not in target


async def resolve(
    provider: Provider, call: Call, target: Target, answer: CallResult, evidence: Evidence
) -> CallResult:
    """The answer to record, after reading the command back where it must be."""
    if "command_id" not in target:
        return unknown(
            answer,
            "an earlier attempt of this job may have canceled more of this device's commands "
            "(EnOS records carry no cancel time)",
        )
    try:
        read = await provider.read(target, call)
    except TransientError as exc:
        return unknown(answer, f"could not read the command back: {exc.message}")
    return decide(answer, read, evidence)


def decide(answer: CallResult, read: CallResult, evidence: Evidence) -> CallResult:
    """The decision table of the module docstring."""
    status = read.extra.get("status")
    if read.outcome in (Outcome.NOT_FOUND, Outcome.REJECTED, Outcome.INVALID, Outcome.FAILED):
        return unknown(answer, f"the read back answered {read.outcome.value}: {read.error_message}")
    if read.outcome is not Outcome.CANCELED:
        return _kept(answer, Verified(read.outcome.value), status, None)
    when = parse_time(read.state_time)
    if when is None:
        reason = "the vendor gives no cancel time" if read.state_time is None else (
            f"its cancel time {read.state_time!r} cannot be read"
        )  # fmt: skip
        return unknown(answer, f"the command reads canceled, but {reason}", status)
    if when >= evidence.since - evidence.tolerance:
        extra = {**answer.extra, "status": status, "verified": Verified.CANCELED.value}
        return CallResult(Outcome.CANCELED, read.http_status, None, None, extra)
    first = iso_utc(evidence.since)
    note = f"canceled at {read.state_time}, before this job's first attempt ({first})"
    return _kept(answer, Verified.CANCELED, status, note)


def unknown(answer: CallResult, reason: str, status: object = None) -> CallResult:
    return _kept(answer, Verified.UNKNOWN, status, f"verified unknown: {reason}")


def _kept(answer: CallResult, verified: Verified, status: object, note: str | None) -> CallResult:
    extra = {**answer.extra, "verified": verified.value}
    if status is not None:
        extra["status"] = status
    message = answer.error_message if note is None else (
        f"{answer.error_message}; {note}" if answer.error_message else note
    )  # fmt: skip
    return CallResult(answer.outcome, answer.http_status, answer.error_code, message, extra)
