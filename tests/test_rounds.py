"""Retry rounds, --auto-retry scheduling and --abort-at, under plain asyncio with the fake."""

from __future__ import annotations

from countermand import jobs
from countermand.models import JobStatus
from countermand.providers.fake import FakeSpec
from countermand.settings import Settings
from countermand.store import keys
from tests.conftest import run
from tests.test_engine import ACTOR, csv, drain, fake, open_rt, outcomes, submit_csv

__all__ = ["fake"]  # the fixture, used by name


def test_retry_requeues_only_failed_targets_and_keeps_counting(
    settings: Settings, fake: FakeSpec
) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:  # 3 attempts per round
            job_id = await submit_csv(rt, csv("ok", "flaky7", "late", "flaky4"))
            await drain(rt)
            assert await outcomes(rt.store, job_id) == [
                "canceled", "failed", "not_pending", "failed",
            ]  # fmt: skip
            fake.calls.clear()
            assert await jobs.retry(rt.store, job_id, actor=ACTOR) == [0]
            info = await rt.store.info(job_id)
            assert (info.status, info.round, info.counts["failed"]) == (JobStatus.RUNNING, 1, 0)
            assert info.counts["remaining"] == 2
            await drain(rt)
            assert set(fake.calls) == {"d1/flaky7", "d3/flaky4"}  # nothing else called again
            assert await outcomes(rt.store, job_id) == [
                "canceled", "failed", "not_pending", "canceled",
            ]  # fmt: skip
            records = [r async for _, r in rt.store.report_rows(job_id)]
            assert records[3] is not None and records[3].attempts == 5  # 4 failures, then ok
            assert records[1] is not None and records[1].attempts == 6
            info = await rt.store.info(job_id)
            assert info.status is JobStatus.COMPLETED
            assert sum(v for k, v in info.counts.items() if k != "remaining") == 4

    run(main())


def test_retry_with_nothing_failed_changes_nothing(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv("ok"))
            await drain(rt)
            assert await jobs.retry(rt.store, job_id, actor=ACTOR) == []
            info = await rt.store.info(job_id)
            assert (info.status, info.round) == (JobStatus.COMPLETED, 0)

    run(main())


def test_auto_retry_rounds_fire_once_each_and_stop_at_n(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        fast = settings.model_copy(update={"retry_round_delay": 0.0})
        async with open_rt(fast) as rt:
            job_id = await submit_csv(rt, csv("down", "ok"), auto_retry=2)
            for expected_round in (1, 2):
                await drain(rt)
                info = await rt.store.info(job_id)
                assert info.status is JobStatus.COMPLETED and info.next_retry_at is not None
                # two sweeps at once (two beat processes): the round starts once
                first = await jobs.retry_due(rt.store)
                second = await jobs.retry_due(rt.store)
                assert (first, second) == ([job_id], [])
                assert (await rt.store.info(job_id)).round == expected_round
            await drain(rt)
            info = await rt.store.info(job_id)
            assert (info.status, info.round, info.next_retry_at) == (JobStatus.COMPLETED, 2, None)
            assert await jobs.retry_due(rt.store) == []
            assert not await rt.store.redis.zscore(keys.RETRY_DUE, job_id)
            assert fake.attempts["d0/down"] == 3 * settings.retry_attempts

    run(main())


def test_abort_threshold_stops_the_job_and_leaves_untried_targets(
    settings: Settings, fake: FakeSpec
) -> None:
    async def main() -> None:
        async with open_rt(settings.model_copy(update={"concurrency": 1, "batch_size": 2})) as rt:
            scripts = ["ok", "reject", "reject", "reject", "reject", *["ok"] * 20]
            job_id = await submit_csv(rt, csv(*scripts), abort_at=50.0, abort_min=4)
            assert await drain(rt) == ["stopped"]
            info = await rt.store.info(job_id)
            assert (info.status, info.reason) == (JobStatus.ABORTED, "abort_threshold")
            assert info.reason_detail and "failed or were rejected" in info.reason_detail
            assert info.counts["remaining"] >= 15
            assert len(fake.calls) == 25 - info.counts["remaining"]  # untried: never called

    run(main())
