"""The chunk task: a shim from a versioned message to ``countermand.engine.run_chunk``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from countermand.engine import run_chunk as run_chunk_core
from countermand.keys import Queue
from tasks.messages import CHUNK_TASK, ChunkMessage, reservation_token
from worker import bridge
from worker.app import app


@app.task(
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
    return bridge.run(lambda rt: run_chunk_core(rt, message.job_id, message.chunk, token))


def dispatch(job_id: str, chunks: Sequence[int]) -> None:
    """Queue one message per chunk, over one broker connection."""
    with app.producer_or_acquire() as producer:
        for chunk in chunks:
            run_chunk.apply_async(
                args=[ChunkMessage(job_id=job_id, chunk=chunk).model_dump()],
                queue=Queue.CHUNKS.value,
                producer=producer,
            )
