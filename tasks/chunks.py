"""The chunk task: a shim from a versioned message to ``countermand.engine.run_chunk``; and, in
the worker's main process, the reservation of a chunk whose message was just received."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import task_received
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from countermand import bridge
from countermand.engine import run_chunk as run_chunk_core
from countermand.settings import get_settings
from countermand.store.reservations import reserve_chunk
from tasks.messages import CHUNK_TASK, ChunkMessage, reservation_token

log = logging.getLogger("countermand.worker")


@shared_task(
    name=CHUNK_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(RedisConnectionError, RedisTimeoutError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=None,
)
def run_chunk(self: Any, payload: dict[str, Any]) -> str:
    message = ChunkMessage.model_validate(payload)
    token = reservation_token(self.request.id)
    return bridge.run(lambda rt, _: run_chunk_core(rt, message.job_id, message.chunk, token))


@task_received.connect
def _reserve_chunk(request: Any = None, **_: Any) -> None:
    """As a chunk message arrives: hold the chunk for one lease period. If the whole host dies
    before the task starts, the lease expires and the reclaimer sends the chunk again instead of
    waiting for the broker's visibility timeout."""
    if request is None or request.name != CHUNK_TASK:
        return
    try:
        message = ChunkMessage.model_validate(request.args[0])
        settings = get_settings()
        ttl_ms = int(settings.lease_ttl * 1000)
        token = reservation_token(request.id)
        reserve_chunk(settings.redis_url, message.job_id, message.chunk, token, ttl_ms)
    except Exception:  # a missed reservation only slows recovery; never lose the message
        log.exception("could not reserve chunk of task %s", getattr(request, "id", "?"))
