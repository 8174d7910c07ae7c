"""Streaming input: CSV with a header row, JSON Lines (``.jsonl``/``.ndjson``), or ``-`` for CSV
on stdin. Rows are yielded one at a time, so memory stays flat whatever the file size.

Rules (README, "Input"): a CSV header that lacks a required column is a usage error before
anything is queued; an empty cell or a missing JSON key makes only that row ``invalid``; a JSON
line that is not an object, or a value that is not a string or an integer, is ``invalid`` with
its line number; columns the provider does not use are ignored with one warning.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from countermand.errors import InputError, UsageError
from countermand.providers import ProviderSpec

Warn = Callable[[str], None]


@dataclass(slots=True)
class InputRow:
    line: int
    values: dict[str, str | None]  # provider columns only
    problem: str | None = None  # set when the row cannot be read at all


def is_jsonl(name: str) -> bool:
    return name.endswith((".jsonl", ".ndjson"))


def open_input(name: str) -> IO[str]:
    if name == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
    try:
        return open(Path(name), encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise UsageError(f"{name}: cannot read: {exc.strerror or exc}") from exc


def read_rows(name: str, stream: IO[str], spec: ProviderSpec, warn: Warn) -> Iterator[InputRow]:
    """Rows of the provider's columns, in input order. Header problems raise ``InputError``."""
    wanted = [c.name for c in spec.columns]
    if is_jsonl(name):
        return _jsonl_rows(name, stream, wanted, warn)
    return _csv_rows(name, stream, spec, wanted, warn)


def _csv_rows(
    name: str, stream: IO[str], spec: ProviderSpec, wanted: list[str], warn: Warn
) -> Iterator[InputRow]:
    reader = csv.reader(stream)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputError(f"{name}: line 1", "empty file: a header row is required") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InputError(f"{name}: line 1", f"unreadable header: {exc}") from exc
    if problem := spec.header_problem(header):
        raise InputError(f"{name}: line 1", f"{problem} (found: {', '.join(header) or 'none'})")
    extra = [h for h in header if h not in wanted]
    if extra:
        warn(f"{name}: ignoring column(s) not used by {spec.name}: {', '.join(extra)}")
    positions = {col: header.index(col) for col in wanted if col in header}
    return _csv_body(name, reader, positions, wanted)


def _csv_body(
    name: str, reader: Iterator[list[str]], positions: dict[str, int], wanted: list[str]
) -> Iterator[InputRow]:
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{name}: line {line + 1}", f"unreadable CSV: {exc}") from exc
        line += 1
        if not cells:
            continue  # blank line
        values: dict[str, str | None] = dict.fromkeys(wanted)
        for col, pos in positions.items():
            if pos < len(cells):
                values[col] = cells[pos].strip()
        yield InputRow(line, values)


def _jsonl_rows(name: str, stream: IO[str], wanted: list[str], warn: Warn) -> Iterator[InputRow]:
    warned: set[str] = set()
    for line, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        values: dict[str, str | None] = dict.fromkeys(wanted)
        try:
            obj = json.loads(text)
        except ValueError as exc:
            yield InputRow(line, values, f"not valid JSON: {exc}")
            continue
        if not isinstance(obj, dict):
            yield InputRow(line, values, "expected a JSON object")
            continue
        unknown = set(obj) - set(wanted) - warned
        if unknown:
            warned |= unknown
            warn(f"{name}: line {line}: ignoring key(s) {', '.join(sorted(unknown))}")
        problem = None
        for col in wanted:
            value = obj.get(col)
            if isinstance(value, str):
                values[col] = value.strip()
            elif isinstance(value, int) and not isinstance(value, bool):
                values[col] = str(value)
            elif value is not None and problem is None:
                problem = f"{col} must be a string, got {type(value).__name__}"
        yield InputRow(line, values, problem)
