"""The webhook outbox: job events queued by the scripts that make them (completed, paused,
aborted), claimed, delivered and retried by the notifier (``countermand.webhooks``)."""

from __future__ import annotations

from countermand.store import keys
from countermand.store.base import StoreBase


class OutboxStore(StoreBase):
    async def claim_webhooks(self, count: int, lease_s: float) -> list[tuple[str, str, str]]:
        """Due events as (member, job id, event), each held ``lease_s`` for this notifier."""
        members = await self.scripts.webhooks(
            keys=[keys.WEBHOOKS_DUE, keys.WEBHOOK_TRIES], args=["claim", count, lease_s]
        )
        claimed = []
        for member in members:
            job_id, event, _seq = str(member).split("|")
            claimed.append((str(member), job_id, event))
        return claimed

    async def webhook_delivered(self, member: str) -> None:
        await self.scripts.webhooks(
            keys=[keys.WEBHOOKS_DUE, keys.WEBHOOK_TRIES], args=["done", member]
        )

    async def webhook_tries(self, member: str) -> int:
        return int(await self.redis.hget(keys.WEBHOOK_TRIES, member) or 0)

    async def webhook_failed(self, member: str, delay_s: float, max_tries: int) -> bool:
        """Count a failed try; True when the event is given up (``max_tries`` reached)."""
        _tries, dropped = await self.scripts.webhooks(
            keys=[keys.WEBHOOKS_DUE, keys.WEBHOOK_TRIES],
            args=["again", member, delay_s, max_tries],
        )
        return bool(int(dropped))
