"""The one adapter from the core's ``Dispatch`` port to Celery: tasks are sent by name.

Only this module and the interfaces (the CLI, the HTTP API) touch Celery; the core hands work
over through ``countermand.jobs.Dispatch``. The app is passed in (the CLI's and the workers'
``worker.app.app``), so this module imports no task and no app module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasks.messages import CHUNK_TASK, VERIFY_TASK, ChunkMessage, Queue, VerifyMessage


class CeleryDispatch:
    def __init__(self, app: Any) -> None:
        self._app = app

    def chunks(self, job_id: str, chunks: Sequence[int]) -> None:
        """One message per chunk, over one broker connection."""
        payloads = [ChunkMessage(job_id=job_id, chunk=c).model_dump() for c in chunks]
        self._send(CHUNK_TASK, payloads)

    def verify(self, job_ids: Sequence[str]) -> None:
        self._send(VERIFY_TASK, [VerifyMessage(job_id=j).model_dump() for j in job_ids])

    def _send(self, name: str, payloads: Sequence[dict[str, Any]]) -> None:
        if not payloads:
            return
        with self._app.producer_or_acquire() as producer:
            for payload in payloads:
                self._app.send_task(
                    name, args=[payload], queue=Queue.CHUNKS.value, producer=producer
                )


def celery_dispatch() -> CeleryDispatch:
    """The adapter over the project's Celery app (imported here, late, for the interfaces)."""
    from worker.app import app

    return CeleryDispatch(app)
