"""``submit --verify``: read canceled commands back, a short while after the cancel.

A cancel answered 200 is recorded as ``canceled`` (or ``cancel_requested`` for Android, whose
cancel is best effort) and queued for a read; the job completes only once every read is in.
No worker waits idle meanwhile: the reads are due ``verify_delay`` seconds after the first
cancel of a job, and the reclaimer of any worker dispatches a verify task when they are due.
One verify pass per job at a time (the store's fenced lock, renewed while it works; if its
worker dies, the job is due again after two lease periods). Every read goes through the one
call path (one limiter token each, 429s shared); a pause or abort stops the pass.

What a read changes (the vendor's status is always kept in ``vendor_status`` and the state
class in the report's ``verified`` column):

- ``cancel_requested`` reading ``canceled`` becomes ``canceled``; reading ``done`` or
  ``errored`` (the command finished anyway) becomes ``not_pending``; still ``pending`` stays
  ``cancel_requested``.
- ``canceled`` stays ``canceled``; a read that does not say canceled (still pending, or done)
  is reported in ``verified`` and ``error_message``, not hidden.
"""

from __future__ import annotations

import asyncio
import time

from countermand.errors import JobNotFound, JobStop, Stopped, TransientError
from countermand.models import Outcome, TargetResult
from countermand.providers import CallResult, Provider, provider_for
from countermand.providers.base import Target
from countermand.runtime import Runtime
from countermand.store import JobMeta
from countermand.work import JobWork


def verified(result: TargetResult, read: CallResult) -> TargetResult:
    """The result to keep once the read is in."""
    cls = read.outcome.value
    status = read.extra.get("status")
    extra = {**result.extra, "status": status, "verified": cls}
    outcome, message = result.outcome, result.error_message
    if read.outcome in (Outcome.NOT_FOUND, Outcome.REJECTED, Outcome.INVALID, Outcome.FAILED):
        message = f"verify: the read answered {cls}: {read.error_message}"
    elif result.outcome is Outcome.CANCEL_REQUESTED:
        if read.outcome is Outcome.CANCELED:
            outcome = Outcome.CANCELED
        elif read.outcome in (Outcome.DONE, Outcome.ERRORED):
            outcome, message = Outcome.NOT_PENDING, f"verify: the command finished ({status})"
    elif read.outcome is not Outcome.CANCELED:
        message = f"verify: the cancel was confirmed but the command reads {cls} ({status})"
    return TargetResult(
        outcome, result.attempts, int(time.time()), result.http_status, result.error_code,
        message, extra, result.uncertain_since,
    )  # fmt: skip


async def verify_job(rt: Runtime, job_id: str) -> str:
    """Read back every target of the job awaiting verification; 'done', 'busy' or 'gone'."""
    store, settings = rt.store, rt.settings
    lock = store.verifier_lock(job_id, settings.lease_ttl)
    if not await lock.take():
        return "busy"
    try:
        try:
            meta = await store.meta(job_id)
        except JobNotFound:
            await store.forget_verify(job_id)
            return "gone"
        await store.verify_again_in(job_id, 2 * settings.lease_ttl)  # if this pass dies
        reader = Reader(rt, meta)
        async with reader.work.running():
            while indices := await store.awaiting_verify(job_id, settings.batch_size):
                results = await reader.read(indices)
                await reader.work.caller.flush()
                lines = "\n".join(f"{index}\t{result.encode()}" for index, result in results)
                await store.apply_verified(job_id, lines)
                if not await lock.renew():
                    break
    except (Stopped, JobStop):
        return "stopped"  # paused or aborted meanwhile: resume dispatches the reads again
    finally:
        await lock.release()
    return "done"


class Reader:
    """Reads targets of one job through the call path, paced by the job's tenant like its
    cancels were."""

    def __init__(self, rt: Runtime, meta: JobMeta) -> None:
        self.rt, self.meta = rt, meta
        self.work = JobWork(rt, meta.job_id, meta.provider, meta.org, meta.rate, meta.priority)
        self.spec = self.work.spec
        self.provider: Provider = provider_for(self.spec, meta.org, rt.wiring)

    async def read(self, indices: list[int]) -> list[tuple[int, TargetResult]]:
        stored = await self.rt.store.results_of(self.meta.job_id, indices)
        targets = await self.targets(indices)
        reads = await asyncio.gather(*(self.one(t) for t in targets))
        return [
            (i, verified(r, read))
            for i, r, read in zip(indices, stored, reads, strict=True)
            if r is not None
        ]

    async def targets(self, indices: list[int]) -> list[Target]:
        size, rows_of = self.meta.chunk_size, {}
        for chunk in {index // size for index in indices}:
            rows_of[chunk] = await self.rt.store.chunk_rows(self.meta.job_id, chunk)
        return [
            self.spec.validate(dict(zip(self.meta.columns, rows_of[i // size][i % size],
                                        strict=True)))
            for i in indices
        ]  # fmt: skip

    async def one(self, target: Target) -> CallResult:
        try:
            return await self.provider.read(target, self.work.caller.target())
        except TransientError as exc:
            return CallResult(Outcome.FAILED, exc.http_status, exc.error_code, exc.message)
