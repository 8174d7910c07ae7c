"""Riding out a Redis outage: a restart, a failover, a network blip.

The long-lived processes (workers, beat, the API) and the CLI's ``--wait`` keep going through
an outage by themselves. Their store client retries every command that failed to reach Redis
(a connection refused, reset or timed out) with a capped backoff (``BACKOFF_BASE`` doubling up
to ``BACKOFF_CAP`` seconds), for up to ``redis_grace`` seconds from the command's first failure
(COUNTERMAND_REDIS_GRACE, 60 s by default); past it the error reaches the caller, as it would
at once without this. So work resumes within ``BACKOFF_CAP`` of Redis answering again, and
no chunk waits for its lease to expire.

A command retried after its connection broke may have run before the break: the store's writes
are made so that running one twice changes nothing (a result is recorded once per target, a
lease renewal is the same lease, a claim answers from its record what it took); a limiter
reservation made twice only reserves slots that go unused (under the limit, never over it) and
counts the tokens it reports twice.

Each process logs an outage once: one warning when a first command fails, one info line when
a command succeeds again, with how long Redis was away. The one-shot CLI commands do not wait:
Redis unreachable is exit 3 at once (``countermand.cli``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

log = logging.getLogger("countermand.store")

T = TypeVar("T")
BACKOFF_BASE = 0.05
BACKOFF_CAP = 0.5
FOREVER = 10**9  # retries: the grace, not a count, ends them


SETTLE = 5.0  # seconds after Redis answered again in which a failure is the same outage


class Outage:
    """This process's view of Redis: away since when, if it is (one per process).

    After a restart each pooled connection fails once more as it is first used ("Connection
    closed by server"), and commands already on the wire may still be answered while Redis is
    away: failures within ``SETTLE`` seconds of Redis answering belong to the same outage, which
    is told once: a warning when it starts, an info line when Redis answers again."""

    since: float | None = None
    _began = 0.0  # when the last outage began
    _answered = -SETTLE  # when Redis last answered after an outage

    @classmethod
    def lost(cls, error: BaseException, grace: float) -> None:
        if cls.since is not None:
            return
        now = time.monotonic()
        if now - cls._answered < SETTLE:
            cls.since = cls._began  # the same outage, still settling
            return
        cls.since = cls._began = now
        log.warning("Redis unreachable (%s); retrying for up to %.0fs", _brief(error), grace)

    @classmethod
    def back(cls) -> None:
        if cls.since is None:
            return
        now = time.monotonic()
        if now - cls._answered >= SETTLE:
            log.info("Redis answers again after %.1fs", now - cls.since)
        cls.since, cls._answered = None, now


def _brief(error: BaseException) -> str:
    """The error's class and first line: never a URL (it may carry a password)."""
    text = str(error).splitlines()[0] if str(error) else ""
    if "://" in text:
        text = ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Patient(Retry):
    """redis-py's retry policy, bounded by time (``grace``) instead of a count, and telling
    ``Outage`` what it sees."""

    def __init__(self, grace: float) -> None:
        super().__init__(
            ExponentialBackoff(cap=BACKOFF_CAP, base=BACKOFF_BASE),
            FOREVER,
            (ConnectionError, TimeoutError),  # redis-py's own: it turns OSError into these
        )
        self.grace = grace

    def __deepcopy__(self, memo: dict[int, Any]) -> Patient:
        return Patient(self.grace)  # the client copies its retry policy

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        failures = 0
        first = 0.0
        while True:
            try:
                result = await do()
            except self._supported_errors as error:
                if is_retryable and not is_retryable(error):
                    raise
                failures += 1
                await (fail(error, failures) if with_failure_count else fail(error))
                now = time.monotonic()
                first = first or now
                Outage.lost(error, self.grace)
                if now - first >= self.grace:
                    raise
                await asyncio.sleep(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(failures, 10)))
            else:
                if Outage.since is not None:
                    Outage.back()
                return result


def patient_options(grace: float) -> dict[str, Any]:
    """Client options of a process that rides out outages of up to ``grace`` seconds."""
    return {
        "retry": Patient(grace),
        "socket_connect_timeout": 2.0,
        "socket_keepalive": True,
    }
