"""The limiter's backend: its contract (``LimiterBackend``; an in-memory stub runs the same
tests in ``tests/test_limiter.py``), its Redis implementation (reservations, 429 holds and rate
cuts, tokens spent), and what ``status`` shows of a tenant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from countermand.store import keys
from countermand.store.base import StoreBase


@dataclass(frozen=True, slots=True)
class Adaptation:
    """How 429s without Retry-After lower a tenant's rate, and how it recovers."""

    factor: float = 0.5  # multiplicative decrease per 429 burst
    cooldown_s: float = 1.0  # one decrease per this long, however many 429s arrive
    floor: float = 0.5  # requests/s, never lower
    recovery: float = 0.05  # fraction of the limit regained per second without 429s


@dataclass(frozen=True, slots=True)
class Ask:
    """One reservation request."""

    tenant_key: str
    job_key: str
    meta_key: str
    share_key: str
    job_id: str
    priority: str
    limit: float
    rate: float
    headroom: float
    n: int
    increase: float  # requests/s regained per second
    horizon_us: int
    spent: int  # tokens spent since the last report


@dataclass(frozen=True, slots=True)
class Reservation:
    wait_us: int  # until the first slot
    spacing_us: int  # 0: refused (beyond the horizon), ask again later
    effective_rate: float
    held_us: int  # until the tenant's hold ends (0: none)
    stopped: bool  # the job is not runnable: no slot
    share: float = 0.0  # requests/s the tenant grants the job now


class LimiterBackend(Protocol):
    async def reserve(self, ask: Ask) -> Reservation: ...

    async def throttle(
        self, tenant_key: str, retry_after_us: int, limit: float, adaptation: Adaptation
    ) -> None: ...

    async def report_tokens(self, tenant_key: str, tokens: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Share:
    """A job's part of its tenant's rate, as the limiter granted it last."""

    rate: float  # requests/s
    by_job_rate: bool  # its own --rate bounds it (else the tenant's rate, shared)


@dataclass(frozen=True, slots=True)
class TenantState:
    tenant: str
    limit: float | None  # as the workers last applied it
    effective_rate: float | None
    hold_until: float | None  # unix seconds


@dataclass(frozen=True, slots=True)
class TenantSeen(TenantState):
    throttled_last_minute: int = 0  # 429s in the last 60 s (two minute buckets, prorated)
    throttled_total: int = 0  # 429s ever (as long as the tenant's hash lives)


class TenantsStore(StoreBase):
    async def reserve(self, ask: Ask) -> Reservation:
        wait_us, spacing_us, effective, held_us, stopped, share = await self.scripts.limiter(
            keys=[ask.tenant_key, ask.job_key, ask.meta_key, ask.share_key],
            args=[
                ask.limit,
                ask.rate,
                ask.headroom,
                ask.n,
                ask.increase,
                ask.horizon_us,
                ask.spent,
                ask.job_id,
                ask.priority,
            ],
        )
        return Reservation(
            int(wait_us),
            int(spacing_us),
            float(effective),
            int(held_us),
            bool(int(stopped)),
            float(share),
        )

    async def throttle(
        self, tenant_key: str, retry_after_us: int, limit: float, adaptation: Adaptation
    ) -> None:
        await self.scripts.throttle(
            keys=[tenant_key],
            args=[
                retry_after_us,
                limit,
                adaptation.factor,
                adaptation.floor,
                int(adaptation.cooldown_s * 1e6),
            ],
        )

    async def report_tokens(self, tenant_key: str, tokens: int) -> None:
        await self.scripts.tokens(keys=[tenant_key], args=[tokens])

    async def tokens_spent(self, vendor: str, org: str) -> int:
        """Requests sent for a tenant, as the limiter counted them (every process reports)."""
        raw = await self.redis.hget(keys.tenant_rate(vendor, org), "tokens")
        return int(raw or 0)

    async def tenant_state(self, vendor: str, org: str) -> TenantState:
        """What ``status`` shows of a tenant: its effective rate and any hold."""
        name = keys.tenant_rate(vendor, org)
        lim, eff, hold = await self.redis.hmget(name, ["lim", "eff", "hold"])
        now_s, now_us = await self.redis.time()
        hold_at = float(hold) / 1e6 if hold else None
        if hold_at is not None and hold_at <= now_s + now_us / 1e6:
            hold_at = None
        return TenantState(
            tenant=f"{vendor}:{org}",
            limit=float(lim) if lim else None,
            effective_rate=float(eff) if eff else None,
            hold_until=hold_at,
        )

    async def job_share(self, vendor: str, org: str, job_id: str) -> Share | None:
        """The requests/s the tenant granted the job at its last ask, while the job is active
        (``lua/limiter.lua`` says until when), and whether its own rate is what bounds it."""
        raw = await self.redis.hget(keys.tenant_shares(vendor, org), job_id)
        if not raw:
            return None
        _priority, _rate, active_until_us, share, bound = str(raw).split("|")
        now_s, now_us = await self.redis.time()
        if now_s * 1e6 + now_us > float(active_until_us):
            return None
        return Share(float(share), by_job_rate=bound == "job")

    async def tenants(self, limit: int = 10_000) -> list[TenantSeen]:
        """Every tenant the limiter has seen (its hashes ``cm:rl:<vendor>:<org>``)."""
        prefix = keys.tenant_rate("", "")[:-1]  # "cm:rl:"
        jobs = keys.job_rate("")[: -len("{}")]  # "cm:rl:job:"
        names: list[str] = []
        async for name in self.redis.scan_iter(match=prefix + "*", count=1000):
            if not str(name).startswith(jobs):
                names.append(str(name))
            if len(names) >= limit:
                break
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hmget(name, ["lim", "eff", "hold", "m429", "c429", "p429", "t429"])
            rows = await pipe.execute()
        now_s, now_us = await self.redis.time()
        now = now_s + now_us / 1e6
        return sorted(
            (_seen(name[len(prefix) :], row, now) for name, row in zip(names, rows, strict=True)),
            key=lambda t: t.tenant,
        )


def _seen(tenant: str, row: list[str | None], now: float) -> TenantSeen:
    lim, eff, hold, m429, c429, p429, t429 = row
    hold_at = float(hold) / 1e6 if hold else None
    minute, into = divmod(now, 60)
    seen = int(m429 or -1)
    current = int(c429 or 0) if seen == int(minute) else 0
    before = int(p429 or 0) if seen == int(minute) else int(c429 or 0) if seen == minute - 1 else 0
    return TenantSeen(
        tenant=tenant,
        limit=float(lim) if lim else None,
        effective_rate=float(eff) if eff else None,
        hold_until=hold_at if hold_at is not None and hold_at > now else None,
        throttled_last_minute=round(current + before * (1 - into / 60)),
        throttled_total=int(t429 or 0),
    )
