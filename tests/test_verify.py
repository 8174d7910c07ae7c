"""--verify: what a read-back changes, and the job waits for it (fake provider, real Redis)."""

from __future__ import annotations

import pytest

from countermand.models import JobStatus, Outcome, TargetResult
from countermand.providers import CallResult
from countermand.providers.fake import FakeSpec
from countermand.settings import Settings
from countermand.store import keys
from countermand.verify import verified, verify_job
from tests.conftest import run
from tests.test_engine import csv, drain, fake, open_rt, outcomes, submit_csv

__all__ = ["fake"]


def requested() -> TargetResult:
    return TargetResult(Outcome.CANCEL_REQUESTED, 1, 1, 200)


def canceled() -> TargetResult:
    return TargetResult(Outcome.CANCELED, 1, 1, 200)


@pytest.mark.parametrize(
    ("before", "read", "after", "flagged"),
    [
        (requested, Outcome.CANCELED, Outcome.CANCELED, False),
        (requested, Outcome.DONE, Outcome.NOT_PENDING, True),
        (requested, Outcome.ERRORED, Outcome.NOT_PENDING, True),
        (requested, Outcome.PENDING, Outcome.CANCEL_REQUESTED, False),
        (canceled, Outcome.CANCELED, Outcome.CANCELED, False),
        (canceled, Outcome.PENDING, Outcome.CANCELED, True),  # reported, not hidden
        (canceled, Outcome.DONE, Outcome.CANCELED, True),
    ],
)
def test_what_a_read_changes(before: object, read: Outcome, after: Outcome, flagged: bool) -> None:
    result = verified(before(), CallResult(read, 200, extra={"status": "X"}))  # type: ignore[operator]
    assert result.outcome is after
    assert result.extra["verified"] == read.value and result.extra["status"] == "X"
    assert (result.error_message is not None) is flagged


def test_the_job_completes_only_after_its_reads(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv("ok", "late", "ok"), verify=True)
            await drain(rt)
            info = await rt.store.info(job_id)
            assert info.status is JobStatus.RUNNING  # two reads to come
            assert await rt.store.redis.zscore(keys.VERIFY_DUE, job_id)
            assert await verify_job(rt, job_id) == "done"
            info = await rt.store.info(job_id)
            assert info.status is JobStatus.COMPLETED
            assert await outcomes(rt.store, job_id) == ["canceled", "not_pending", "canceled"]
            assert [c for c in fake.calls if c.startswith("read:")] == ["read:d0/ok", "read:d2/ok"]
            records = [r async for _, r in rt.store.report_rows(job_id)]
            assert records[0] is not None and records[0].extra["verified"] == "pending"
            assert not await rt.store.redis.zscore(keys.VERIFY_DUE, job_id)
            assert info.counts["canceled"] == 2 and info.counts["remaining"] == 0

    run(main())
