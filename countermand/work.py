"""One piece of work on a job (a chunk run, a verify pass, a cleanup discovery): its stop and
its call path, made the same way for all of them.

``JobWork.running()`` watches the job for stops (``countermand.watch``) and, at the end,
reports the limiter tokens it spent; ``caller`` is the one paced, retried call path
(``countermand.calls``) with a nap that ends early when the job stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from countermand.calls import Caller
from countermand.errors import Stopped
from countermand.models import Priority
from countermand.providers import get_spec
from countermand.retry import RetryPolicy
from countermand.runtime import Runtime

SHORT_NAP = 0.05


async def until(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``event``; whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


class JobWork:
    def __init__(
        self,
        rt: Runtime,
        job_id: str,
        provider: str,
        org: str,
        rate: float,
        priority: Priority = Priority.NORMAL,
    ) -> None:
        self.rt = rt
        self.job_id = job_id
        self.spec = get_spec(provider)
        self.stop = asyncio.Event()
        limit = rt.settings.tenant_limit(self.spec.vendor, org)
        self.pacer = rt.limiter.pacer(
            self.spec.vendor, org, limit, job_id, rate, priority=priority.value
        )
        self.policy = RetryPolicy.from_settings(rt.settings)
        self.caller = Caller(
            self.pacer, self.policy, self.nap, self.stop.is_set, vendor=self.spec.vendor
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        with self.rt.watch.watch(self.job_id, self.stop):
            try:
                yield
            finally:
                if self.stop.is_set():
                    self.pacer.drop_slots()
                await self.caller.flush()

    async def nap(self, delay: float) -> None:
        """Sleep, unless the job stops first (short naps just sleep: cheaper, and the stop is
        seen right after)."""
        if self.stop.is_set():
            raise Stopped
        if delay <= SHORT_NAP:
            await asyncio.sleep(max(delay, 0))
            return
        if await until(self.stop, delay):
            raise Stopped
