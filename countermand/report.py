"""Per-target report rows: input columns, then the fixed columns, then provider extras.

The column order is a contract (README, "Report"): fixed columns are never reordered; new
provider-specific columns only ever go at the end.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import IO, Any

from countermand.models import TargetResult
from countermand.providers import get_spec
from countermand.store import Store, outcome_of

FIXED = (
    "outcome",
    "http_status",
    "error_code",
    "error_message",
    "attempts",
    "updated_at",
)


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else ""


async def report_records(store: Store, job_id: str) -> AsyncIterator[dict[str, Any]]:
    meta = await store.meta(job_id)
    spec = get_spec(meta.provider)
    async for row, result in store.report_rows(job_id):
        record: dict[str, Any] = dict(zip(meta.columns, row, strict=True))
        record.update(_fixed(result))
        extras = spec.report_extra(result.extra if result else {})
        record.update(zip(spec.extra_columns, extras, strict=True))
        yield record


def _fixed(result: TargetResult | None) -> dict[str, Any]:
    final = result if result is not None and result.final else None
    return {
        "outcome": outcome_of(result),
        "http_status": final.http_status if final else None,
        "error_code": final.error_code if final else None,
        "error_message": final.error_message if final else None,
        "attempts": result.attempts if result else 0,
        "updated_at": iso(result.updated_at) if result else "",
    }


async def header(store: Store, job_id: str) -> list[str]:
    meta = await store.meta(job_id)
    return [*meta.columns, *FIXED, *get_spec(meta.provider).extra_columns]


async def write_report(store: Store, job_id: str, out: IO[str], fmt: str) -> int:
    """Write the report as ``csv`` (with a header) or ``jsonl``; returns the row count."""
    columns = await header(store, job_id)
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    count = 0
    async for record in report_records(store, job_id):
        if writer is not None:
            writer.writerow({k: "" if v is None else v for k, v in record.items()})
        else:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count
