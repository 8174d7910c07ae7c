"""Streaming input: CSV with a header row, JSON Lines (``.jsonl``/``.ndjson``), or ``-`` for CSV
on stdin. Rows are yielded one at a time, so memory stays flat whatever the file size.

Rules (README, "Input"):

- The file is read as bytes and split into physical lines at each LF byte; a CR LF ending is one
  line end. Every line number Countermand prints is a physical line, counted from 1: the line an
  editor shows, also inside a quoted CSV field that spans lines.
- Every line must be UTF-8; a UTF-8 byte-order mark at the very start is dropped.
- The whole file is refused (a usage error, exit 2) with ``FILE: line N: what is wrong`` for:
  a UTF-16 or UTF-32 byte-order mark at the start; bytes that are not UTF-8 (the message gives
  their position in the line, counted from 1, and their values); a NUL byte; a line longer than
  4 MiB (4,194,304 bytes); and in a CSV file: no header row (an empty file), a header lacking a
  required column, a header naming a column twice, a quoted field that is never closed (named by
  the line where it opens), a closing quote followed by anything but a comma or the line end, a
  CR inside an unquoted field, a field longer than 1 MiB (1,048,576 characters), a record longer
  than 4 MiB over its lines.
- CSV: the header is the first non-blank record; header names and cells are stripped of
  whitespace; quoted fields may span lines; blank lines are skipped; each row's line is the line
  where its record starts; a short row leaves its missing cells empty.
- JSON Lines: one object per line; blank lines are skipped.
- Only that row is ``invalid``, with its line number, for: an empty cell, a missing JSON key, a
  JSON line that is not valid JSON, not an object, or names a key twice, a value that is not a
  string or an integer, and (checked at submit) an id that does not fully match its pattern
  (``countermand.ids``: at most 128 characters). Fields between 128 characters and the 1 MiB
  limit are therefore rows, not crashes.
- Columns (JSON keys) the provider does not use are ignored with one warning.

When problems surface: ``read_rows`` reads a CSV header before it returns, so an empty file and
every problem on the header's lines raise ``InputError`` from ``read_rows`` itself. Every other
problem raises ``InputError`` from ``next()`` on the returned iterator when reading reaches its
line, after the rows before it have been yielded: a caller that must queue nothing from a bad
file must not dispatch rows before the iterator is exhausted.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from countermand.errors import InputError, UsageError
from countermand.providers import ProviderSpec

Warn = Callable[[str], None]
# A binary stream; a text stream (tests, benchmarks) is read by the same rules after encoding
# its lines as UTF-8 (its line-length cap counts characters).
Stream = IO[bytes] | IO[str]

MIB = 1024 * 1024
MAX_LINE_BYTES = 4 * MIB  # one physical line; also one CSV record over its lines (characters)
MAX_FIELD_CHARS = MIB  # csv.field_size_limit: an id is at most 128 characters anyway
_UTF8_BOM = b"\xef\xbb\xbf"
# UTF-32 first: its little-endian mark starts with UTF-16's
_WIDE_BOMS = {b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe\x00\x00": "UTF-32"}
_WIDE_BOMS |= {b"\xfe\xff": "UTF-16", b"\xff\xfe": "UTF-16"}
_CSV_ERRORS = (  # the csv module's message -> ours
    ("field larger than field limit", f"field longer than {MAX_FIELD_CHARS} characters (1 MiB)"),
    ("unexpected end of data", "quoted field never closed: the file ends inside it"),
    ("new-line character", "CR inside an unquoted field: quote the field, or end lines with LF"),
    ("',' expected after '\"'", "a closing quote must be followed by a comma or the line end"),
)


@dataclass(slots=True)
class InputRow:
    line: int
    values: dict[str, str | None]  # provider columns only
    problem: str | None = None  # set when the row cannot be read at all


def is_jsonl(name: str) -> bool:
    return name.endswith((".jsonl", ".ndjson"))


def open_input(name: str) -> IO[bytes]:
    if name == "-":
        return sys.stdin.buffer
    try:
        return open(Path(name), "rb")
    except OSError as exc:
        raise UsageError(f"{name}: cannot read: {exc.strerror or exc}") from exc


def read_rows(name: str, stream: Stream, spec: ProviderSpec, warn: Warn) -> Iterator[InputRow]:
    """Rows of the provider's columns, in input order. A CSV header problem raises
    ``InputError`` here; every later problem raises it from ``next()`` (module docstring)."""
    wanted = [c.name for c in spec.columns]
    lines = _Lines(name, stream)
    if is_jsonl(name):
        return _jsonl_rows(lines, wanted, warn)
    return _csv_rows(lines, spec, wanted, warn)


class _Lines:
    """The stream's physical lines, decoded, without their line ends; ``number`` is the line
    last read (0 before the first)."""

    def __init__(self, name: str, stream: Stream) -> None:
        self.name = name
        self.number = 0
        self._stream = stream

    def error(self, message: str, line: int | None = None) -> InputError:
        return InputError(f"{self.name}: line {line or self.number or 1}", message)

    def __iter__(self) -> Iterator[str]:
        while chunk := self._stream.readline(MAX_LINE_BYTES + 1):
            self.number += 1
            raw = _without_line_end(chunk)
            if raw is None:
                raise self.error(f"line longer than {MAX_LINE_BYTES} bytes (4 MiB)")
            yield self._decode(raw)

    def _decode(self, raw: bytes) -> str:
        skip = 0
        if self.number == 1:
            for mark, encoding in _WIDE_BOMS.items():
                if raw.startswith(mark):
                    raise self.error(
                        f"starts with a {encoding} byte-order mark: "
                        f"{encoding} is not supported; save as UTF-8"
                    )
            skip = len(_UTF8_BOM) if raw.startswith(_UTF8_BOM) else 0
        if (nul := raw.find(b"\x00")) >= 0:
            raise self.error(
                f"NUL byte at byte {nul + 1} of the line "
                "(a binary file, or UTF-16 without a byte-order mark?); save as UTF-8"
            )
        try:
            return raw[skip:].decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = " ".join(f"0x{b:02X}" for b in exc.object[exc.start : exc.end])
            raise self.error(
                f"not UTF-8: {bad} at byte {skip + exc.start + 1} of the line; save as UTF-8"
            ) from None


def _without_line_end(chunk: bytes | str) -> bytes | None:
    """A line's bytes without LF or CR LF; None when it is longer than the cap (no LF read)."""
    # a text stream: a lone surrogate becomes bytes that are refused as not UTF-8
    data = chunk.encode("utf-8", "surrogatepass") if isinstance(chunk, str) else chunk
    if not data.endswith(b"\n"):
        return None if len(chunk) > MAX_LINE_BYTES else data
    return data[:-1].removesuffix(b"\r")


class _Records:
    """Non-blank CSV records, each with the physical line where it starts."""

    def __init__(self, lines: _Lines) -> None:
        self._lines = lines
        self._pending: list[tuple[int, str]] = []  # the lines of the record being read
        self._size = 0
        # strict: a quoted field still open at the end of the file is an error, not a field
        # that silently swallows the rest of the file.
        self._reader = csv.reader(self._feed(), strict=True)

    def _feed(self) -> Iterator[str]:
        for text in self._lines:
            self._pending.append((self._lines.number, text))
            self._size += len(text)
            if self._size > MAX_LINE_BYTES:  # many fields: each is under the field limit
                message = f"record longer than {MAX_LINE_BYTES} characters (4 MiB)"
                raise self._lines.error(message, self._pending[0][0])
            yield text + "\n"  # the reader keeps a newline inside a quoted field only if fed

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        while True:
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                message = str(exc)
                ours = (mine for theirs, mine in _CSV_ERRORS if message.startswith(theirs))
                raise self._error(next(ours, f"CSV syntax error: {message}")) from None
            start = self._pending[0][0]
            self._pending.clear()
            self._size = 0
            if cells:
                yield start, cells

    def _error(self, message: str) -> InputError:
        """At the line where a still-open quoted field starts (the likely culprit), else at
        the line last read."""
        opened = _open_quote(self._pending)
        if opened is not None and not message.startswith("quoted field never closed"):
            message += " (a quoted field opens on this line: is its closing quote missing?)"
        return self._lines.error(message, opened)


def _open_quote(lines: Sequence[tuple[int, str]]) -> int | None:
    """The line where the quoted field still open after ``lines`` starts, or None.

    The excel dialect, strict: a quote opens a field only at its start; inside, a doubled
    quote is one quote character. Only called on the error path."""
    state, opened = "start", None
    for number, text in lines:
        for char in text:
            if char == '"' and state in ("start", "closed"):
                state, opened = "quoted", opened if state == "closed" else number
            elif char == '"' and state == "quoted":
                state = "closed"
            elif char == ",":
                state = "quoted" if state == "quoted" else "start"
            elif state != "quoted":
                state = "field"
        if state != "quoted":
            state = "start"
    return opened if state == "quoted" else None


def _csv_rows(
    lines: _Lines, spec: ProviderSpec, wanted: list[str], warn: Warn
) -> Iterator[InputRow]:
    csv.field_size_limit(MAX_FIELD_CHARS)  # process-wide: set at every read, whoever changed it
    records = iter(_Records(lines))
    first = next(records, None)
    if first is None:
        raise lines.error("empty file: a header row is required", 1)
    line, cells = first
    header = [h.strip() for h in cells]
    if problem := _header_problem(spec, header):
        raise lines.error(problem, line)
    extra = [h for h in header if h not in wanted]
    if extra:
        warn(f"{lines.name}: ignoring column(s) not used by {spec.name}: {names_shown(extra)}")
    positions = {col: header.index(col) for col in wanted if col in header}
    return _csv_body(records, positions, wanted)


MAX_WARNED_KEYS = 100  # distinct ignored keys warned about, then no more
SHOWN_NAMES, SHOWN_CHARS = 10, 60


def names_shown(names: Sequence[str]) -> str:
    """Column or key names for a message: at most ``SHOWN_NAMES``, each clipped to
    ``SHOWN_CHARS`` characters (a name may be megabytes long)."""
    shown = [n if len(n) <= SHOWN_CHARS else n[:SHOWN_CHARS] + "…" for n in names[:SHOWN_NAMES]]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _header_problem(spec: ProviderSpec, header: list[str]) -> str | None:
    if problem := spec.header_problem(header):
        return f"{problem} (found: {names_shown(header) or 'none'})"
    seen: set[str] = set()
    for column in header:
        if column and column in seen:
            return f"column {names_shown([column])} appears twice in the header"
        seen.add(column)
    return None


def _csv_body(
    records: Iterator[tuple[int, list[str]]], positions: dict[str, int], wanted: list[str]
) -> Iterator[InputRow]:
    for line, cells in records:
        values: dict[str, str | None] = dict.fromkeys(wanted)
        for col, pos in positions.items():
            if pos < len(cells):
                values[col] = cells[pos].strip()
        yield InputRow(line, values)


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(f"key {names_shown([repr(key)])} appears twice")
        obj[key] = value
    return obj


def _jsonl_rows(lines: _Lines, wanted: list[str], warn: Warn) -> Iterator[InputRow]:
    warned: set[str] = set()
    for text in lines:
        if not text.strip():
            continue
        line = lines.number
        values: dict[str, str | None] = dict.fromkeys(wanted)
        try:
            obj = json.loads(text, object_pairs_hook=_unique_keys)
        except _DuplicateKey as exc:
            yield InputRow(line, values, str(exc))
            continue
        except json.JSONDecodeError as exc:  # its own "line 1" would mislead: say the column
            yield InputRow(line, values, f"not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        except (ValueError, RecursionError) as exc:  # too many digits; nested too deeply
            yield InputRow(line, values, f"not valid JSON: {exc}")
            continue
        if not isinstance(obj, dict):
            yield InputRow(line, values, "expected a JSON object")
            continue
        unknown = set(obj) - set(wanted) - warned
        if unknown and len(warned) < MAX_WARNED_KEYS:  # a file of ever-new keys: warn, not hoard
            warned |= unknown
            warn(f"{lines.name}: line {line}: ignoring key(s) {names_shown(sorted(unknown))}")
        yield InputRow(line, values, _fill(obj, wanted, values))


def _fill(obj: dict[str, Any], wanted: list[str], values: dict[str, str | None]) -> str | None:
    """Copy the wanted keys' values into ``values``; the row's problem, if any."""
    problem = None
    for col in wanted:
        value = obj.get(col)
        if isinstance(value, str):
            values[col] = value.strip()
        elif isinstance(value, int) and not isinstance(value, bool):
            values[col] = str(value)
        elif value is not None and problem is None:
            problem = f"{col} must be a string, got {type(value).__name__}"
    return problem
