"""The engine under plain asyncio: real Redis, the in-memory fake provider, no Celery."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager

import pytest
from pydantic import SecretStr

from countermand import jobs
from countermand.audit import Actor
from countermand.credentials import AppliveryToken, Credential, CredentialStore
from countermand.engine import run_chunk
from countermand.inputs import InputRow, read_rows
from countermand.models import JobKind, JobStatus, Outcome
from countermand.providers import SPECS
from countermand.providers.fake import FakeSpec
from countermand.runtime import Runtime
from countermand.settings import Settings
from countermand.store import Store, keys
from tests.conftest import run

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


class Dispatched(list[tuple[str, int]]):
    """The Dispatch port, recording what would be sent to the workers."""

    def chunks(self, job_id: str, chunks: Sequence[int]) -> None:
        self.extend((job_id, c) for c in chunks)

    def verify(self, job_ids: Sequence[str]) -> None:
        raise AssertionError("no verify in these tests")


def rows_of(text: str) -> Iterator[InputRow]:
    return read_rows("t.csv", io.BytesIO(text.encode()), SPECS["fake"], lambda _: None)


async def submit_csv(rt: Runtime, text: str, dispatch: Dispatched, **kw: object) -> str:
    request = jobs.SubmitRequest(SPECS["fake"], "org1", **kw)  # type: ignore[arg-type]
    rows = rows_of(text)
    return await jobs.submit(rt.store, rt.settings, rt.credentials, request, rows, dispatch, ACTOR)


async def drain(rt: Runtime, dispatch: Dispatched) -> list[str]:
    answers = []
    while dispatch:
        job_id, chunk = dispatch.pop(0)
        answers.append(await run_chunk(rt, job_id, chunk))
    return answers


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
            sent = Dispatched()
            text = csv("ok", "late", "missing", "reject", "flaky2", "down", "") + "d0,ok\n"
            job_id = await submit_csv(rt, text, sent)
            assert await drain(rt, sent) == ["finished", "finished"]  # chunk 3: all invalid
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


def test_redelivered_chunk_sends_nothing_and_counts_nothing(
    settings: Settings, fake: FakeSpec
) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            sent = Dispatched()
            job_id = await submit_csv(rt, csv("ok", "late"), sent)
            (job, chunk) = sent[0]
            await drain(rt, sent)
            calls = len(fake.calls)
            assert await run_chunk(rt, job, chunk) == "done"
            assert len(fake.calls) == calls
            info = await rt.store.info(job_id)
            assert info.counts["canceled"] == 1 and info.counts["not_pending"] == 1

    run(main())


def test_second_owner_is_refused_while_lease_is_live(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            sent = Dispatched()
            job_id = await submit_csv(rt, csv("ok"), sent)
            meta = await rt.store.meta(job_id)
            other = rt.store.ledger(job_id, 0, "someone-else", meta.expire_at_ms)
            assert await other.acquire(60_000) == "ok"
            assert await run_chunk(rt, job_id, 0) == "busy"
            assert fake.calls == []

    run(main())


def test_stale_owner_cannot_write_after_takeover(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            sent = Dispatched()
            job_id = await submit_csv(rt, csv("ok"), sent)
            meta = await rt.store.meta(job_id)
            stale = rt.store.ledger(job_id, 0, "stale", meta.expire_at_ms)
            assert await stale.acquire(1) == "ok"
            await rt.store.redis.zadd(keys.leases(job_id), {"0": 0})  # expire it
            assert (job_id, 0) in await rt.store.reclaim_expired()
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
            sent = Dispatched()
            job_id = await submit_csv(rt, csv("ok", script, *["ok"] * 10), sent)
            assert await drain(rt, sent) == ["stopped"]
            info = await rt.store.info(job_id)
            assert (info.status, info.reason) == (status, reason)
            assert info.counts["canceled"] >= 1
            assert info.counts["remaining"] >= 9
            assert info.counts["failed"] == 0 and info.counts["not_found"] == 0
            assert info.reason_detail and "fake org org1" in info.reason_detail
            if status is JobStatus.PAUSED:
                chunks = await jobs.resume(rt.store, job_id, sent, actor=ACTOR)
                assert chunks == [0]

    run(main())


def test_dry_run_sends_nothing(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            sent = Dispatched()
            job_id = await submit_csv(rt, csv("ok", "late", ""), sent, dry_run=True)
            await drain(rt, sent)
            assert await outcomes(rt.store, job_id) == ["would_cancel", "would_cancel", "invalid"]
            assert fake.calls == []
            assert (await rt.store.info(job_id)).status is JobStatus.COMPLETED

    run(main())


def test_all_invalid_job_completes_at_submit(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            sent = Dispatched()
            job_id = await submit_csv(rt, csv("", ""), sent)
            assert sent == []
            info = await rt.store.info(job_id)
            assert info.status is JobStatus.COMPLETED and info.counts["invalid"] == 2

    run(main())


def test_pause_then_resume_continues_without_loss(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            sent = Dispatched()
            job_id = await submit_csv(rt, csv(*["ok"] * 5), sent)
            await jobs.pause(rt.store, job_id, actor=ACTOR)
            assert await drain(rt, sent) == ["stopped"]
            assert fake.calls == []
            await jobs.resume(rt.store, job_id, sent, actor=ACTOR)
            assert await drain(rt, sent) == ["finished"]
            info = await rt.store.info(job_id)
            assert info.status is JobStatus.COMPLETED and info.counts["canceled"] == 5
            assert len(fake.calls) == 5

    run(main())


def test_purge_removes_every_key(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            sent = Dispatched()
            job_id = await submit_csv(rt, csv("ok", "late"), sent)
            await drain(rt, sent)
            await rt.store.purge(job_id)
            left = [k async for k in rt.store.redis.scan_iter(match=f"*{job_id}*")]
            assert left == []

    run(main())


def test_outcome_enum_covers_fake_results() -> None:
    assert Outcome("canceled") is Outcome.CANCELED


def test_poll_job_reads_and_changes_nothing(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            sent = Dispatched()
            job_id = await submit_csv(rt, csv("ok", "late", "missing", "x"), sent,
                                      kind=JobKind.POLL)  # fmt: skip
            assert await drain(rt, sent) == ["finished"]
            assert await outcomes(rt.store, job_id) == ["pending", "done", "not_found", "errored"]
            assert all(call.startswith("read:") for call in fake.calls)
            assert (await rt.store.info(job_id)).kind == "poll"

    run(main())
