"""Task names, queue names and message models: the one vocabulary producers and tasks share.

Callers send by name (``countermand.dispatch``), so the sending side imports no task module.
Names and payloads are versioned: a rolling upgrade that changes a payload adds a ``.v2`` task
beside the old one, and producers switch to it only once every worker knows it, so no worker
misreads a queued message. A payload whose ``v`` is unknown fails validation and is dropped with
an error in the worker log (retrying it could never succeed).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

VERIFY_TASK = "countermand.verify.v1"
RETRY_SWEEP_TASK = "countermand.retry_sweep.v1"
CLEANUP_TASK = "countermand.cleanup.v1"


class Queue(StrEnum):
    """Celery queue names (the name is kept from when chunks went through the broker: they no
    longer do, see ``countermand.runner``)."""

    CHUNKS = "countermand.chunks"


class VerifyMessage(BaseModel):
    v: Literal[1] = 1
    job_id: str = Field(min_length=1, max_length=64)


class CleanupMessage(BaseModel):
    v: Literal[1] = 1
    policy: str = Field(min_length=1, max_length=64)
