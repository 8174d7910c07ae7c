"""Human output on stderr: the live progress of ``--wait`` and the status summary."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from countermand.models import REMAINING, JobInfo, JobStatus
from countermand.store import Store

SETTLED = (JobStatus.COMPLETED, JobStatus.PAUSED, JobStatus.ABORTED)


def counts_text(info: JobInfo) -> str:
    parts = [f"{name} {n}" for name, n in info.counts.items() if n and name != REMAINING]
    return ", ".join(parts) or "nothing final yet"


class RateMeter:
    """Targets finished per second over the last few seconds."""

    def __init__(self, span: float = 5.0) -> None:
        self.span = span
        self.points: deque[tuple[float, int]] = deque()

    def add(self, done: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self.points.append((now, done))
        while len(self.points) > 2 and now - self.points[0][0] > self.span:
            self.points.popleft()
        (t0, d0), (t1, d1) = self.points[0], self.points[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0


async def follow(store: Store, job_id: str, console: Console, interval: float = 0.5) -> JobInfo:
    """Show progress until the job is completed, paused or aborted; return its last status."""
    meter = RateMeter()
    columns = (
        TextColumn("[bold]{task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f}/s"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("job", total=None, status="queued", rate=0.0, counts="")
        while True:
            info = await store.info(job_id)
            progress.update(
                task,
                total=info.total or None,
                completed=info.done,
                status=info.status.value,
                rate=meter.add(info.done),
                counts=counts_text(info),
            )
            if info.status in SETTLED and info.loaded:
                return info
            await asyncio.sleep(interval)


def summary(info: JobInfo) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    rows = [
        ("job", info.job_id),
        ("provider", f"{info.provider} (org {info.org})"),
        ("name", info.name or ""),
        ("status", info.status.value + (f" ({info.reason})" if info.reason else "")),
        ("detail", info.reason_detail or ""),
        ("targets", f"{info.total}" + ("" if info.loaded else " (still loading)")),
        ("rate", f"{info.rate:g}/s" + (" dry run" if info.dry_run else "")),
        ("priority", info.priority.value),
    ]
    if info.share is not None:
        rows.append(("share", f"{info.share:.4g}/s granted now"))
    if info.limited_by is not None:
        limited = info.limited_by.value
        if info.allowed_rate is not None:
            limited += f": in flight allows {info.allowed_rate:.4g}/s at the vendor's latency"
        rows.append(("limited by", limited))
    rows += [(name, str(n)) for name, n in info.counts.items() if n]
    if info.undecided:
        rows.append(("undecided", f"{info.undecided} (verified unknown: see the report)"))
    for key, value in rows:
        if value:
            table.add_row(key, Text(value))  # plain text: vendor messages may hold [brackets]
    return table
