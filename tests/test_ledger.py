"""A chunk's books in Redis: in-flight marks and what they say about earlier attempts, exactly
once recording, release only when Redis agrees, and the epoch that flags lost writes."""

from __future__ import annotations

import json
import secrets
import time

from countermand.models import JobStatus, Outcome, TargetResult
from countermand.settings import Settings
from countermand.store import NewJob, Release, Released, Store, keys, redis_client
from tests.conftest import run


async def new_job(store: Store, rows: int) -> tuple[str, int]:
    job_id = secrets.token_hex(8)
    expire = await store.create_job(
        NewJob(job_id, "fake", "org1", 10.0, False, None, 500, ["device_id", "command_id"], 3600)
    )
    await store.write_chunk(job_id, 0, [["d", "c"]] * rows, [], expire)
    await store.finalize(job_id, 1)
    await store.make_ready(job_id)
    return job_id, expire


async def take(store: Store, job_id: str, owner: str) -> None:
    """Claim the job's chunk 0 for ``owner``, as a runner does."""
    assert await store.claim(owner, 60_000, 2, "test-runner", 5_000, {}) == (job_id, 0)


def test_marks_say_since_when_an_attempt_may_have_been_applied(settings: Settings) -> None:
    async def main() -> None:
        store = Store(redis_client(settings.redis_url))
        try:
            job_id, expire = await new_job(store, 3)
            dead = store.ledger(job_id, 0, "dead-owner", expire)
            await take(store, job_id, "dead-owner")
            first = await dead.begin(0, 3)
            assert first.runnable and [m.uncertain_since for m in first.marks] == [None] * 3
            # the owner records target 0 as failed after an uncertain try, then dies
            failed = TargetResult(Outcome.FAILED, 2, 1, 503, uncertain_since=first.marked_at - 7)
            await dead.record([(0, failed)])
            await store.redis.hset(keys.owners(job_id), "0", "next-owner")
            after = await store.ledger(job_id, 0, "next-owner", expire).begin(0, 3)
            assert after.marks[0].final  # failed is final this round
            # targets 1 and 2 were marked in flight and never recorded: their mark time counts
            assert [m.uncertain_since for m in after.marks[1:]] == [first.marked_at] * 2
            assert [m.attempts for m in after.marks[1:]] == [0, 0]
        finally:
            await store.close()

    run(main())


def test_uncertainty_survives_a_retry_round(settings: Settings) -> None:
    async def main() -> None:
        store = Store(redis_client(settings.redis_url))
        try:
            job_id, expire = await new_job(store, 1)
            owner = store.ledger(job_id, 0, "o", expire)
            await take(store, job_id, "o")
            await owner.begin(0, 1)
            await owner.record([(0, TargetResult(Outcome.FAILED, 5, 1, 503, uncertain_since=42))])
            assert await owner.release(Release.FINISHED, 0, 1) is Released.RELEASED
            await store.retry(job_id)
            again = store.ledger(job_id, 0, "o2", expire)
            await take(store, job_id, "o2")
            batch = await again.begin(0, 1)
            assert (batch.marks[0].attempts, batch.marks[0].uncertain_since) == (5, 42)
        finally:
            await store.close()

    run(main())


def test_results_count_once_and_release_checks_redis(settings: Settings) -> None:
    async def main() -> None:
        store = Store(redis_client(settings.redis_url))
        try:
            job_id, expire = await new_job(store, 2)
            owner = store.ledger(job_id, 0, "o", expire)
            await take(store, job_id, "o")
            await owner.begin(0, 2)
            done = TargetResult(Outcome.CANCELED, 1, 1, 200)
            await owner.record([(0, done)])
            await owner.record([(0, done)])  # a repeat changes nothing
            info = await store.info(job_id)
            assert info.counts["canceled"] == 1 and info.counts["remaining"] == 1
            # the owner believes both are final, but Redis lost target 1's result
            assert await owner.release(Release.FINISHED, 0, 2) is Released.UNFINISHED
            await owner.record([(1, done)])
            assert await owner.release(Release.FINISHED, 0, 2) is Released.RELEASED
            assert (await store.info(job_id)).status is JobStatus.COMPLETED
        finally:
            await store.close()

    run(main())


def test_a_changed_redis_server_makes_older_jobs_read_back(settings: Settings) -> None:
    async def main() -> None:
        store = Store(redis_client(settings.redis_url))
        try:
            job_id, expire = await new_job(store, 1)
            owner = store.ledger(job_id, 0, "o", expire)
            await take(store, job_id, "o")
            assert not (await owner.begin(0, 1)).reads_required
            # as if Redis had restarted: the stored run id is another server's
            await store.redis.hset(keys.EPOCH, "run_id", "another-server")
            fresh = Store(redis_client(settings.redis_url))  # a new connection runs the epoch check
            try:
                await fresh.redis.ping()
                epoch = await fresh.redis.hgetall(keys.EPOCH)
                assert epoch["run_id"] == (await fresh.redis.info("server"))["run_id"]
                assert float(epoch["changed_at"]) >= time.time() - 5
                assert (await owner.begin(0, 1)).reads_required
                later, _ = await new_job(fresh, 1)  # a job made after the change: nothing lost
                meta = await fresh.redis.hget(keys.job(later), "created_at")
                assert float(meta) >= float(epoch["changed_at"])
            finally:
                await fresh.close()
        finally:
            await store.close()

    run(main())


def test_stored_results_stay_compact() -> None:
    assert TargetResult(Outcome.CANCELED, 1, 1795446031, 200).encode() == '["c",1,1795446031,200]'
    with_since = TargetResult(Outcome.FAILED, 5, 1, 503, uncertain_since=9).encode()
    assert json.loads(with_since) == ["f", 5, 1, 503, None, None, None, 9]
    assert TargetResult.decode(with_since).uncertain_since == 9
    assert TargetResult.decode('["c",1,2]').uncertain_since is None


def test_a_claim_retried_with_its_owner_token_takes_no_second_chunk(settings: Settings) -> None:
    """The answer of a claim lost to a broken connection: redis-py sends it again (the outage
    retry), and it must answer the chunk it took, not lease a second one to nobody."""

    async def main() -> None:
        store = Store(redis_client(settings.redis_url))
        try:
            job_id, expire = await new_job(store, 3)
            await store.write_chunk(job_id, 1, [["d", "c"]] * 3, [], expire)
            await store.finalize(job_id, 2)
            await store.make_ready(job_id)
            first = await store.claim("owner-a", 60_000, 2, "runner", 5_000, {})
            again = await store.claim("owner-a", 60_000, 2, "runner", 5_000, {})
            assert first == again and first is not None
            assert await store.redis.hlen(keys.owners(job_id)) == 1
            other = await store.claim("owner-b", 60_000, 2, "runner-2", 5_000, {})
            assert other is not None and other[1] != first[1]
        finally:
            await store.close()

    run(main())
