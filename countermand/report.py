"""Per-target report rows: input columns, then the fixed columns, then provider extras.

The column order is a contract (README, "Report"): fixed columns are never reordered; new
provider-specific columns only ever go at the end. The CLI writes the lines to a file or stdout,
the HTTP API streams them; both read the same records, chunk by chunk.
"""

from __future__ import annotations

import csv
import io
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
FORMATS = ("csv", "jsonl")


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else ""


async def report_records(
    store: Store, job_id: str, start: int = 0
) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """(target index, record) of every target from ``start``, in input order."""
    meta = await store.meta(job_id)
    spec = get_spec(meta.provider)
    first_chunk = start // meta.chunk_size
    index = first_chunk * meta.chunk_size - 1
    async for row, result in store.report_rows(job_id, first_chunk=first_chunk):
        index += 1
        if index < start:
            continue
        record: dict[str, Any] = dict(zip(meta.columns, row, strict=True))
        record.update(_fixed(result))
        extras = spec.report_extra(result.extra if result else {})
        record.update(zip(spec.extra_columns, extras, strict=True))
        yield index, record


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


async def report_lines(store: Store, job_id: str, fmt: str) -> AsyncIterator[str]:
    """The report as ``csv`` (a header line first) or ``jsonl``, line by line."""
    columns = await header(store, job_id)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    if fmt == "csv":
        writer.writeheader()
        yield _drain(buffer)
    async for _, record in report_records(store, job_id):
        if fmt == "csv":
            writer.writerow({k: "" if v is None else v for k, v in record.items()})
            yield _drain(buffer)
        else:
            yield json.dumps(record, ensure_ascii=False) + "\n"


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


async def write_report(store: Store, job_id: str, out: IO[str], fmt: str) -> int:
    """Write the report as ``csv`` (with a header) or ``jsonl``; returns the row count."""
    count = -1 if fmt == "csv" else 0
    async for line in report_lines(store, job_id, fmt):
        out.write(line)
        count += 1
    return count


async def find_targets(
    store: Store,
    job_id: str,
    *,
    outcome: str | None,
    query: str | None,
    start: int,
    limit: int,
    scan: int = 20_000,
) -> tuple[list[dict[str, Any]], int | None]:
    """Targets from index ``start`` whose outcome is ``outcome`` and whose input cells contain
    ``query`` (case-insensitive), at most ``limit``; at most ``scan`` targets are read per call.
    Returns them (each with its ``index``) and where to go on (None: the end)."""
    meta = await store.meta(job_id)
    wanted = query.lower() if query else None
    found: list[dict[str, Any]] = []
    last = start - 1
    async for index, record in report_records(store, job_id, start):
        last = index
        cells = (str(record.get(c) or "") for c in meta.columns)
        if (outcome is None or record["outcome"] == outcome) and (
            wanted is None or any(wanted in cell.lower() for cell in cells)
        ):
            found.append({"index": index, **record})
            if len(found) >= limit:
                break
        if index - start + 1 >= scan:
            break
    return found, (last + 1 if last + 1 < meta.total else None)
