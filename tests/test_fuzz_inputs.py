"""Fuzzing the input reader (``countermand.inputs``) and the id patterns, in process.

For every provider spec: clean CSV and JSON Lines files read back exactly (values and physical
line numbers); mutated files (random bytes, other encodings, byte-order marks, NUL bytes,
unbalanced quotes, huge fields and lines, bad headers) raise nothing but ``InputError``, which
names a line of the file; rows come in strictly increasing line order; and ``spec.validate``
never accepts an id that an independent check (character set and length, no regex) refuses.

Profiles: "ci" (the default) and "nightly" (``HYPOTHESIS_PROFILE=nightly``: 10x the examples).
Failing examples are kept in ``.hypothesis/`` (which ignores itself in git) and replayed first.
"""

from __future__ import annotations

import csv
import io
import json
import re
import string
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from countermand.errors import InputError
from countermand.ids import MAX_ID_LENGTH, IdPattern
from countermand.inputs import MAX_FIELD_CHARS, MAX_LINE_BYTES, InputRow, read_rows
from countermand.providers import SPECS, InvalidRow, ProviderSpec

# Profiles "ci" (150 examples per test; 17 tests: 2,550 examples) and "nightly" (10x) are
# registered in tests/conftest.py.

Values = dict[str, str | None]
Read = tuple[Values, str | None]  # what a JSON line reads as: values and problem
SPEC_NAMES = sorted(SPECS)
EXTRAS = ["note", "comment", "Target_ID"]

# -- the independent id check: character sets and lengths, written without a regex ------------
WORD = frozenset(string.ascii_letters + string.digits + "_")
SLUG = frozenset(string.ascii_letters + string.digits + "-")
HEX = frozenset(string.hexdigits)
PRINTABLE = frozenset(map(chr, range(0x21, 0x7F)))


def made_of(chars: frozenset[str], low: int, high: int) -> Callable[[str], bool]:
    return lambda value: low <= len(value) <= high and set(value) <= chars


ORACLES: dict[str, Callable[[str], bool]] = {  # by IdPattern.name
    "organization id": lambda v: made_of(HEX, 24, 24)(v) or made_of(SLUG, 3, MAX_ID_LENGTH)(v),
    "target id": made_of(WORD, 1, MAX_ID_LENGTH),  # 24 hex digits are a word too
    "device id": made_of(WORD, 1, MAX_ID_LENGTH),
    "command id": made_of(HEX, 24, 24),
    "target type": lambda v: v in ("device", "deviceUser"),
    "EnOS id": made_of(PRINTABLE, 1, MAX_ID_LENGTH),
}
PATTERNS: list[IdPattern] = [
    p
    for spec in SPECS.values()
    for p in [spec.org_pattern, *(c.pattern for c in spec.columns)]
    if p is not None
]

# -- strategies -------------------------------------------------------------------------------
_hex = st.integers(22, 26).flatmap(
    lambda n: st.text("0123456789abcdefABCDEF", min_size=n, max_size=n)
)
_runs = st.builds(
    lambda ch, n: ch * n,
    st.sampled_from(["x", "7", "_", "-", "a-", "\u00e9", "!", " ", "\ufeff"]),
    st.sampled_from([0, 1, 2, 3, 12, 23, 24, 25, 64, 127, 128, 129]),
)
_core = st.one_of(_hex, _runs)
_affixes = st.sampled_from(["", " ", "\n", "\t", "\r", "\u00e9", "\u0663", "\x7f", "/", '"', ","])
_inner = st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\r\r\n", '"', '""', ",", " "])
ids = st.one_of(
    _hex,
    _runs,
    st.builds(lambda a, core, b: a + core + b, _affixes, _core, _affixes),
    st.builds(lambda a, sep, b: a + sep + b, _core, _inner, _core),
    st.sampled_from(["device", "deviceUser", "Device", "acme-corp", "5f8d0d55b54764421b7156c1"]),
    st.text(max_size=12),
)
clean_ids = ids.filter(lambda v: "\x00" not in v)


@st.composite
def headers(draw: st.DrawFn, spec: ProviderSpec) -> list[str]:
    """A header the spec accepts: its columns (some optional ones dropped) and extras."""
    names = [c.name for c in spec.columns]
    header = draw(st.permutations(names + draw(st.lists(st.sampled_from(EXTRAS), unique=True))))
    dropped = draw(st.sets(st.sampled_from(names)))
    kept = [h for h in header if h not in dropped]
    return kept if spec.header_problem(kept) is None else header


def write_csv(records: Sequence[Sequence[str]], newline: str, quote: bool) -> tuple[str, list[int]]:
    """The CSV text and the physical line where each record starts."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline, quoting=csv.QUOTE_ALL if quote else 0)
    starts = []
    for record in records:
        starts.append(out.getvalue().count("\n") + 1)
        writer.writerow(record)
    return out.getvalue(), starts


@st.composite
def csv_files(
    draw: st.DrawFn, spec: ProviderSpec
) -> tuple[bytes, list[tuple[int, Values]], int | None]:
    """A clean CSV file, the (line, values) rows it must read as, and, when it ends with an
    unclosed quote, the line where that quote opens."""
    header = draw(headers(spec))
    rows = draw(st.lists(st.lists(clean_ids, max_size=len(header) + 2), max_size=8))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    # a CR outside quotes is refused (tested in test_inputs); quote it when LF ends lines
    has_cr = any("\r" in cell for row in rows for cell in row)
    quote_all = draw(st.booleans()) or (newline == "\n" and has_cr)
    text, starts = write_csv([header, *rows], newline, quote_all)
    unclosed = None
    if draw(st.integers(0, 5)) == 0:  # a last record whose quote never closes
        unclosed = text.count("\n") + 1
        text += '"' + draw(st.text(st.characters(exclude_characters='"\x00', codec="utf-8")))
    elif draw(st.booleans()):
        text = text.removesuffix(newline)  # no final line end
    data = text.encode("utf-8-sig" if draw(st.booleans()) else "utf-8")
    positions = {name: header.index(name) for name in header}
    expected = [
        (line, {c.name: _cell(cells, positions.get(c.name)) for c in spec.columns})
        for line, cells in zip(starts[1:], rows, strict=True)
        if cells
    ]
    return data, expected, unclosed


def _cell(cells: Sequence[str], pos: int | None) -> str | None:
    if pos is None or pos >= len(cells):
        return None
    return cells[pos].replace("\r\n", "\n").strip()  # CR LF inside a quoted field is a line end


_json_values = st.one_of(
    clean_ids,
    st.integers(-(10**30), 10**30),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


_not_objects = st.one_of(st.integers(), st.text(), st.lists(st.none())).map(json.dumps)
_broken = st.sampled_from(["not json", "{", "{'a': 1}", "[1,", '{"a": 1}}'])


@st.composite
def jsonl_lines(draw: st.DrawFn, spec: ProviderSpec) -> tuple[str, Read | None]:
    """One line and what it must read as: (values, problem), or None for a skipped blank line."""
    wanted = [c.name for c in spec.columns]
    kind = draw(st.sampled_from(["object"] * 3 + ["blank", "other", "broken", "twice"]))
    empty: Values = dict.fromkeys(wanted)
    if kind == "blank":
        return draw(st.sampled_from(["", " ", "\t"])), None
    if kind == "other":
        return draw(_not_objects), (empty, "expected a JSON object")
    if kind == "broken":
        return draw(_broken), (empty, "not valid JSON")
    if kind == "twice":
        key = wanted[0]
        return f'{{"{key}": "a", "{key}": "b"}}', (empty, f"key {key!r} appears twice")
    keys = draw(st.lists(st.sampled_from(wanted + EXTRAS), unique=True))
    obj = {k: draw(_json_values) for k in keys}
    values, problem = dict(empty), None
    for col in wanted:
        value = obj.get(col)
        if isinstance(value, str):
            values[col] = value.strip()
        elif isinstance(value, int) and not isinstance(value, bool):
            values[col] = str(value)
        elif value is not None and problem is None:
            problem = f"{col} must be a string, got {type(value).__name__}"
    return json.dumps(obj, ensure_ascii=draw(st.booleans())), (values, problem)


@st.composite
def jsonl_files(draw: st.DrawFn, spec: ProviderSpec) -> tuple[bytes, list[tuple[int, Read]]]:
    lines = draw(st.lists(jsonl_lines(spec), max_size=8))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(line for line, _ in lines) + (newline if draw(st.booleans()) else "")
    expected = [(n, want) for n, (_, want) in enumerate(lines, start=1) if want is not None]
    return text.encode("utf-8-sig" if draw(st.booleans()) else "utf-8"), expected


_TOKENS = [b'"', b"\x00", b"\r", b"\n", b"\xff", b"\xc3", b"\xe2\x82", b"\xef\xbb\xbf", b'"\n"']
_BOMS = [b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", b"\xef\xbb\xbf" * 2]
_CODECS = ["latin-1", "cp1252", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8"]


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "token", "delete", "cut", "bom", "codec", "huge"]))
        if kind == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
        elif kind == "token":
            data = data[:at] + draw(st.sampled_from(_TOKENS)) + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 16)) :]
        elif kind == "cut":
            data = data[:at]
        elif kind == "bom":
            data = draw(st.sampled_from(_BOMS)) + data
        elif kind == "codec":
            text = data.decode("utf-8", "replace").removeprefix("\ufeff")
            data = text.encode(draw(st.sampled_from(_CODECS)), "replace")
        else:  # a field just under or over the field limit, rarely a line over the line cap
            size = draw(
                st.sampled_from([MAX_FIELD_CHARS, MAX_FIELD_CHARS + 1] * 4 + [MAX_LINE_BYTES + 1])
            )
            data = data[:at] + b"D" * size + data[at:]
    return data


@st.composite
def chaos(draw: st.DrawFn, spec: ProviderSpec) -> tuple[str, bytes]:
    """A file name and mutated contents: a clean file, or one with any header, then mutated."""
    if draw(st.booleans()):
        return "f.jsonl", draw(mutated(draw(jsonl_files(spec))[0]))
    names = [c.name for c in spec.columns] + EXTRAS + ["", " target_id "]
    header = draw(st.one_of(headers(spec), st.lists(st.sampled_from(names), max_size=6)))
    rows = draw(st.lists(st.lists(ids, max_size=len(header) + 2), max_size=6))
    text, _ = write_csv([header, *rows], draw(st.sampled_from(["\n", "\r\n"])), draw(st.booleans()))
    return "f.csv", draw(mutated(text.encode()))


# -- the properties ---------------------------------------------------------------------------
def read(name: str, data: bytes, spec: ProviderSpec) -> tuple[list[InputRow], InputError | None]:
    """Read everything; check what every read must satisfy; the rows and the error if any."""
    count = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    rows: list[InputRow] = []
    error = None
    try:
        rows.extend(read_rows(name, io.BytesIO(data), spec, lambda _: None))
    except InputError as exc:  # anything else fails the test
        error = exc
        match = re.fullmatch(rf"{re.escape(name)}: line (\d+)", exc.where)
        assert match is not None, exc.where
        assert str(exc).startswith(f"{exc.where}: ")
        assert 1 <= int(match[1]) <= max(count, 1), (str(exc), count)
    lines = [row.line for row in rows]
    assert lines == sorted(set(lines)), lines
    assert all(1 <= line <= count for line in lines), (lines, count)
    for row in rows:
        accepted_ids_are_valid(spec, row)
    return rows, error


def accepted_ids_are_valid(spec: ProviderSpec, row: InputRow) -> None:
    if row.problem is not None:
        return  # never validated: ``invalid`` at submit
    try:
        target = spec.validate(row.values)
    except InvalidRow:
        return
    for column in spec.columns:
        if column.pattern is not None and column.name in target:
            value = target[column.name]
            assert ORACLES[column.pattern.name](value), (column.name, value)
            assert value in (row.values[column.name], column.default)


@pytest.mark.parametrize("spec_name", SPEC_NAMES)
@given(data=st.data())
def test_clean_csv_reads_back_exactly(spec_name: str, data: st.DataObject) -> None:
    spec = SPECS[spec_name]
    raw, expected, unclosed = data.draw(csv_files(spec))
    rows, error = read("f.csv", raw, spec)
    assert [(r.line, r.values) for r in rows] == expected
    if unclosed is None:
        assert error is None
    else:
        assert (
            str(error)
            == f"f.csv: line {unclosed}: quoted field never closed: " + "the file ends inside it"
        )
    assert all(r.problem is None for r in rows)


@pytest.mark.parametrize("spec_name", SPEC_NAMES)
@given(data=st.data())
def test_clean_jsonl_reads_back_exactly(spec_name: str, data: st.DataObject) -> None:
    spec = SPECS[spec_name]
    raw, expected = data.draw(jsonl_files(spec))
    rows, error = read("f.jsonl", raw, spec)
    assert error is None
    assert [r.line for r in rows] == [line for line, _ in expected]
    for row, (_, (values, problem)) in zip(rows, expected, strict=True):
        assert row.values == values
        assert row.problem == problem or (problem and (row.problem or "").startswith(problem))


@pytest.mark.parametrize("spec_name", SPEC_NAMES)
@given(data=st.data())
def test_mutated_inputs_fail_only_with_input_errors(spec_name: str, data: st.DataObject) -> None:
    spec = SPECS[spec_name]
    name, raw = data.draw(chaos(spec))
    _, error = read(name, raw, spec)
    wide = raw.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff"))
    if wide or b"\x00" in raw.split(b"\n", 1)[0]:
        assert error is not None and error.where == f"{name}: line 1"


@pytest.mark.parametrize("spec_name", SPEC_NAMES)
@given(raw=st.binary(max_size=200), jsonl=st.booleans(), header=st.booleans())
def test_random_bytes_fail_only_with_input_errors(
    spec_name: str, raw: bytes, jsonl: bool, header: bool
) -> None:
    spec = SPECS[spec_name]
    prefix = ",".join(c.name for c in spec.columns).encode() + b"\n" if header else b""
    read("f.jsonl" if jsonl else "f.csv", prefix + raw, spec)


@given(pattern=st.sampled_from(PATTERNS), value=ids)
def test_patterns_agree_with_the_independent_check(pattern: IdPattern, value: str) -> None:
    assert (pattern.check(value) is None) == ORACLES[pattern.name](value), (pattern.name, value)
