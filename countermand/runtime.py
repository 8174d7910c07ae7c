"""What one worker process owns for its whole life: made once, used by every chunk it runs.

One Redis store, one vendor ``Transport`` (the vendor calls' keep-alive connections, across
chunks: ``countermand.providers.transport``), one ``aiohttp.ClientSession`` (webhooks), one rate
limiter with its pacers, one credential store, the stop watch (the events channel), the flows
that size in flight from latency (``countermand.flow``), and per-process caches (EnOS tokens).
It must be opened and closed on the same event loop: ``countermand.bridge`` does that in each
Celery pool process; the CLI, the tests and the benchmarks do it under ``asyncio.run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp

from countermand.credentials import CredentialStore
from countermand.flow import Flows
from countermand.limiter import RateLimiter
from countermand.providers import Wiring
from countermand.providers.transport import Timeouts, Transport
from countermand.settings import Settings
from countermand.store import Store
from countermand.store.tenants import Adaptation
from countermand.watch import StopWatch


@dataclass
class Runtime:
    settings: Settings
    store: Store
    transport: Transport
    session: aiohttp.ClientSession  # webhooks; vendor calls go through ``transport``
    credentials: CredentialStore
    limiter: RateLimiter
    timeout: Timeouts
    watch: StopWatch
    flows: Flows
    shared: dict[Any, Any] = field(default_factory=dict)

    @classmethod
    async def open(cls, settings: Settings) -> Runtime:
        store = Store.connect(settings.redis, settings.redis_grace)
        # Room for every lane under the ceiling, and for verify, discovery and token calls.
        transport = Transport(limit=settings.in_flight_ceiling + 64)
        session = aiohttp.ClientSession(raise_for_status=False)
        watch = StopWatch(store)
        watch.start()
        return cls(
            settings=settings,
            store=store,
            transport=transport,
            session=session,
            credentials=CredentialStore(settings),
            limiter=RateLimiter(
                store,
                settings.rate_headroom,
                Adaptation(
                    factor=settings.throttle_factor,
                    cooldown_s=settings.throttle_cooldown,
                    floor=settings.throttle_floor,
                    recovery=settings.rate_recovery,
                ),
            ),
            timeout=Timeouts(total=settings.http_timeout, connect=settings.connect_timeout),
            watch=watch,
            flows=Flows(store, settings.in_flight_ceiling, settings.concurrency),
        )

    @property
    def wiring(self) -> Wiring:
        return Wiring(self.settings, self.credentials, self.transport, self.timeout, self.shared)

    async def close(self) -> None:
        await self.flows.close()
        await self.watch.close()
        await self.session.close()
        await self.transport.close()
        await self.store.close()
