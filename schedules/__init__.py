"""Celery beat schedules. The core issue runs no periodic task (chunk reclaiming runs inside
every worker process, see ``worker/bridge.py``); retry rounds and stale-command cleanup add
their entries here."""

from __future__ import annotations

from typing import Any

from countermand.settings import Settings


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    del settings
    return {}


__all__ = ["beat_schedule"]
