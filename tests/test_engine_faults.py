"""The engine under faults (fake provider, real Redis): what each attempt may have done, reads
that resolve "too late", stops that stop, tokens equal requests, input that fails part-way."""

from __future__ import annotations

import asyncio
import io
import time

import pytest

from countermand import jobs
from countermand.errors import InputError
from countermand.inputs import read_rows
from countermand.models import JobStatus
from countermand.providers import SPECS
from countermand.providers.fake import FakeSpec
from countermand.settings import Settings
from countermand.store import keys
from tests.conftest import run, until
from tests.test_engine import ACTOR, claim, csv, drain, fake, open_rt, outcomes, submit_csv

__all__ = ["fake"]


async def records(rt, job_id):  # type: ignore[no-untyped-def]
    return [r async for _, r in rt.store.report_rows(job_id)]


def test_an_uncertain_attempt_then_too_late_is_read_back(
    settings: Settings, fake: FakeSpec
) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv("lost1", "late", "theirs"))
            await drain(rt)
            assert await outcomes(rt.store, job_id) == ["canceled", "not_pending", "not_pending"]
            assert [c for c in fake.calls if c.startswith("read:")] == ["read:d0/lost1"]
            first = (await records(rt, job_id))[0]
            assert first.attempts == 3  # two cancels and the read, every request counted
            assert first.uncertain_since is not None and first.extra["verified"] == "canceled"

    run(main())


def test_a_worker_lost_mid_call_leaves_marks_that_are_resolved(
    settings: Settings, fake: FakeSpec
) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv("ours", "theirs", "late", "ok"))
            meta = await rt.store.meta(job_id)
            got = await claim(rt, "dead")
            assert got is not None
            dead = rt.store.ledger(job_id, 0, got[2], meta.expire_at_ms)
            await dead.begin(0, 4)  # marked in flight; the process dies before any result
            await rt.store.redis.zadd(keys.leases(job_id), {"0": 0})
            assert await rt.store.reclaim() == [(job_id, 1)]
            await drain(rt)
            assert await outcomes(rt.store, job_id) == [
                "canceled", "not_pending", "not_pending", "canceled",
            ]  # fmt: skip
            got = await records(rt, job_id)
            assert got[1].extra["verified"] == "canceled"  # canceled before this job
            assert "before this job's first attempt" in (got[1].error_message or "")
            assert got[2].extra["verified"] == "done"
            reads = sorted(c for c in fake.calls if c.startswith("read:"))
            assert reads == ["read:d0/ours", "read:d1/theirs", "read:d2/late"]
            assert (await rt.store.info(job_id)).undecided == 0

    run(main())


def test_after_redis_lost_writes_every_too_late_is_read(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv("late", "ours"))
            await rt.store.redis.hset(keys.EPOCH, "changed_at", f"{time.time() + 1:.6f}")
            try:
                await drain(rt)
            finally:
                await rt.store.redis.hset(keys.EPOCH, "changed_at", "0")
            assert await outcomes(rt.store, job_id) == ["not_pending", "canceled"]
            assert sorted(c for c in fake.calls if c.startswith("read:")) == [
                "read:d0/late", "read:d1/ours",
            ]  # fmt: skip

    run(main())


def test_a_pause_starts_no_new_request(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv(*["ok"] * 60), rate=20.0)
            await rt.watch.connected.wait()
            worker = asyncio.create_task(drain(rt))
            await until(lambda: len(fake.calls) >= 5, 10)
            await jobs.pause(rt.store, job_id, actor=ACTOR)
            at_pause = len(fake.calls)
            assert await asyncio.wait_for(worker, 10) == ["stopped"]  # the rest: not claimed
            assert len(fake.calls) - at_pause <= 1  # at most the call already on the wire
            info = await rt.store.info(job_id)
            assert info.status is JobStatus.PAUSED and info.counts["remaining"] == 60 - len(
                fake.calls
            )
            states = [r.encode()[2] if r else None for r in await records(rt, job_id)]
            assert "~" not in states  # targets never sent were given back unmarked

    run(main())


def test_tokens_spent_equal_requests_sent(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            org = "tokens-org"
            request = jobs.SubmitRequest(SPECS["fake"], org)
            text = csv("ok", "flaky2", "lost1", "late", "missing", *["ok"] * 20)
            rows = read_rows("t.csv", io.BytesIO(text.encode()), SPECS["fake"], print)
            await jobs.submit(rt.store, rt.settings, rt.credentials, request, rows, ACTOR)
            await drain(rt)
            assert await rt.store.tokens_spent("fake", org) == len(fake.calls) == 29

    run(main())


def test_an_input_that_fails_part_way_leaves_no_job(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            text = csv(*["ok"] * 120).encode() + b"d9,\xe9\n"
            rows = read_rows("t.csv", io.BytesIO(text), SPECS["fake"], print)
            before = {k async for k in rt.store.redis.scan_iter(match="cm:job:*")}
            jobs_before = await rt.store.redis.zcard(keys.JOBS)
            request = jobs.SubmitRequest(SPECS["fake"], "org1")
            with pytest.raises(InputError, match="line 122"):
                await jobs.submit(rt.store, rt.settings, rt.credentials, request, rows, ACTOR)
            assert await claim(rt) is None
            assert await rt.store.redis.zcard(keys.JOBS) == jobs_before
            assert {k async for k in rt.store.redis.scan_iter(match="cm:job:*")} == before

    run(main())


def test_a_submit_that_dies_part_way_is_aborted_and_sends_nothing(
    settings: Settings, fake: FakeSpec
) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:

            def rows():  # type: ignore[no-untyped-def]
                yield from read_rows("t.csv", io.BytesIO(csv(*["ok"] * 120).encode()),
                                     SPECS["fake"], print)  # fmt: skip
                raise ConnectionResetError("the pipe feeding stdin broke")

            job = await jobs.open_job(rt.store, rt.settings, rt.credentials,
                                      jobs.SubmitRequest(SPECS["fake"], "org1"), ACTOR)  # fmt: skip
            with pytest.raises(ConnectionResetError):
                await job.load(rows())
            info = await rt.store.info(job.job_id)
            assert (info.status, info.reason) == (JobStatus.ABORTED, "submit_interrupted")
            assert await claim(rt) is None

    run(main())
