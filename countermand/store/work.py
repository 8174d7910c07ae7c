"""Background work in Redis: reclaiming dead owners' chunks, --verify reads that are due,
scheduled cleanup slots, and the events channel that tells workers a job stopped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from countermand.models import JobStatus
from countermand.store import keys
from countermand.store.base import StoreBase
from countermand.store.locks import FencedLock


class WorkStore(StoreBase):
    def lock(self, key: str, ttl_s: float, token: str | None = None) -> FencedLock:
        return FencedLock(self.scripts, key, ttl_s, token)

    # --- reclaiming ---------------------------------------------------------------------------

    async def take_reclaim_turn(self, interval: float) -> bool:
        """True for at most one process across all hosts per ``interval`` seconds."""
        return await self.lock(keys.RECLAIM_LOCK, interval).take()

    async def reclaim_expired(self, per_job: int = 500) -> list[tuple[str, int]]:
        """Chunks of runnable jobs whose lease expired; their leases are dropped for re-dispatch."""
        flat = await self.scripts.reclaim(keys=[keys.ACTIVE], args=[per_job])
        return [(str(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]

    # --- --verify -----------------------------------------------------------------------------

    async def verifications_due(self) -> list[str]:
        now_s, _ = await self.redis.time()
        return cast(list[str], await self.redis.zrangebyscore(keys.VERIFY_DUE, "-inf", now_s))

    def verifier_lock(self, job_id: str, ttl_s: float) -> FencedLock:
        return self.lock(keys.verifier(job_id), ttl_s)

    async def verify_again_in(self, job_id: str, seconds: float) -> None:
        """If this verify pass dies, the job's reads are due again after ``seconds``."""
        now_s, _ = await self.redis.time()
        await self.redis.zadd(keys.VERIFY_DUE, {job_id: now_s + seconds})

    async def forget_verify(self, job_id: str) -> None:
        await self.redis.zrem(keys.VERIFY_DUE, job_id)

    async def awaiting_verify(self, job_id: str, count: int) -> list[int]:
        raw = await self.redis.srandmember(keys.to_verify(job_id), count)
        return sorted(int(i) for i in raw or [])

    async def apply_verified(self, job_id: str, lines: str) -> None:
        await self.scripts.verify(
            keys=[keys.job(job_id), keys.ACTIVE],
            args=[job_id, keys.results_prefix(job_id), keys.BUCKET, lines],
        )

    # --- scheduled cleanup --------------------------------------------------------------------

    async def redis_minute(self) -> int:
        now_s, _ = await self.redis.time()
        return int(now_s) // 60

    def cleanup_slot_lock(self, policy: str, minute: int, ttl_s: float) -> FencedLock:
        return self.lock(keys.cleanup_slot(policy, minute), ttl_s)

    async def last_cleanup_job(self, policy: str) -> str | None:
        return cast(str | None, await self.redis.get(keys.cleanup_last(policy)))

    async def set_last_cleanup_job(self, policy: str, job_id: str, ttl_s: float) -> None:
        await self.redis.set(keys.cleanup_last(policy), job_id, px=max(1, int(ttl_s * 1000)))

    # --- events -------------------------------------------------------------------------------

    def stop_events(self) -> Any:
        """A pub/sub client subscribed (on first use) to the channel that announces stops."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        return pubsub

    async def statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hget(keys.job(job_id), "status")
            raw = await pipe.execute()
        return {j: JobStatus(s) if s else None for j, s in zip(job_ids, raw, strict=True)}
