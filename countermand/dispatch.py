"""The one adapter from the core's ``Dispatch`` port to Celery: tasks are sent by name.

The core hands work to Celery only through ``countermand.jobs.Dispatch``: the --verify passes
the reclaimer finds due. Chunks never go through the broker (runners claim them from Redis,
``countermand.runner``), so neither the CLI nor the HTTP API sends a Celery message. The app is
passed in (the workers' ``worker.app.app``), so this module imports no task and no app module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasks.messages import VERIFY_TASK, Queue, VerifyMessage


class CeleryDispatch:
    def __init__(self, app: Any) -> None:
        self._app = app

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
