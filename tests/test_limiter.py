"""The limiter's contract, over the Redis backend (several processes pacing one tenant) and
over the in-memory stub: spacing, a job that stops, tokens counted, 429 holds and rate cuts."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from countermand.errors import Stopped
from countermand.limiter import Pacer, RateLimiter, batch_size
from countermand.simulator.control import max_in_window
from countermand.store import Store, keys, redis_client
from countermand.store.tenants import Adaptation, Ask, Reservation
from tests.conftest import run
from tests.limiter_stub import StubBackend

BACKENDS = ("redis", "stub")


@asynccontextmanager
async def backend(kind: str, url: str) -> AsyncIterator[tuple[Any, Callable[[str], Any]]]:
    """(backend, make_runnable(job_id)) for one test."""
    if kind == "stub":
        stub = StubBackend()

        async def allow_stub(job_id: str) -> None:
            stub.runnable.add(keys.job(job_id))

        yield stub, allow_stub
        return
    store = Store(redis_client(url))

    async def allow(job_id: str) -> None:
        await store.redis.hset(keys.job(job_id), "status", "running")

    try:
        yield store, allow
    finally:
        await store.close()


async def paced_sends(
    url: str, tenant: str, job: str, tenant_rate: float, job_rate: float, n: int
) -> list[float]:
    store = Store(redis_client(url))
    try:
        await store.redis.hset(keys.job(job), "status", "running")
        pacer = RateLimiter(store, headroom=0.03).pacer("test", tenant, tenant_rate, job, job_rate)
        sent = []
        for _ in range(n):
            await pacer.wait_turn(asyncio.sleep)
            pacer.spend()
            sent.append(time.time())
        await pacer.flush()
        return sent
    finally:
        await store.close()


def _child(url: str, tenant: str, job: str, tenant_rate: float, job_rate: float, n: int, q) -> None:  # type: ignore[no-untyped-def]
    q.put(asyncio.run(paced_sends(url, tenant, job, tenant_rate, job_rate, n)))


def in_processes(url: str, specs: list[tuple[str, str, float, float, int]]) -> list[list[float]]:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(url, *spec, queue)) for spec in specs]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    return results


def test_batch_size_grows_with_rate() -> None:
    assert batch_size(20) == 1
    assert batch_size(200) == 4
    assert batch_size(2_000) == 40
    assert batch_size(1_000_000) == 100


@pytest.mark.parametrize("kind", BACKENDS)
def test_slots_are_evenly_spaced_and_tokens_counted(redis_url: str, kind: str) -> None:
    async def main() -> None:
        async with backend(kind, redis_url) as (limits, allow):
            org, job = uuid.uuid4().hex, uuid.uuid4().hex
            await allow(job)
            pacer = RateLimiter(limits, headroom=0.03).pacer("test", org, 1000, job, 50)
            sent = []
            for _ in range(26):
                await pacer.wait_turn(asyncio.sleep)
                pacer.spend()
                sent.append(time.monotonic())
            await pacer.flush()
            span = sent[-1] - sent[0]
            assert 25 / 50 <= span < 25 / 50 * 1.5  # the job's rate, not faster, not slower
            if kind == "redis":
                assert await limits.tokens_spent("test", org) == 26
            else:
                assert limits.tenants[keys.tenant_rate("test", org)].tokens == 26

    run(main())


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_stopped_job_gets_no_slot(redis_url: str, kind: str) -> None:
    async def main() -> None:
        async with backend(kind, redis_url) as (limits, _allow):
            pacer = RateLimiter(limits).pacer("test", uuid.uuid4().hex, 100, "never-run", 100)
            with pytest.raises(Stopped):
                await pacer.wait_turn(asyncio.sleep)

    run(main())


@pytest.mark.parametrize("kind", BACKENDS)
def test_retry_after_holds_the_tenant_for_every_pacer(redis_url: str, kind: str) -> None:
    async def main() -> None:
        async with backend(kind, redis_url) as (limits, allow):
            org, job_a, job_b = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
            await allow(job_a)
            await allow(job_b)
            limiter = RateLimiter(limits, 0.0)
            one: Pacer = limiter.pacer("test", org, 100, job_a, 100)
            other = limiter.pacer("test", org, 100, job_b, 100)  # another job, same tenant
            await one.wait_turn(asyncio.sleep)
            await one.throttled(retry_after=0.5)
            if kind == "redis":
                state = await limits.tenant_state("test", org)
                assert state.hold_until is not None and state.hold_until > time.time()
            started = time.monotonic()
            await other.wait_turn(asyncio.sleep)  # a pacer that never saw the 429 waits too
            assert time.monotonic() - started >= 0.45

    run(main())


@pytest.mark.parametrize("kind", BACKENDS)
def test_429_without_retry_after_halves_once_per_burst_then_recovers(
    redis_url: str, kind: str
) -> None:
    async def main() -> None:
        async with backend(kind, redis_url) as (limits, allow):
            adaptation = Adaptation(factor=0.5, cooldown_s=10, floor=1, recovery=1.0)
            org, job = uuid.uuid4().hex, uuid.uuid4().hex
            await allow(job)
            pacer = RateLimiter(limits, 0.0, adaptation).pacer("test", org, 100, job, 1000)
            await pacer.wait_turn(asyncio.sleep)
            for _ in range(5):  # one burst of 429s is one signal
                await pacer.throttled(retry_after=None)
            started = time.monotonic()
            await pacer.next_slot(asyncio.sleep)  # recovery: +100% of the limit per second
            elapsed = time.monotonic() - started
            assert 50 <= pacer.effective_rate <= 50 + 100 * (elapsed + 0.05)

    run(main())


@pytest.mark.parametrize("kind", BACKENDS)
def test_rate_never_below_the_floor(redis_url: str, kind: str) -> None:
    async def main() -> None:
        async with backend(kind, redis_url) as (limits, allow):
            adaptation = Adaptation(factor=0.1, cooldown_s=0, floor=7, recovery=0.0001)
            org, job = uuid.uuid4().hex, uuid.uuid4().hex
            await allow(job)
            pacer = RateLimiter(limits, 0.0, adaptation).pacer("test", org, 100, job, 100)
            for _ in range(4):
                await pacer.throttled(retry_after=None)
            await pacer.next_slot(asyncio.sleep)
            assert pacer.effective_rate == pytest.approx(7, rel=0.01)

    run(main())


def test_processes_sharing_a_tenant_never_exceed_its_limit(redis_url: str) -> None:
    tenant = uuid.uuid4().hex
    results = in_processes(
        redis_url, [(tenant, uuid.uuid4().hex, 100.0, 1000.0, 70) for _ in range(3)]
    )
    times = [t for r in results for t in r]
    assert len(times) == 210
    assert max_in_window(times, 1.0) <= 100
    assert max(times) - min(times) < 210 / 100 * 1.5  # the limit is used, not wasted


def test_two_tenants_do_not_slow_each_other(redis_url: str) -> None:
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    results = in_processes(
        redis_url,
        [(a, uuid.uuid4().hex, 50.0, 1000.0, 40), (b, uuid.uuid4().hex, 50.0, 1000.0, 40)],
    )
    for times in results:
        assert max_in_window(times, 1.0) <= 50
        assert max(times) - min(times) < 39 / 50 * 1.5


def test_slots_stalled_processes_missed_are_not_sent_in_a_burst() -> None:
    """Three processes reserved their next slots, then stalled (a busy loop, a paused VM) for
    1.2 s while a fourth kept the tenant at its limit. Sending the overdue slots on waking would
    put 60 extra requests into one second, over the limit: slots missed by more than ``late``
    are dropped and fresh ones taken."""

    async def main() -> tuple[list[float], int]:
        stub = StubBackend()
        stub.runnable.add(keys.job("j"))
        pacers = [RateLimiter(stub, 0.03).pacer("test", "o", 1000, "j", 10_000) for _ in range(4)]
        *stalled, steady = pacers
        for pacer in stalled:
            await pacer._reserve(asyncio.sleep, pacer.n)  # 20 slots each, due in the next 60 ms
        sent: list[float] = []

        async def send(pacer: Pacer, until: float | None, count: int | None) -> None:
            while (until is None or time.monotonic() < until) and (count is None or count > 0):
                await pacer.wait_turn(asyncio.sleep)
                pacer.spend()
                sent.append(time.monotonic())
                count = None if count is None else count - 1

        start = time.monotonic()
        keep = asyncio.create_task(send(steady, start + 2.0, None))
        await asyncio.sleep(1.2)
        await asyncio.gather(*[send(p, None, 20) for p in stalled])
        await keep
        return sent, sum(p.missed for p in stalled)

    sent, missed = run(main())
    assert missed >= 50
    assert max_in_window(sent, 1.0) <= 1000


def test_a_sleep_that_overran_its_slot_does_not_send_on_it() -> None:
    """Callers asleep until their slots wake late together when the loop stalls (a GC pause,
    a CPU taken by another process): sending each on its overdue slot puts the slots of the
    stall on top of those of the next second, over the limit. A slot overslept by more than
    ``late`` is dropped like one missed, and a fresh one taken; the sends then keep the pacer's
    bound over every one-second window."""

    async def main() -> tuple[list[float], Pacer]:
        stub = StubBackend()
        stub.runnable.add(keys.job("j"))
        pacer = RateLimiter(stub, 0.03).pacer("test", "o", 200, "j", 200)
        stalls = [0.2 + 0.1 * i for i in range(12)]  # a 30 ms stall every 0.1 s, from 0.2 s
        start = time.monotonic()

        async def stalling_sleep(seconds: float) -> None:
            await asyncio.sleep(seconds)
            if stalls and time.monotonic() - start >= stalls[0]:
                stalls.pop(0)
                time.sleep(0.03)  # noqa: ASYNC251 - the whole loop stalls, as every sleeper wakes

        sent: list[float] = []

        async def lane() -> None:
            while time.monotonic() - start < 1.6:
                await pacer.wait_turn(stalling_sleep)
                pacer.spend()
                sent.append(time.monotonic())

        await asyncio.gather(*[lane() for _ in range(20)])
        return sent, pacer

    sent, pacer = run(main())
    bound = 200 * (1 - 0.03) * (1 + 0.001 + pacer.late) + 1
    assert max_in_window(sent, 1.0) <= bound
    assert pacer.missed > 0


def test_a_reservation_asks_only_for_the_slots_the_process_can_use() -> None:
    """A slot no caller takes in time is lost to the job in every process: a process whose
    callers come one at a time (its lanes all on the wire) asks for one slot, not a batch;
    callers waiting together, or coming fast, are reserved for together."""
    stub = StubBackend()
    stub.runnable.add(keys.job("j"))
    asked: list[int] = []
    reserve = stub.reserve

    async def round_trip(ask: Ask) -> Reservation:
        asked.append(ask.n)
        await asyncio.sleep(0.01)  # the others come meanwhile, and wait
        return await reserve(ask)

    stub.reserve = round_trip  # type: ignore[method-assign]
    pacer = RateLimiter(stub, 0.03).pacer("test", "o", 100_000, "j", 100_000)
    assert pacer.n == 100

    async def main() -> None:
        for _ in range(4):
            await pacer.wait_turn(asyncio.sleep)
            await asyncio.sleep(0.1)
        await asyncio.gather(*[pacer.wait_turn(asyncio.sleep) for _ in range(5)])

    run(main())
    assert asked[:5] == [1, 1, 1, 1, 1]  # one by one; then the first of the five alone
    # the four that waited, and those their pace promises within ``late``: at most 5 callers
    # in the 10 ms round trip since the last reservation, 500/s x 15 ms
    assert 4 <= asked[5] <= 4 + int(500 * pacer.late)
    assert len(asked) == 6 and pacer.missed == 0


def test_a_reservation_makes_only_the_slots_it_was_granted() -> None:
    """A job's share grows back (another job ended): the next ``n`` is larger, but the slots
    made are the ones reserved; more would be requests the limiter never granted."""
    stub = StubBackend()
    stub.runnable.add(keys.job("j"))
    pacer = RateLimiter(stub, 0.03).pacer("test", "o", 100_000, "j", 100_000)
    pacer.n = 2  # as after a reservation at a small share
    run(pacer._reserve(asyncio.sleep, pacer.n))
    assert pacer.n == 100
    assert len(pacer._slots) == 2


async def shares(url: str, jobs: list[tuple[str, float]], limit: float = 100) -> list[float]:
    """Each job (priority, own rate) asks once on one fresh tenant, then each asks again: the
    share each was granted with every job active."""
    store = Store(redis_client(url))
    org = uuid.uuid4().hex
    ids = [uuid.uuid4().hex for _ in jobs]
    try:
        for job_id in ids:
            await store.redis.hset(keys.job(job_id), "status", "running")
        granted = []
        for _round in range(2):
            granted = []
            for job_id, (priority, rate) in zip(ids, jobs, strict=True):
                ask = Ask(keys.tenant_rate("test", org), keys.job_rate(job_id), keys.job(job_id),
                          keys.tenant_shares("test", org), job_id, priority, limit, rate, 0.0,
                          1, 1.0, 100_000_000, 0)  # fmt: skip
                granted.append(round((await store.reserve(ask)).share, 3))
        return granted
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ([("normal", 1000)], [100]),
        ([("normal", 1000), ("normal", 1000)], [50, 50]),  # equal, whatever the order
        ([("bulk", 1000), ("urgent", 1000)], [5, 95]),  # urgent leaves the 5% floor
        ([("bulk", 1000), ("normal", 1000)], [20, 80]),  # normal : bulk = 4 : 1
        ([("normal", 10), ("normal", 1000)], [10, 90]),  # a share a job cannot use goes on
        ([("urgent", 30), ("normal", 1000), ("bulk", 1000)], [30, 56, 14]),
        ([("urgent", 1000), ("urgent", 1000), ("bulk", 1000)], [47.5, 47.5, 5]),
        ([("bulk", 2), ("urgent", 1000)], [2, 98]),  # the floor is kept only for use
    ],
)
def test_the_tenant_rate_is_shared_by_priority(
    redis_url: str, jobs: list[tuple[str, float]], expected: list[float]
) -> None:
    assert run(shares(redis_url, jobs)) == pytest.approx(expected, abs=0.01)


def test_a_job_that_stops_asking_leaves_its_share_to_the_others(redis_url: str) -> None:
    async def main() -> tuple[float, float]:
        store = Store(redis_client(redis_url))
        org, a, b = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
        try:
            for job_id in (a, b):
                await store.redis.hset(keys.job(job_id), "status", "running")

            async def ask(job_id: str) -> float:
                asked = Ask(keys.tenant_rate("test", org), keys.job_rate(job_id), keys.job(job_id),
                            keys.tenant_shares("test", org), job_id, "normal", 100, 1000, 0.0, 1,
                            1.0, 100_000_000, 0)  # fmt: skip
                return (await store.reserve(asked)).share

            await ask(a)
            both = await ask(b)
            await asyncio.sleep(1.1)  # a asks no more (paused, waiting on reads): inactive
            return both, await ask(b)
        finally:
            await store.close()

    assert run(main()) == (50, 100)
