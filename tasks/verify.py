"""The verify task: a shim over ``countermand.verify.verify_job`` (``submit --verify``)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from countermand import bridge
from countermand.verify import verify_job
from tasks.messages import VERIFY_TASK, VerifyMessage


@shared_task(name=VERIFY_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def verify(self: Any, payload: dict[str, Any]) -> str:
    message = VerifyMessage.model_validate(payload)
    return bridge.run(lambda rt, _: verify_job(rt, message.job_id))
