"""The scheduled cleanup task: a shim over ``countermand.cleanup.run_scheduled``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from countermand.cleanup import run_scheduled
from schedules import CLEANUP_TASK
from tasks.chunks import dispatch
from worker import bridge
from worker.app import app


class CleanupMessage(BaseModel):
    v: Literal[1] = 1
    policy: str = Field(min_length=1, max_length=64)


@app.task(name=CLEANUP_TASK, bind=True, ignore_result=True, acks_late=False)
def cleanup(self: Any, payload: dict[str, Any]) -> str | None:
    message = CleanupMessage.model_validate(payload)
    return bridge.run(lambda rt: run_scheduled(rt, message.policy, dispatch))
