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

from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from countermand.store import keys
from countermand.store.lua import Scripts, source

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
        log.warning("Redis server changed (restart or failover): jobs read back late answers")


def redis_client(url: str) -> Redis:
    return Redis.from_url(
        url, decode_responses=True, health_check_interval=30, redis_connect_func=check_epoch
    )


class StoreBase:
    """What every part of the store shares: the client and its registered scripts."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.scripts = Scripts(redis)

    async def close(self) -> None:
        await self.redis.aclose()
