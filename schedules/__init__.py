"""Celery beat schedules, run by ``countermand beat`` with RedBeat (schedule and lock in Redis):
however many beat processes run, one holds the lock and fires each entry; the others wait.
Chunk reclaiming does not need beat: it runs inside every worker process (worker/bridge.py)."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from countermand.cleanup import load_policies
from countermand.settings import Settings

RETRY_SWEEP_TASK = "countermand.retry_sweep.v1"  # tasks/retries.py
CLEANUP_TASK = "countermand.cleanup.v1"  # tasks/cleanup.py


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The retry sweep, and one entry per stale-cleanup policy that has a cron ``schedule``
    (read from ``COUNTERMAND_POLICIES_FILE`` when beat starts: restart beat after editing)."""
    entries: dict[str, dict[str, Any]] = {
        "retry-sweep": {
            "task": RETRY_SWEEP_TASK,
            "schedule": settings.retry_sweep_interval,
            "options": {"expires": settings.retry_sweep_interval},
        },
    }
    if settings.policies_file is not None and settings.policies_file.exists():
        for name, policy in load_policies(settings.policies_file).items():
            if policy.schedule:
                minute, hour, day, month, weekday = policy.schedule.split()
                entries[f"cleanup:{name}"] = {
                    "task": CLEANUP_TASK,
                    "schedule": crontab(minute, hour, weekday, day, month),
                    "args": [{"v": 1, "policy": name}],
                }
    return entries


__all__ = ["CLEANUP_TASK", "RETRY_SWEEP_TASK", "beat_schedule"]
