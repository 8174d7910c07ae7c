"""Work in Redis: claiming chunks, reclaiming dead owners' chunks, --verify reads that are due,
scheduled cleanup slots, and the channels that tell workers a job stopped or has work."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from countermand.models import JobStatus
from countermand.store import keys
from countermand.store.base import StoreBase
from countermand.store.locks import FencedLock


class WorkStore(StoreBase):
    def lock(self, key: str, ttl_s: float, token: str | None = None) -> FencedLock:
        return FencedLock(self.scripts, key, ttl_s, token)

    # --- claiming chunks -----------------------------------------------------------------------

    async def claim(
        self,
        owner: str,
        lease_ms: int,
        default_want: int,
        runner: str,
        runner_ms: int,
        mine: dict[str, int],
    ) -> tuple[str, int] | None:
        """The chunk this runner should work next, its lease taken for ``owner``
        (``lua/claim.lua``); None when nothing is to be claimed now. The same ``owner``
        again (a retry after a lost answer) gets the same chunk, never a second one."""
        answer = await self.scripts.claim(
            keys=[keys.ACTIVE, keys.RUNNERS, keys.claimed(owner)],
            args=[owner, lease_ms, default_want, runner, runner_ms, json.dumps(mine)],
        )
        return (str(answer[0]), int(answer[1])) if answer else None

    async def leave(self, runner: str) -> None:
        """The runner stops claiming: the others' parts of each job grow at once."""
        await self.redis.zrem(keys.RUNNERS, runner)

    async def want(self, job_id: str, want: int, ceiling_rate: float | None = None) -> int | None:
        """Set how many chunks the job should hold at once (and, when a worker's in-flight
        ceiling binds, the rate it allows); the chunks it holds now (None: the job is gone)."""
        limited = "" if ceiling_rate is None else f"{ceiling_rate:.3f}"
        held = int(await self.scripts.want(keys=[keys.job(job_id), keys.leases(job_id)],
                                           args=[job_id, want, limited]))  # fmt: skip
        return None if held < 0 else held

    async def ceiling_rate(self, job_id: str, fresh_s: float = 5.0) -> float | None:
        """The rate a worker's in-flight ceiling allowed the job, if one said so lately."""
        rate, at_ms = await self.redis.hmget(keys.job(job_id), ["ceiling_rate", "ceiling_at"])
        if not rate or not at_ms:
            return None
        now_s, now_us = await self.redis.time()
        age_ms = now_s * 1000 + now_us / 1000 - float(at_ms)
        return float(rate) if age_ms <= fresh_s * 1000 else None

    # --- reclaiming ---------------------------------------------------------------------------

    async def take_reclaim_turn(self, interval: float) -> bool:
        """True for at most one process across all hosts per ``interval`` seconds."""
        return await self.lock(keys.RECLAIM_LOCK, interval).take()

    async def reclaim(self, per_job: int = 500) -> list[tuple[str, int]]:
        """Make ready again the chunks of runnable jobs that nobody holds (expired leases are
        dropped); each job with how many chunks that made ready."""
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
