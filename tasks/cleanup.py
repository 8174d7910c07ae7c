"""The scheduled cleanup task: a shim over ``countermand.cleanup.run_scheduled``.

Acknowledged late: a worker that dies mid-discovery leaves the message to be delivered again,
and the slot's lock (released on failure, expiring if the process died) lets it run once."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from countermand import bridge
from countermand.cleanup import run_scheduled
from tasks.messages import CLEANUP_TASK, CleanupMessage


@shared_task(
    name=CLEANUP_TASK, bind=True, ignore_result=True, acks_late=True, reject_on_worker_lost=True
)
def cleanup(self: Any, payload: dict[str, Any]) -> str | None:
    message = CleanupMessage.model_validate(payload)
    return bridge.run(lambda rt, _: run_scheduled(rt, message.policy))
