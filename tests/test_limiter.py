"""The Redis limiter: real Redis, several processes pacing against one tenant."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid

from countermand.limiter import RateLimiter, batch_size
from countermand.scripts import Scripts
from countermand.simulator.control import max_in_window
from countermand.store import redis_client
from tests.conftest import run


async def paced_sends(
    url: str, tenant: str, job: str, tenant_rate: float, job_rate: float, n: int
) -> list[float]:
    client = redis_client(url)
    try:
        limiter = RateLimiter(Scripts(client), headroom=0.03)
        pacer = limiter.pacer("test", tenant, tenant_rate, job, job_rate)
        sent = []
        for _ in range(n):
            await pacer.wait_turn(asyncio.sleep)
            sent.append(time.time())
        return sent
    finally:
        await client.aclose()


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


def test_one_process_slots_are_evenly_spaced(redis_url: str) -> None:
    tenant, job = uuid.uuid4().hex, uuid.uuid4().hex
    sent = run(paced_sends(redis_url, tenant, job, 1000, 50, 26))
    span = sent[-1] - sent[0]
    assert span >= 25 / 50  # never faster than the job's rate
    assert span < 25 / 50 * 1.5  # and not needlessly slow


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
