"""The store: the one gate to Redis (arq's ``ArqRedis`` is the model). Callers never build a
key or call a raw command; each part of the store owns the keys it touches:

* ``JobsStore`` (``jobs``): create and stage jobs, status objects, transitions, retry
  rounds, report rows, purge;
* ``TenantsStore`` (``tenants``): the limiter's backend and a tenant's state;
* ``WorkStore`` (``work``): reclaiming, --verify reads, cleanup slots, the fenced lock, the
  events channel;
* ``AccessStore`` (``access``): API keys (digests only), dashboard sessions, idempotency keys;
* ``AuditStore`` (``audit``): the audit stream;
* ``OutboxStore`` (``outbox``): the webhook outbox.

The per-chunk books of a worker are a ``Ledger`` made by ``ledger()``.
"""

from __future__ import annotations

from countermand.settings import RedisTarget
from countermand.store.access import AccessStore
from countermand.store.audit import AuditStore
from countermand.store.base import redis_client
from countermand.store.jobs import JobsStore
from countermand.store.ledger import Ledger
from countermand.store.outbox import OutboxStore
from countermand.store.stats import StatsStore
from countermand.store.tenants import TenantsStore
from countermand.store.work import WorkStore


class Store(JobsStore, TenantsStore, WorkStore, AccessStore, AuditStore, OutboxStore, StatsStore):
    @classmethod
    def connect(cls, url: RedisTarget | str, grace: float | None = None) -> Store:
        """A store over a new client of ``url`` (a URL, or ``settings.redis``: with Sentinel,
        the master found through the sentinels); no I/O until the first command. With
        ``grace``, commands ride out a Redis outage that long (``countermand.store.outage``)."""
        return cls(redis_client(url, grace))

    def ledger(self, job_id: str, chunk: int, owner: str, expire_at_ms: int) -> Ledger:
        return Ledger(self.scripts, job_id, chunk, owner, expire_at_ms)
