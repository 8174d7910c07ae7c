"""An in-memory ``LimiterBackend``: the same GCRA with reservations, holds and adaptive rate
as ``lua/limiter.lua`` and ``lua/throttle.lua``, on an injected clock. The limiter's contract
tests run over it and over Redis (dramatiq's parametrised ``rate_limiter_backend`` fixture)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from countermand.store.tenants import Adaptation, Ask, Reservation


@dataclass
class _Tenant:
    tat: float = 0.0
    hold: float = 0.0
    eff: float | None = None
    upd: float = 0.0
    dec: float = -1e18
    tokens: int = 0


@dataclass
class StubBackend:
    clock: Callable[[], float] = time.time  # seconds
    runnable: set[str] = field(default_factory=set)  # job meta keys that may have slots
    tenants: dict[str, _Tenant] = field(default_factory=dict)
    jobs: dict[str, float] = field(default_factory=dict)

    async def reserve(self, ask: Ask) -> Reservation:
        tenant = self.tenants.setdefault(ask.tenant_key, _Tenant())
        tenant.tokens += ask.spent
        if ask.meta_key not in self.runnable:
            return Reservation(0, 0, 0.0, 0, True)
        now = self.clock() * 1e6
        eff = ask.limit if tenant.eff is None else tenant.eff
        if eff < ask.limit:
            eff = min(ask.limit, eff + ask.increase * (now - tenant.upd) / 1e6)
        ti = 1e6 / (eff * (1 - ask.headroom))
        share = min(ask.rate, eff) * (1 - ask.headroom)  # one job per tenant here
        tj = 1e6 / share
        start = max(now, tenant.tat, tenant.hold, self.jobs.get(ask.job_key, 0.0))
        held = int(max(0.0, tenant.hold - now))
        if start - now > ask.horizon_us:
            return Reservation(int(start - now), 0, eff, held, False, share)
        spacing = max(ti, tj)
        last = start + (ask.n - 1) * spacing
        tenant.tat, tenant.eff, tenant.upd = last + ti, eff, now
        self.jobs[ask.job_key] = last + tj
        return Reservation(int(start - now), int(spacing), eff, held, False, share)

    async def throttle(
        self, tenant_key: str, retry_after_us: int, limit: float, adaptation: Adaptation
    ) -> None:
        tenant = self.tenants.setdefault(tenant_key, _Tenant())
        now = self.clock() * 1e6
        if retry_after_us > 0:
            tenant.hold = max(tenant.hold, now + retry_after_us)
        elif now - tenant.dec >= adaptation.cooldown_s * 1e6:
            eff = limit if tenant.eff is None else min(tenant.eff, limit)
            tenant.eff = max(adaptation.floor, eff * adaptation.factor)
            tenant.upd = tenant.dec = now

    async def report_tokens(self, tenant_key: str, tokens: int) -> None:
        self.tenants.setdefault(tenant_key, _Tenant()).tokens += tokens
