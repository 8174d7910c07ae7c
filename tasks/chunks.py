"""The chunk task: a shim from a versioned message to ``countermand.engine.run_chunk``.

Names and payloads are versioned (``countermand.chunk.v1`` with ``{"v": 1, ...}``): a rolling
upgrade that changes the payload adds a ``.v2`` task beside this one, and producers switch to it
only once every worker knows it, so no worker misreads a queued message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from countermand.engine import run_chunk as run_chunk_core
from countermand.keys import Queue
from worker import bridge
from worker.app import app

CHUNK_TASK = "countermand.chunk.v1"


class ChunkMessage(BaseModel):
    v: Literal[1] = 1
    job_id: str = Field(min_length=1, max_length=64)
    chunk: int = Field(ge=0)


def reservation_token(task_id: str) -> str:
    return f"rsv:{task_id}"


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
