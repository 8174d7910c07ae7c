"""The scheduled retry sweep: a shim over ``countermand.jobs.retry_due``.

Beat runs it every ``retry_sweep_interval``; each due ``--auto-retry`` round starts exactly once
(the round number is checked in the same script that re-queues the targets)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from countermand import bridge
from countermand.jobs import retry_due
from tasks.messages import RETRY_SWEEP_TASK


@shared_task(name=RETRY_SWEEP_TASK, bind=True, ignore_result=True, acks_late=False)
def retry_sweep(self: Any) -> list[str]:
    return bridge.run(lambda rt, _: retry_due(rt.store))
