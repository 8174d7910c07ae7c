"""The real call path (``countermand.calls``) over the in-memory limiter stub, for provider and
call tests that run no Redis: one token per request, the retry policy, a stop flag."""

from __future__ import annotations

import asyncio

from countermand.calls import Caller, TargetCalls
from countermand.limiter import RateLimiter
from countermand.retry import RetryPolicy
from countermand.store import keys
from tests.limiter_stub import StubBackend

FAST_POLICY = RetryPolicy(
    attempts=3, total_delay=5, initial_wait=0.01, max_wait=0.05, retry_after_cap=1
)


def caller(
    job_id: str = "job",
    rate: float = 10_000,
    policy: RetryPolicy = FAST_POLICY,
    backend: StubBackend | None = None,
    stopped: asyncio.Event | None = None,
) -> tuple[Caller, StubBackend]:
    limits = backend or StubBackend()
    limits.runnable.add(keys.job(job_id))
    pacer = RateLimiter(limits, 0.0).pacer("test", "org", rate, job_id, rate)
    stop = stopped or asyncio.Event()
    return Caller(pacer, policy, asyncio.sleep, stop.is_set, vendor="test"), limits


def target_calls(job_id: str = "job") -> TargetCalls:
    return caller(job_id)[0].target()
