"""Process wiring: pool check, the per-process bridge, and reservations of received chunks."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import redis
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.signals import task_received, worker_init, worker_process_init, worker_process_shutdown

from countermand import keys
from countermand.scripts import Scripts
from countermand.settings import get_settings
from tasks.messages import CHUNK_TASK, ChunkMessage, reservation_token
from worker import bridge

log = logging.getLogger("countermand.worker")


class PoolRefused(RuntimeError):
    pass


@worker_init.connect
def _refuse_other_pools(sender: Any = None, **_: Any) -> None:
    pool = getattr(sender, "pool_cls", None)
    if pool is None or (isinstance(pool, type) and issubclass(pool, PreforkPool)):
        return
    raise PoolRefused(
        f"countermand needs the prefork pool (got {getattr(pool, '__name__', pool)}): each "
        "pool process runs one event loop with one HTTP session; threads, gevent, eventlet "
        "and solo pools cannot host that bridge"
    )


@worker_process_init.connect
def _start_process(**_: Any) -> None:
    from tasks.chunks import dispatch  # the task modules import this app: import them late
    from tasks.verify import dispatch_verify

    bridge.start(dispatch, dispatch_verify)


@worker_process_shutdown.connect
def _stop_process(**_: Any) -> None:
    bridge.stop()


@cache
def _sync_scripts() -> Scripts:
    return Scripts(redis.Redis.from_url(get_settings().redis_url, decode_responses=True))


@task_received.connect
def _reserve_chunk(request: Any = None, **_: Any) -> None:
    """In the worker's main process, as a chunk message arrives: hold the chunk for one lease
    period. If the whole host dies before the task starts, the lease expires and the reclaimer
    sends the chunk again instead of waiting for the broker's visibility timeout."""
    if request is None or request.name != CHUNK_TASK:
        return
    try:
        message = ChunkMessage.model_validate(request.args[0])
        ttl_ms = int(get_settings().lease_ttl * 1000)
        _sync_scripts().reserve(
            keys=[
                keys.job(message.job_id),
                keys.open_chunks(message.job_id),
                keys.leases(message.job_id),
                keys.owners(message.job_id),
            ],
            args=[message.chunk, reservation_token(request.id), ttl_ms],
        )
    except Exception:  # a missed reservation only slows recovery; never lose the message
        log.exception("could not reserve chunk of task %s", getattr(request, "id", "?"))
