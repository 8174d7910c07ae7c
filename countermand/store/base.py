"""The connection under the store: one client per process, and the epoch check on every connect.

Epoch: Redis run with ``appendfsync everysec`` (or a replica promoted by Sentinel) may come
back without the last second of writes. Every new connection asks the server for its
``run_id`` (``INFO server``) and runs ``epoch.lua`` before the connection carries anything
else: when the run id differs from the one stored, the change is recorded (``cm:epoch``,
``changed_at``). A job created before that time reads back every "too late" answer, because
the mark of an attempt that may have reached the vendor could be among the lost writes
(``begin.lua``; README, "Outcomes under faults").
"""

from __future__ import annotations

import logging
from typing import Any

import redis
import redis.sentinel
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.asyncio.sentinel import Sentinel

from countermand.settings import RedisTarget
from countermand.store import keys
from countermand.store.lua import Scripts, source
from countermand.store.outage import patient_options

log = logging.getLogger("countermand.store")


def _run_id(info: Any) -> str:
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith("run_id:"):
            return line.split(":", 1)[1].strip()
    return ""


async def check_epoch(connection: Connection) -> None:
    """``redis_connect_func`` of every connection: the usual handshake, then the epoch."""
    await connection.on_connect()
    await connection.send_command("INFO", "server")
    run_id = _run_id(await connection.read_response())
    if not run_id:
        return
    await connection.send_command("EVAL", source("epoch"), 2, keys.EPOCH, keys.JOBS, run_id)
    if int(await connection.read_response()):
        # info: the outage itself was the warning (``countermand.store.outage``)
        log.info("Redis server changed (restart or failover): jobs read back late answers")


# The one factory of Redis clients: the store's (async), and plain sync ones. A URL alone, or,
# with sentinels, the master found through them: the client asks the sentinels again after
# every lost connection, so it follows a failover. A sentinel that hangs must not hang us.
SENTINEL_TIMEOUTS = {"socket_timeout": 5.0, "socket_connect_timeout": 2.0}


def redis_client(target: RedisTarget | str, grace: float | None = None) -> Redis:
    """The store's client: decoded answers, a health check, the epoch check on every connect;
    with ``grace``, commands ride out a Redis outage of up to that many seconds
    (``countermand.store.outage``)."""
    return async_client(
        target,
        decode_responses=True,
        health_check_interval=30,
        redis_connect_func=check_epoch,
        **(patient_options(grace) if grace is not None else {}),
    )


def async_client(target: RedisTarget | str, **options: Any) -> Redis:
    """An asyncio client with ``options`` (``redis_client`` gives the store's)."""
    where = RedisTarget(target) if isinstance(target, str) else target
    if not where.sentinels:
        return Redis.from_url(where.url, **options)
    manager = Sentinel(where.sentinels, **_sentinel_kwargs(where))  # type: ignore[no-untyped-call]
    client: _AsyncMaster = manager.master_for(
        str(where.master), redis_class=_AsyncMaster, **options
    )
    client.manager = manager
    return client


def sync_client(target: RedisTarget | str, **options: Any) -> redis.Redis:
    """A plain synchronous client (no epoch check): tools, tests and benchmarks."""
    where = RedisTarget(target) if isinstance(target, str) else target
    if not where.sentinels:
        return redis.Redis.from_url(where.url, **options)
    manager = redis.sentinel.Sentinel(where.sentinels, **_sentinel_kwargs(where))  # type: ignore[no-untyped-call]
    client: _SyncMaster = manager.master_for(  # type: ignore[no-untyped-call]
        str(where.master), redis_class=_SyncMaster, **options
    )
    client.manager = manager
    return client


def _sentinel_kwargs(where: RedisTarget) -> dict[str, Any]:
    """The sentinels' own connections (timeouts, TLS), then the master's (the URL's options)."""
    sentinel = {**SENTINEL_TIMEOUTS, **where.sentinel_options()}
    return {"sentinel_kwargs": sentinel, **where.server_options()}


class _AsyncMaster(Redis):
    """A master's client that closes its sentinels' connections with its own."""

    manager: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.manager is not None:
            await self.manager.aclose()


class _SyncMaster(redis.Redis):
    manager: redis.sentinel.Sentinel | None = None

    def close(self) -> None:
        super().close()
        if self.manager is not None:
            for client in self.manager.sentinels:
                client.close()


class StoreBase:
    """What every part of the store shares: the client and its registered scripts."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.scripts = Scripts(redis)

    async def close(self) -> None:
        await self.redis.aclose()
