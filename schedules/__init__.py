"""Celery beat schedules, made by ``countermand beat`` (RedBeat: schedule and lock in Redis):
however many beat processes run, one holds the lock and fires each entry; the others wait.
Chunk reclaiming does not need beat: it runs inside every worker process
(``countermand.recovery``).

Cron schedules are parsed by Celery's own ``crontab``, the parser beat uses, so that what
``countermand cleanup check`` accepts, beat runs. A bad policy is logged and skipped: the
retry sweep and every good policy still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery.schedules import crontab

from countermand.cleanup import Policy, read_policies
from countermand.settings import Settings
from tasks.messages import CLEANUP_TASK, RETRY_SWEEP_TASK

log = logging.getLogger("countermand.beat")


def parse_cron(text: str) -> crontab:
    """``minute hour day-of-month month day-of-week`` (UTC) as Celery's crontab, or ValueError
    saying which field is wrong."""
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"{text!r} is not a cron schedule of 5 fields (m h dom mon dow)")
    minute, hour, day, month, weekday = fields
    names = ("minute", "hour", "day of month", "month", "day of week")
    for name, value, make in zip(names, fields, _FIELD_CHECKS, strict=True):
        try:
            make(value)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise ValueError(f"cron {text!r}: {name} {value!r}: {exc}") from exc
    return crontab(minute, hour, weekday, day, month)


_FIELD_CHECKS: tuple[Callable[[str], Any], ...] = (
    lambda v: crontab(minute=v),
    lambda v: crontab(hour=v),
    lambda v: crontab(day_of_month=v),
    lambda v: crontab(month_of_year=v),
    lambda v: crontab(day_of_week=v),
)


def cron_problem(policy: Policy, path: object) -> str | None:
    if policy.schedule is None:
        return None
    try:
        parse_cron(policy.schedule)
    except ValueError as exc:
        return f"policies file {path}: [policy.{policy.name}] schedule: {exc}"
    return None


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The retry sweep, and one entry per good stale-cleanup policy that has a ``schedule``
    (read from ``COUNTERMAND_POLICIES_FILE`` when beat starts: restart beat after editing)."""
    entries: dict[str, dict[str, Any]] = {
        "retry-sweep": {
            "task": RETRY_SWEEP_TASK,
            "schedule": settings.retry_sweep_interval,
            "options": {"expires": settings.retry_sweep_interval},
        },
    }
    if settings.policies_file is None:
        return entries
    found = read_policies(settings.policies_file)
    for problem in found.problems:
        log.error("skipping: %s", problem)
    for name, policy in found.policies.items():
        if policy.schedule is None:
            continue
        if bad := cron_problem(policy, settings.policies_file):
            log.error("skipping: %s", bad)
            continue
        entries[f"cleanup:{name}"] = {
            "task": CLEANUP_TASK,
            "schedule": parse_cron(policy.schedule),
            "args": [{"v": 1, "policy": name}],
        }
    return entries


__all__ = ["beat_schedule", "cron_problem", "parse_cron"]
