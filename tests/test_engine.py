"""The engine under plain asyncio: real Redis, the in-memory fake provider, no Celery."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from pydantic import SecretStr

from countermand import jobs
from countermand.audit import Actor
from countermand.credentials import AppliveryToken, Credential, CredentialStore
from countermand.inputs import InputRow, read_rows
from countermand.models import JobKind, JobStatus, Outcome
from countermand.providers import SPECS
from countermand.providers.fake import FakeSpec
from countermand.runner import claim_one, work_through
from countermand.runtime import Runtime
from countermand.settings import Settings
from countermand.store import Store, keys
from tests.conftest import run, until

ACTOR = Actor.system("test")


@pytest.fixture
def fake() -> Iterator[FakeSpec]:
    spec = FakeSpec()
    SPECS["fake"] = spec
    yield spec
    del SPECS["fake"]


class AnyCredential(CredentialStore):
    def get(self, vendor: str, org: str) -> Credential | None:
        return AppliveryToken(SecretStr("fake-token"))


@asynccontextmanager
async def open_rt(settings: Settings) -> AsyncIterator[Runtime]:
    rt = await Runtime.open(settings)
    rt.credentials = AnyCredential(settings)
    try:
        yield rt
    finally:
        await rt.close()


def rows_of(text: str) -> Iterator[InputRow]:
    return read_rows("t.csv", io.BytesIO(text.encode()), SPECS["fake"], lambda _: None)


async def submit_csv(rt: Runtime, text: str, **kw: object) -> str:
    request = jobs.SubmitRequest(SPECS["fake"], "org1", **kw)  # type: ignore[arg-type]
    rows = rows_of(text)
    return await jobs.submit(rt.store, rt.settings, rt.credentials, request, rows, ACTOR)


async def claim(rt: Runtime, runner: str = "test-runner") -> tuple[str, int, str] | None:
    """What a runner would claim next (job, chunk, owner), its lease taken."""
    return await claim_one(rt, runner)


async def drain(rt: Runtime) -> list[str]:
    """Claim and work chunks one at a time until nothing is ready: each chunk's outcome."""
    return [outcome.value for outcome in await work_through(rt, "test-runner")]


def csv(*scripts: str) -> str:
    return "device_id,command_id\n" + "".join(f"d{i},{s}\n" for i, s in enumerate(scripts))


async def outcomes(store: Store, job_id: str) -> list[str]:
    return [
        r.outcome.value if r and r.outcome else "remaining"
        async for _, r in store.report_rows(job_id)
    ]


def test_mixed_job_ends_exact_and_counts_equal_outcomes(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings.model_copy(update={"chunk_size": 3})) as rt:
            text = csv("ok", "late", "missing", "reject", "flaky2", "down", "") + "d0,ok\n"
            job_id = await submit_csv(rt, text)
            assert await drain(rt) == ["finished", "finished"]  # chunk 3: all invalid
            got = await outcomes(rt.store, job_id)
            assert got == [
                "canceled", "not_pending", "not_found", "rejected",
                "canceled", "failed", "invalid", "invalid",
            ]  # fmt: skip
            info = await rt.store.info(job_id)
            assert info.status is JobStatus.COMPLETED
            assert {k: v for k, v in info.counts.items() if v} == {
                "canceled": 2, "not_pending": 1, "not_found": 1, "rejected": 1,
                "failed": 1, "invalid": 2,
            }  # fmt: skip
            assert fake.attempts["d4/flaky2"] == 3
            assert fake.attempts["d5/down"] == settings.retry_attempts
            records = [r async for _, r in rt.store.report_rows(job_id)]
            assert records[4] is not None and records[4].attempts == 3
            assert records[7] is not None and "duplicate" in (records[7].error_message or "")
            assert records[6] is not None and "line 8: missing command_id" in (
                records[6].error_message or ""
            )

    run(main())


def test_a_finished_chunk_is_never_claimed_again(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv("ok", "late"))
            assert await drain(rt) == ["finished"]
            calls = len(fake.calls)
            assert await rt.store.reclaim() == []  # nothing left to make ready
            assert await rt.store.make_ready(job_id) == 0
            assert await claim(rt) is None
            assert len(fake.calls) == calls
            info = await rt.store.info(job_id)
            assert info.counts["canceled"] == 1 and info.counts["not_pending"] == 1

    run(main())


def test_a_held_chunk_is_not_ready_while_its_lease_is_live(
    settings: Settings, fake: FakeSpec
) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv("ok"))
            got = await claim(rt, "someone-else")
            assert got is not None and got[:2] == (job_id, 0)
            assert await rt.store.make_ready(job_id) == 0  # held: not ready again
            assert await rt.store.reclaim() == []
            assert await claim(rt) is None
            assert fake.calls == []

    run(main())


def test_stale_owner_cannot_write_after_takeover(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv("ok"))
            meta = await rt.store.meta(job_id)
            got = await claim(rt, "stale")
            assert got is not None
            stale = rt.store.ledger(job_id, 0, got[2], meta.expire_at_ms)
            await rt.store.redis.zadd(keys.leases(job_id), {"0": 0})  # expire it
            assert (job_id, 1) in await rt.store.reclaim()
            assert await drain(rt) == ["finished"]
            with pytest.raises(Exception, match="lease"):
                await stale.begin(0, 1)

    run(main())


@pytest.mark.parametrize(
    ("script", "status", "reason"),
    [
        ("unauthorized", JobStatus.PAUSED, "unauthorized"),
        ("refused", JobStatus.PAUSED, "misconfigured"),
        ("plan", JobStatus.ABORTED, "plan_not_allowed"),
    ],
)
def test_job_level_stops(
    settings: Settings, fake: FakeSpec, script: str, status: JobStatus, reason: str
) -> None:
    async def main() -> None:
        async with open_rt(settings.model_copy(update={"concurrency": 1, "batch_size": 2})) as rt:
            job_id = await submit_csv(rt, csv("ok", script, *["ok"] * 10))
            assert await drain(rt) == ["stopped"]
            info = await rt.store.info(job_id)
            assert (info.status, info.reason) == (status, reason)
            assert info.counts["canceled"] >= 1
            assert info.counts["remaining"] >= 9
            assert info.counts["failed"] == 0 and info.counts["not_found"] == 0
            assert info.reason_detail and "fake org org1" in info.reason_detail
            if status is JobStatus.PAUSED:
                assert await jobs.resume(rt.store, job_id, actor=ACTOR) == 1

    run(main())


def test_dry_run_sends_nothing(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv("ok", "late", ""), dry_run=True)
            await drain(rt)
            assert await outcomes(rt.store, job_id) == ["would_cancel", "would_cancel", "invalid"]
            assert fake.calls == []
            assert (await rt.store.info(job_id)).status is JobStatus.COMPLETED

    run(main())


def test_all_invalid_job_completes_at_submit(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv("", ""))
            assert await claim(rt) is None
            info = await rt.store.info(job_id)
            assert info.status is JobStatus.COMPLETED and info.counts["invalid"] == 2

    run(main())


def test_pause_then_resume_continues_without_loss(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv(*["ok"] * 5))
            await jobs.pause(rt.store, job_id, actor=ACTOR)
            assert await drain(rt) == []  # a paused job's chunks are not claimed
            assert fake.calls == []
            assert await jobs.resume(rt.store, job_id, actor=ACTOR) == 1  # ready all along
            assert await drain(rt) == ["finished"]
            info = await rt.store.info(job_id)
            assert info.status is JobStatus.COMPLETED and info.counts["canceled"] == 5
            assert len(fake.calls) == 5

    run(main())


def test_purge_removes_every_key(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv("ok", "late"))
            await drain(rt)
            await rt.store.purge(job_id)
            left = [k async for k in rt.store.redis.scan_iter(match=f"*{job_id}*")]
            assert left == []

    run(main())


def test_outcome_enum_covers_fake_results() -> None:
    assert Outcome("canceled") is Outcome.CANCELED


def test_poll_job_reads_and_changes_nothing(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv("ok", "late", "missing", "x"), kind=JobKind.POLL)
            assert await drain(rt) == ["finished"]
            assert await outcomes(rt.store, job_id) == ["pending", "done", "not_found", "errored"]
            assert all(call.startswith("read:") for call in fake.calls)
            assert (await rt.store.info(job_id)).kind == "poll"

    run(main())


def test_at_a_chunks_tail_queued_targets_get_lanes_while_every_lane_waits(
    settings: Settings, fake: FakeSpec
) -> None:
    """The producer is done (every target of the chunk queued) while every lane waits on a slow
    vendor: lanes the flow adds take the queued targets at once instead of leaving them a
    latency behind the lanes on the wire; and every lane, those added late too, ends."""
    settings = settings.model_copy(
        update={"chunk_size": 150, "batch_size": 100, "rate": 5000.0, "tenant_rate": 5000.0}
    )

    async def main() -> None:
        async with open_rt(settings) as rt:
            fake.gate = asyncio.Event()
            job_id = await submit_csv(rt, csv(*["ok"] * 150), rate=5000.0)
            draining = asyncio.create_task(drain(rt))
            await until(lambda: fake.held >= 1, 10)
            flow = rt.flows.of(job_id, next(iter(rt.flows._flows.values())).pacer, 150)
            run = next(iter(flow.runs))
            pool = run.lanes_pool
            assert pool is not None
            await until(lambda: pool.closed, 10)  # the producer is done
            assert run.unsent > 0
            assert settings.concurrency < 150
            run.resize(150)
            await until(lambda: fake.held == 150, 10)
            fake.gate.set()
            assert await asyncio.wait_for(draining, 30) == ["finished"]
            assert await outcomes(rt.store, job_id) == ["canceled"] * 150

    run(main())
