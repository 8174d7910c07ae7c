"""The retry policy's waits, with an injected sleep: no real sleeping."""

from __future__ import annotations

import pytest

from countermand.errors import TransientError
from countermand.retry import RetryPolicy
from tests.conftest import run

POLICY = RetryPolicy(attempts=4, total_delay=100, initial_wait=1, max_wait=5, retry_after_cap=30)


async def drive(
    policy: RetryPolicy, errors: list[TransientError | None]
) -> tuple[int, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    calls = 0

    async def attempt() -> None:
        nonlocal calls
        error = errors[calls]
        calls += 1
        if error is not None:
            raise error

    await policy.run(attempt, sleep)
    return calls, slept


def test_retry_after_is_honoured_and_capped() -> None:
    calls, slept = run(
        drive(
            POLICY,
            [TransientError("429", retry_after=7), TransientError("429", retry_after=99), None],
        )
    )
    assert calls == 3
    assert slept == [7, 30]


def test_exponential_backoff_with_jitter_stays_within_bounds() -> None:
    errors: list[TransientError | None] = [TransientError("503")] * 3 + [None]
    calls, slept = run(drive(POLICY, errors))
    assert calls == 4
    # multiplier 1, base 2, jitter up to 1: 1..2, 2..3, 4..5 (each capped at max 5)
    for wait, low in zip(slept, (1, 2, 4), strict=True):
        assert low <= wait <= min(low + 1, 5)


def test_other_errors_are_not_retried() -> None:
    async def main() -> None:
        async def attempt() -> None:
            raise ValueError("a bug, not a transient error")

        await POLICY.run(attempt, _no_sleep)

    with pytest.raises(ValueError):
        run(main())


async def _no_sleep(_: float) -> None:
    raise AssertionError("must not sleep")


def test_attempts_are_bounded_then_the_error_surfaces() -> None:
    with pytest.raises(TransientError, match="still down"):
        run(drive(POLICY, [TransientError("still down")] * 10))


def test_total_waiting_is_bounded() -> None:
    policy = RetryPolicy(
        attempts=50, total_delay=10, initial_wait=1, max_wait=5, retry_after_cap=30
    )
    slept: list[float] = []

    async def main() -> None:
        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        async def attempt() -> None:
            raise TransientError("429", retry_after=4)

        await policy.run(attempt, sleep)

    with pytest.raises(TransientError):
        run(main())
    assert slept == [4, 4]  # a third wait would make 12 > 10


def test_429s_use_no_attempt_but_their_own_budget() -> None:
    policy = RetryPolicy(
        attempts=2, total_delay=100, initial_wait=1, max_wait=5, retry_after_cap=30,
        throttle_total_delay=10,
    )  # fmt: skip
    errors: list[TransientError | None] = [
        TransientError("429", http_status=429, retry_after=3, throttled=True),
        TransientError("429", http_status=429, retry_after=3, throttled=True),
        TransientError("503", http_status=503),
        TransientError("429", http_status=429, retry_after=3, throttled=True),
        None,
    ]
    calls, slept = run(drive(policy, errors))
    assert calls == 5  # 2 attempts allowed, yet three 429s did not use them up
    assert slept[:2] == [3, 3] and slept[3] == 3


def test_throttle_budget_ends_a_429_storm() -> None:
    policy = RetryPolicy(
        attempts=2, total_delay=100, initial_wait=1, max_wait=5, retry_after_cap=30,
        throttle_total_delay=10,
    )  # fmt: skip
    with pytest.raises(TransientError, match="429"):
        throttled = TransientError("429", http_status=429, retry_after=4, throttled=True)
        run(drive(policy, [throttled] * 10))
