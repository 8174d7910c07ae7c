"""Chunk messages: the versioned payload of ``countermand.chunk.v1``.

Names and payloads are versioned: a rolling upgrade that changes the payload adds a ``.v2`` task
beside this one, and producers switch to it only once every worker knows it, so no worker
misreads a queued message. A payload whose ``v`` is unknown fails validation and is dropped with
an error in the worker log (retrying it could never succeed).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

CHUNK_TASK = "countermand.chunk.v1"


class ChunkMessage(BaseModel):
    v: Literal[1] = 1
    job_id: str = Field(min_length=1, max_length=64)
    chunk: int = Field(ge=0)


def reservation_token(task_id: str) -> str:
    """The lease owner a worker writes when it receives a chunk's message (see reserve.lua)."""
    return f"rsv:{task_id}"
