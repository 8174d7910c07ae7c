"""Shared 429 feedback in Redis: holds and adaptive rate, on the Redis server's clock."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from countermand.limiter import Adaptation, RateLimiter, tenant_state
from countermand.store import redis_client
from tests.conftest import run


async def _limiter(url: str, adaptation: Adaptation) -> tuple[RateLimiter, object]:
    from countermand.scripts import Scripts

    client = redis_client(url)
    return RateLimiter(Scripts(client), 0.0, adaptation), client


def test_retry_after_holds_the_tenant_for_every_pacer(redis_url: str) -> None:
    async def main() -> None:
        limiter, client = await _limiter(redis_url, Adaptation())
        org = uuid.uuid4().hex
        one = limiter.pacer("test", org, 100, "job-a", 100)
        other = limiter.pacer("test", org, 100, "job-b", 100)  # another job, same tenant
        await one.wait_turn(asyncio.sleep)
        await one.throttled(retry_after=0.5)
        state = await tenant_state(client, "test", org)
        assert state.hold_until is not None and state.hold_until > time.time()
        started = time.monotonic()
        await other.wait_turn(asyncio.sleep)  # a pacer that never saw the 429 waits too
        assert time.monotonic() - started >= 0.45
        await client.aclose()  # type: ignore[attr-defined]

    run(main())


def test_429_without_retry_after_halves_once_per_burst_then_recovers(redis_url: str) -> None:
    async def main() -> None:
        adaptation = Adaptation(factor=0.5, cooldown_s=10, floor=1, recovery=1.0)
        limiter, client = await _limiter(redis_url, adaptation)
        org = uuid.uuid4().hex
        pacer = limiter.pacer("test", org, 100, "job", 1000)
        await pacer.wait_turn(asyncio.sleep)
        for _ in range(5):  # one burst of 429s is one signal
            await pacer.throttled(retry_after=None)
        state = await tenant_state(client, "test", org)
        assert state.effective_rate == pytest.approx(50)
        started = time.monotonic()
        await pacer.next_slot(asyncio.sleep)  # recovery: +100% of the limit per second
        elapsed = time.monotonic() - started
        assert 50 < pacer.effective_rate <= 50 + 100 * (elapsed + 0.05)
        await client.aclose()  # type: ignore[attr-defined]

    run(main())


def test_rate_never_below_the_floor(redis_url: str) -> None:
    async def main() -> None:
        limiter, client = await _limiter(redis_url, Adaptation(factor=0.1, cooldown_s=0, floor=7))
        org = uuid.uuid4().hex
        pacer = limiter.pacer("test", org, 100, "job", 100)
        for _ in range(4):
            await pacer.throttled(retry_after=None)
        assert (await tenant_state(client, "test", org)).effective_rate == pytest.approx(7)
        await client.aclose()  # type: ignore[attr-defined]

    run(main())
