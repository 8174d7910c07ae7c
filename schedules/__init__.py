"""Celery beat schedules, run by ``countermand beat`` with RedBeat (schedule and lock in Redis):
however many beat processes run, one holds the lock and fires each entry; the others wait.
Chunk reclaiming does not need beat: it runs inside every worker process (worker/bridge.py)."""

from __future__ import annotations

from typing import Any

from countermand.settings import Settings

RETRY_SWEEP_TASK = "countermand.retry_sweep.v1"  # tasks/retries.py


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "retry-sweep": {
            "task": RETRY_SWEEP_TASK,
            "schedule": settings.retry_sweep_interval,
            "options": {"expires": settings.retry_sweep_interval},
        },
    }


__all__ = ["RETRY_SWEEP_TASK", "beat_schedule"]
