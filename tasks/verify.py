"""The verify task: a shim over ``countermand.verify.verify_job`` (``submit --verify``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from countermand.keys import Queue
from countermand.verify import verify_job
from worker import bridge
from worker.app import app

VERIFY_TASK = "countermand.verify.v1"


class VerifyMessage(BaseModel):
    v: Literal[1] = 1
    job_id: str = Field(min_length=1, max_length=64)


@app.task(name=VERIFY_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def verify(self: Any, payload: dict[str, Any]) -> str:
    message = VerifyMessage.model_validate(payload)
    return bridge.run(lambda rt: verify_job(rt, message.job_id))


def dispatch_verify(job_ids: Sequence[str]) -> None:
    with app.producer_or_acquire() as producer:
        for job_id in job_ids:
            verify.apply_async(
                args=[VerifyMessage(job_id=job_id).model_dump()],
                queue=Queue.CHUNKS.value,
                producer=producer,
            )
