"""``submit --verify``: read canceled commands back, a short while after the cancel.

A cancel answered 200 is recorded as ``canceled`` (or ``cancel_requested`` for Android, whose
cancel is best effort) and queued for a read; the job completes only once every read is in.
No worker waits idle meanwhile: the reads are due ``verify_delay`` seconds after the first
cancel of a job, and the reclaimer of any worker dispatches a verify task when they are due.
One verify pass per job at a time (a lock, renewed while it works; if its worker dies, the
job is due again after two lease periods).

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
import secrets
import time
from typing import cast

from countermand import keys
from countermand.engine import provider_for
from countermand.errors import CountermandError, TransientError
from countermand.models import Outcome, TargetResult
from countermand.providers import CallResult, get_spec
from countermand.providers.base import Target
from countermand.retry import RetryPolicy
from countermand.runtime import Runtime
from countermand.store import JobMeta


def verified(result: TargetResult, read: CallResult) -> TargetResult:
    """The result to keep once the read is in."""
    cls = read.outcome.value
    status = read.extra.get("status")
    extra = {**result.extra, "status": status, "verified": cls}
    outcome, message = result.outcome, result.error_message
    if read.outcome in (Outcome.NOT_FOUND, Outcome.REJECTED, Outcome.INVALID):
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
        message, extra,
    )  # fmt: skip


async def verifications_due(rt: Runtime) -> list[str]:
    now_s, _ = await rt.store.redis.time()
    due = await rt.store.redis.zrangebyscore(keys.VERIFY_DUE, "-inf", now_s)
    return cast(list[str], due)


async def verify_job(rt: Runtime, job_id: str) -> str:
    """Read back every target of the job awaiting verification; 'done', 'busy' or 'gone'."""
    redis, settings = rt.store.redis, rt.settings
    token, ttl_ms = secrets.token_hex(8), int(settings.lease_ttl * 1000)
    if not await redis.set(keys.verifier(job_id), token, nx=True, px=ttl_ms):
        return "busy"
    try:
        try:
            meta = await rt.store.meta(job_id)
        except CountermandError:
            await redis.zrem(keys.VERIFY_DUE, job_id)
            return "gone"
        now_s, _ = await redis.time()
        await redis.zadd(keys.VERIFY_DUE, {job_id: now_s + 2 * settings.lease_ttl})  # if we die
        reader = Reader(rt, meta)
        while indices := await redis.srandmember(keys.to_verify(job_id), settings.batch_size):
            await apply(rt, job_id, await reader.read(sorted(int(i) for i in indices)))
            await redis.pexpire(keys.verifier(job_id), ttl_ms)
    finally:
        if await redis.get(keys.verifier(job_id)) == token:
            await redis.delete(keys.verifier(job_id))
    return "done"


class Reader:
    """Reads targets of one job, paced by the job's tenant like its cancels were."""

    def __init__(self, rt: Runtime, meta: JobMeta) -> None:
        self.rt, self.meta = rt, meta
        self.spec = get_spec(meta.provider)
        self.provider = provider_for(rt, meta)
        limit = rt.settings.tenant_limit(self.spec.vendor, meta.org)
        self.pacer = rt.limiter.pacer(self.spec.vendor, meta.org, limit, meta.job_id, meta.rate)
        self.policy = RetryPolicy.from_settings(rt.settings)

    async def read(self, indices: list[int]) -> list[tuple[int, TargetResult]]:
        stored = await stored_results(self.rt, self.meta.job_id, indices)
        targets = await self.targets(indices)
        reads = await asyncio.gather(*(self.one(t) for t in targets))
        return [(i, verified(r, read)) for i, r, read in zip(indices, stored, reads, strict=True)]

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
        async def paced() -> CallResult:
            await self.pacer.wait_turn(asyncio.sleep)
            return await self.provider.read(target)

        try:
            return await self.policy.run(paced, asyncio.sleep)
        except TransientError as exc:
            return CallResult(Outcome.FAILED, exc.http_status, exc.error_code, exc.message)


async def stored_results(rt: Runtime, job_id: str, indices: list[int]) -> list[TargetResult]:
    async with rt.store.redis.pipeline(transaction=False) as pipe:
        for index in indices:
            pipe.hget(keys.results(job_id, keys.bucket_of(index)), str(index))
        raw = await pipe.execute()
    return [TargetResult.decode(value) for value in raw]


async def apply(rt: Runtime, job_id: str, results: list[tuple[int, TargetResult]]) -> None:
    lines = "\n".join(f"{index}\t{result.encode()}" for index, result in results)
    await rt.store.scripts.verify(
        keys=[keys.job(job_id), keys.ACTIVE],
        args=[job_id, keys.results(job_id, 0)[:-1], keys.BUCKET, lines],
    )
