"""The decision table of countermand.truth: what a read says about a "too late" answer."""

from __future__ import annotations

import pytest

from countermand import truth
from countermand.errors import TransientError
from countermand.models import Outcome
from countermand.providers import CallResult
from tests.conftest import run

SINCE = 1_790_000_000.0  # 2026-09-21T14:13:20Z
LATE = CallResult(Outcome.NOT_PENDING, 400, "5106", "not pending")
EVIDENCE = truth.Evidence(since=SINCE, tolerance=5)


def read(outcome: Outcome, when: str | None = None, status: str = "X") -> CallResult:
    return CallResult(outcome, 200, extra={"status": status}, state_time=when)


@pytest.mark.parametrize(
    ("the_read", "outcome", "verified", "message_has"),
    [
        (read(Outcome.CANCELED, "2026-09-21T14:13:21Z"), Outcome.CANCELED, "canceled", None),
        (read(Outcome.CANCELED, "2026-09-21T14:13:16Z"), Outcome.CANCELED, "canceled", None),
        (read(Outcome.CANCELED, "2026-09-21T14:13:14Z"), Outcome.NOT_PENDING, "canceled",
         "before this job's first attempt"),
        (read(Outcome.CANCELED, "2026-09-21T14: 13: 21.000Z"), Outcome.CANCELED, "canceled",
         None),  # the vendor's docs' stray spaces
        (read(Outcome.CANCELED, None), Outcome.NOT_PENDING, "unknown", "no cancel time"),
        (read(Outcome.CANCELED, "yesterday"), Outcome.NOT_PENDING, "unknown", "cannot be read"),
        (read(Outcome.DONE), Outcome.NOT_PENDING, "done", None),
        (read(Outcome.ERRORED), Outcome.NOT_PENDING, "errored", None),
        (read(Outcome.PENDING), Outcome.NOT_PENDING, "pending", None),
        (CallResult(Outcome.NOT_FOUND, 404, "3001", "gone"), Outcome.NOT_PENDING, "unknown",
         "not_found"),
    ],
)  # fmt: skip
def test_the_decision_table(
    the_read: CallResult, outcome: Outcome, verified: str, message_has: str | None
) -> None:
    decided = truth.decide(LATE, the_read, EVIDENCE)
    assert decided.outcome is outcome
    assert decided.extra["verified"] == verified
    if message_has is None:
        assert outcome is Outcome.CANCELED or decided.error_message == LATE.error_message
    else:
        assert decided.error_message is not None and message_has in decided.error_message


def test_only_uncertain_too_late_answers_are_read() -> None:
    target = {"target_id": "T", "command_id": "c" * 24}
    assert not truth.needs_read(LATE, target, uncertain=False)
    assert truth.needs_read(LATE, target, uncertain=True)
    assert not truth.needs_read(CallResult(Outcome.CANCELED, 200), target, uncertain=True)
    assert truth.needs_read(CallResult(Outcome.CANCELED, 200), {"asset_id": "a"}, uncertain=True)


class Reader:
    def __init__(self, answer: CallResult | Exception) -> None:
        self.answer = answer
        self.reads = 0

    async def read(self, target: object, call: object) -> CallResult:
        self.reads += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def cancel(self, target: object, call: object) -> CallResult:
        raise AssertionError("resolve never cancels")


def test_resolve_reads_by_id_and_says_unknown_when_it_cannot() -> None:
    async def main() -> None:
        ok = Reader(read(Outcome.CANCELED, "2026-09-21T14:13:30Z"))
        target = {"asset_id": "a", "command_id": "1"}
        got = await truth.resolve(ok, None, target, LATE, EVIDENCE)  # type: ignore[arg-type]
        assert got.outcome is Outcome.CANCELED and ok.reads == 1
        broken = Reader(TransientError("timed out"))
        got = await truth.resolve(broken, None, target, LATE, EVIDENCE)  # type: ignore[arg-type]
        assert got.outcome is Outcome.NOT_PENDING and got.extra["verified"] == "unknown"
        device_wide = Reader(read(Outcome.CANCELED))
        nothing = CallResult(Outcome.NOTHING_PENDING, 200)
        got = await truth.resolve(device_wide, None, {"asset_id": "a"}, nothing, EVIDENCE)  # type: ignore[arg-type]
        assert got.extra["verified"] == "unknown" and device_wide.reads == 0

    run(main())
