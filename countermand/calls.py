"""The one call path: every request to a vendor goes through a ``Caller``.

A cancel, a read, a list page, a search page, a discovery request, a verify read, a race
read-back: each is one ``send`` (build the request, sign it, exchange it, interpret the answer)
run by ``TargetCalls.__call__``, which for every try

1. starts nothing once the job stopped (pause, abort, abort threshold, lease lost),
2. waits for one limiter token of the tenant (``Pacer.wait_turn``), then checks the stop again,
3. spends the token and sends (so tokens spent equal requests sent, which a test checks
   against the simulator's count),
4. reports a 429 to the tenant's shared hold and adaptive rate, and records whether the try
   may have been applied without a definite answer (``TransientError.uncertain``),

all inside the retry policy (``countermand.retry``). Providers never send around it: they are
handed a ``TargetCalls`` for each target and call it once per request, naming its ``kind``
(``cancel``, ``read``, ``list``). Every request sent is counted here, and only here
(``countermand.metrics``: requests by outcome, duration, retries, 429s, limiter waits and
slots missed), and timed for the chunk run's ``Flow`` (``countermand.flow``: in flight follows
latency).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TypeVar

from countermand import metrics
from countermand.errors import Stopped, TransientError, UnreachableError
from countermand.flow import Flow
from countermand.limiter import Pacer
from countermand.retry import RetryPolicy, Sleep

T = TypeVar("T")
Send = Callable[[], Awaitable[T]]


class Caller:
    """The pacer, the retry policy and the stop of one piece of work (a chunk run, a verify
    pass, a discovery), shared by the targets it serves."""

    def __init__(
        self,
        pacer: Pacer,
        policy: RetryPolicy,
        nap: Sleep,
        stopped: Callable[[], bool],
        *,
        vendor: str,
        flow: Flow | None = None,
    ) -> None:
        self.pacer = pacer
        self.flow = flow  # a chunk run's: the latency its lanes are sized by
        self.policy = policy
        self.nap = nap
        self.stopped = stopped
        self.vendor = vendor  # the metrics' ``vendor`` label
        self.meter = metrics.meter(self.vendor)

    def target(self) -> TargetCalls:
        """A fresh tally for one target (or one discovery step)."""
        return TargetCalls(self)

    async def flush(self) -> None:
        """Report the tokens spent since the last reservation, and publish the request counts
        (end of the work)."""
        self.meter.publish()
        await self.pacer.flush()


class TargetCalls:
    """What the requests made for one target did: how many were sent, whether any got past
    connecting, and whether any may have been applied without a definite answer."""

    __slots__ = ("_caller", "made", "reached", "uncertain_tries")

    def __init__(self, caller: Caller) -> None:
        self._caller = caller
        self.made = 0  # requests sent
        self.reached = False  # any got past connecting
        self.uncertain_tries = 0  # tries that may have been applied without a definite answer

    async def __call__(self, send: Send[T], *, kind: str = "cancel") -> T:
        """Send one request through the policy: paced, retried, 429s shared, counted."""
        caller = self._caller
        meter = caller.meter
        tries = 0

        async def once() -> T:
            nonlocal tries
            if caller.stopped():
                raise Stopped
            waiting = perf_counter()
            missed = await caller.pacer.wait_turn(caller.nap)
            if caller.stopped():
                raise Stopped
            caller.pacer.spend()
            self.made += 1
            tries += 1
            started = perf_counter()
            meter.waited(started - waiting, missed)
            flow = caller.flow
            if flow is not None:
                flow.sent()
            try:
                answer = await send()
            except BaseException as exc:
                took = perf_counter() - started
                if flow is not None:
                    flow.answered(took)
                meter.failed(kind, exc, took, tries > 1)
                await self._failed(exc, kind)
                raise
            took = perf_counter() - started
            if flow is not None:
                flow.answered(took)
            meter.answered(kind, answer, took, tries > 1)
            self.reached = True
            return answer

        flow = caller.flow
        if flow is None:
            return await caller.policy.run(once, caller.nap)

        async def nap(seconds: float) -> None:
            # a lane asleep between tries is taken as surely as one waiting for an answer:
            # the flow counts it in flight, so lanes grow to keep the rate (``countermand.flow``)
            flow.holding(+1)
            try:
                await caller.nap(seconds)
            finally:
                flow.holding(-1)

        return await caller.policy.run(once, nap)

    async def _failed(self, exc: BaseException, kind: str) -> None:
        """Book a try that raised: past connecting or not, uncertain or not, a 429. Only a
        cancel can have been applied: a read or a list page that failed changes nothing."""
        if isinstance(exc, UnreachableError):
            return
        self.reached = True
        if isinstance(exc, TransientError):
            if kind == "cancel":
                self.uncertain_tries += exc.uncertain
            if exc.throttled:
                await self._caller.pacer.throttled(exc.retry_after)
