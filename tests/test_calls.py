"""The one call path: a token per request, retries, 429s shared, stops honoured (stub limiter)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from countermand.errors import Stopped, TransientError, Unauthorized
from countermand.store import keys
from tests.callpath import caller
from tests.conftest import run

TENANT = keys.tenant_rate("test", "org")


def failing_then(*errors: Exception) -> Callable[[], Awaitable[str]]:
    """A send that raises ``errors`` one per try, then answers "ok"."""
    pending = iter(errors)

    async def send() -> str:
        error = next(pending, None)
        if error is not None:
            raise error
        return "ok"

    return send


def test_every_request_spends_exactly_one_token() -> None:
    async def main() -> None:
        path, limits = caller()
        sent = 0

        async def send() -> int:
            nonlocal sent
            sent += 1
            return sent

        for _ in range(7):
            await path.target()(send)
        await path.flush()
        assert sent == 7 and limits.tenants[TENANT].tokens == 7

    run(main())


def test_retries_count_requests_and_uncertain_tries() -> None:
    async def main() -> None:
        path, limits = caller()
        send = failing_then(TransientError("timed out"), TransientError("refused", uncertain=False))
        call = path.target()
        assert await call(send) == "ok"
        assert (call.made, call.uncertain_tries, call.reached) == (3, 1, True)
        await path.flush()
        assert limits.tenants[TENANT].tokens == 3

    run(main())


@pytest.mark.parametrize(("kind", "uncertain"), [("cancel", 1), ("read", 0), ("list", 0)])
def test_only_a_cancel_can_have_been_applied(kind: str, uncertain: int) -> None:
    """A read or a list page that timed out changed nothing: it leaves the target certain."""

    async def main() -> None:
        path, _limits = caller()
        call = path.target()
        assert await call(failing_then(TransientError("timed out")), kind=kind) == "ok"
        assert (call.made, call.uncertain_tries) == (2, uncertain)

    run(main())


def test_a_429_holds_the_tenant_and_uses_no_attempt() -> None:
    async def main() -> None:
        path, limits = caller()
        throttled = [TransientError("429", http_status=429, throttled=True, retry_after=0.05)] * 4

        async def send() -> str:
            if throttled:
                raise throttled.pop()
            return "ok"

        call = path.target()
        assert await call(send) == "ok"  # 4 throttled tries, more than the 3 attempts
        assert call.made == 5 and call.uncertain_tries == 0
        assert limits.tenants[TENANT].hold > 0

    run(main())


def test_nothing_is_sent_once_the_job_stopped() -> None:
    async def main() -> None:
        stop = asyncio.Event()
        path, limits = caller(stopped=stop)
        sent = 0

        async def send() -> None:
            nonlocal sent
            sent += 1
            stop.set()  # the job stops while this request is on the wire
            raise TransientError("503", http_status=503)

        call = path.target()
        with pytest.raises(Stopped):
            await call(send)
        await path.flush()
        assert sent == 1 and call.made == 1  # the call on the wire finished; no retry started
        assert limits.tenants[TENANT].tokens == 1

    run(main())


def test_a_job_the_limiter_finds_stopped_gets_no_request() -> None:
    async def main() -> None:
        path, limits = caller()
        limits.runnable.clear()  # paused in Redis: the limiter refuses the slot

        async def send() -> None:
            raise AssertionError("must not be sent")

        with pytest.raises(Stopped):
            await path.target()(send)

    run(main())


def test_a_job_stop_from_the_vendor_is_not_retried() -> None:
    async def main() -> None:
        path, _ = caller()
        tries = 0

        async def send() -> None:
            nonlocal tries
            tries += 1
            raise Unauthorized("bad token", http_status=401)

        with pytest.raises(Unauthorized):
            await path.target()(send)
        assert tries == 1

    run(main())
