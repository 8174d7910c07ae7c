import csv
import io
import sys
from pathlib import Path

import pytest

from countermand.errors import InputError, UsageError
from countermand.inputs import MAX_FIELD_CHARS, MAX_LINE_BYTES, InputRow, open_input, read_rows
from countermand.providers import SPECS, ProviderSpec

APPLE = SPECS["applivery-apple"]
ENOS = SPECS["enos"]
HEADER = b"target_id,command_id\n"
CMD = "5f8d0d55b54764421b7156c1"


def rows(
    name: str, data: bytes, spec: ProviderSpec = APPLE, warnings: list[str] | None = None
) -> list[InputRow]:
    sink = warnings if warnings is not None else []
    return list(read_rows(name, io.BytesIO(data), spec, sink.append))


def error(name: str, data: bytes, spec: ProviderSpec = APPLE) -> str:
    with pytest.raises(InputError) as info:
        rows(name, data, spec)
    return str(info.value)


def lines(out: list[InputRow]) -> list[tuple[int, str | None]]:
    return [(r.line, r.values["target_id"]) for r in out]


def test_csv_rows_keep_order_and_line_numbers() -> None:
    out = rows("f.csv", HEADER + b"DEV1,aaa\n\nDEV2,bbb\n")
    assert [(r.line, r.values["target_id"], r.values["command_id"]) for r in out] == [
        (2, "DEV1", "aaa"),
        (4, "DEV2", "bbb"),
    ]
    assert out[0].values["target_type"] is None


def test_row_line_is_where_a_multiline_record_starts() -> None:
    data = HEADER + b'"A\nB",c\n\n\nD,"x\n\ny"\n"E",z\nF,w'
    assert lines(rows("f.csv", data)) == [(2, "A\nB"), (6, "D"), (9, "E"), (10, "F")]


def test_crlf_lines_are_one_line_end_each() -> None:
    out = rows("f.csv", b'target_id,command_id\r\nD1,c1\r\n\r\n"D\r\n2",c2\r\nD3,c3\r\n')
    assert [(r.line, r.values["target_id"], r.values["command_id"]) for r in out] == [
        (2, "D1", "c1"),
        (4, "D\n2", "c2"),
        (6, "D3", "c3"),
    ]


def test_utf8_bom_is_dropped_and_counted_in_byte_offsets() -> None:
    assert lines(rows("f.csv", b"\xef\xbb\xbf" + HEADER + b"D,c\n")) == [(2, "D")]
    assert error("f.csv", b"\xef\xbb\xbftarg\xffet_id\n") == (
        "f.csv: line 1: not UTF-8: 0xFF at byte 8 of the line; save as UTF-8"
    )


@pytest.mark.parametrize(
    ("mark", "encoding"),
    [
        (b"\xff\xfe", "UTF-16"),
        (b"\xfe\xff", "UTF-16"),
        (b"\xff\xfe\x00\x00", "UTF-32"),
        (b"\x00\x00\xfe\xff", "UTF-32"),
    ],
)
@pytest.mark.parametrize("name", ["f.csv", "f.jsonl"])
def test_wide_byte_order_marks_are_refused(mark: bytes, encoding: str, name: str) -> None:
    codec = {"UTF-16": "utf-16-le", "UTF-32": "utf-32-le"}[encoding]
    assert error(name, mark + "target_id\n".encode(codec)) == (
        f"{name}: line 1: starts with a {encoding} byte-order mark: "
        f"{encoding} is not supported; save as UTF-8"
    )


def test_utf16_without_bom_is_a_nul_byte() -> None:
    assert error("f.csv", "target_id,command_id\n".encode("utf-16-le")) == (
        "f.csv: line 1: NUL byte at byte 2 of the line (a binary file, or UTF-16 without "
        "a byte-order mark?); save as UTF-8"
    )


def test_nul_byte_names_its_line() -> None:
    assert error("f.csv", HEADER + b"D,c\nD2,\x00c\n").startswith(
        "f.csv: line 3: NUL byte at byte 4 of the line"
    )


def test_bad_byte_after_a_multiline_quoted_field_names_the_physical_line() -> None:
    data = HEADER + b'"D\n1",c\nD2,c\nD\xe93,c\nD4,c\n'
    assert error("f.csv", data) == (
        "f.csv: line 5: not UTF-8: 0xE9 at byte 2 of the line; save as UTF-8"
    )
    data = HEADER + b'"D\n1",c\nD\xe93,c\n'
    assert error("f.csv", data) == (
        "f.csv: line 4: not UTF-8: 0xE9 at byte 2 of the line; save as UTF-8"
    )


def test_bad_byte_deep_in_a_large_file_names_its_line() -> None:
    body = [f"DEVICE{n:06d},{CMD}\n".encode() for n in range(2, 3001)]
    body[2000] = b"DEVICE\xc3\x28,x\n"  # line 2002: an invalid continuation byte
    assert error("f.csv", HEADER + b"".join(body)) == (
        "f.csv: line 2002: not UTF-8: 0xC3 at byte 7 of the line; save as UTF-8"
    )


def test_rows_before_a_bad_line_are_yielded_first() -> None:
    it = read_rows("f.csv", io.BytesIO(HEADER + b"D1,c\n\xff\n"), APPLE, print)
    assert next(it).line == 2
    with pytest.raises(InputError, match=r"^f\.csv: line 3: not UTF-8"):
        next(it)


def test_header_problems_raise_from_read_rows_itself() -> None:
    with pytest.raises(InputError, match=r"^f\.csv: line 1: header lacks"):
        read_rows("f.csv", io.BytesIO(b"target_id\nD\n"), APPLE, print)


def test_csv_header_missing_required_column_is_a_usage_error() -> None:
    assert error("f.csv", b"target_id,cmd\nDEV1,aaa\n") == (
        "f.csv: line 1: header lacks required column(s): command_id (found: target_id, cmd)"
    )


def test_header_is_the_first_non_blank_record() -> None:
    assert lines(rows("f.csv", b"\n\n" + HEADER + b"D,c\n")) == [(4, "D")]
    assert error("f.csv", b"\n\ntarget_id\n").startswith("f.csv: line 3: header lacks")


@pytest.mark.parametrize("data", [b"", b"\n", b"\r\n\n"])
def test_empty_file_is_a_usage_error(data: bytes) -> None:
    assert error("f.csv", data) == "f.csv: line 1: empty file: a header row is required"


def test_header_naming_a_column_twice_is_refused() -> None:
    assert error("f.csv", b"target_id,command_id, target_id\nD,c,E\n") == (
        "f.csv: line 1: column target_id appears twice in the header"
    )
    assert error("f.csv", b"target_id,command_id,note,note\n") == (
        "f.csv: line 1: column note appears twice in the header"
    )
    assert rows("f.csv", b"target_id,command_id,,\nD,c,,\n")[0].values["target_id"] == "D"


def test_unterminated_quote_names_the_line_where_the_field_opens() -> None:
    assert error("f.csv", HEADER + b'D1,c\n"D2,c\nD3,c\n') == (
        "f.csv: line 3: quoted field never closed: the file ends inside it"
    )
    # the record starts on line 2; its second quoted field opens on line 3
    assert error("f.csv", HEADER + b'"D\n1","c\n2\nmore\n').startswith(
        "f.csv: line 3: quoted field never closed"
    )
    # a doubled quote on line 3 is a quote character: the field opened on line 2 stays open
    assert error("f.csv", HEADER + b'"x\n""y\nz,c\n').startswith(
        "f.csv: line 2: quoted field never closed"
    )
    assert error("f.csv", b'target_id,"command_id') == (
        "f.csv: line 1: quoted field never closed: the file ends inside it"
    )


def test_text_after_a_closing_quote_is_a_syntax_error() -> None:
    assert error("f.csv", HEADER + b'D1,c\n"D2" ,c\n') == (
        "f.csv: line 3: a closing quote must be followed by a comma or the line end"
    )


def test_bare_cr_in_an_unquoted_field_is_a_syntax_error() -> None:
    assert error("f.csv", HEADER + b"D1,c\nD\r2,c\n") == (
        "f.csv: line 3: CR inside an unquoted field: quote the field, or end lines with LF"
    )


def test_field_size_limit() -> None:
    before = csv.field_size_limit(10)  # another module's setting does not leak into the reader
    try:
        long = b"x" * MAX_FIELD_CHARS
        assert rows("f.csv", HEADER + long + b",c\n")[0].values["target_id"] == long.decode()
        assert error("f.csv", HEADER + b"D,c\n" + long + b"x,c\n") == (
            "f.csv: line 3: field longer than 1048576 characters (1 MiB)"
        )
    finally:
        csv.field_size_limit(before)


def test_unclosed_quote_that_overflows_the_field_limit_names_its_start() -> None:
    filler = b"".join(b"DEVICE%06d,c\n" % n for n in range(MAX_FIELD_CHARS // 10))
    assert error("f.csv", HEADER + b'D1,c\nD2,"c\n' + filler) == (
        "f.csv: line 3: field longer than 1048576 characters (1 MiB) (a quoted field opens "
        "on this line: is its closing quote missing?)"
    )


def test_record_over_its_lines_is_capped() -> None:
    half = b"x" * (MAX_FIELD_CHARS // 2 - 10)
    # five quoted fields under the field limit, each over two lines: lines 2 to 7
    record = b",".join([b'"' + half + b"\n" + half + b'"'] * 5) + b"\n"
    assert error("f.csv", HEADER + b"D,c\n" + record) == (
        "f.csv: line 3: record longer than 4194304 characters (4 MiB)"
    )


@pytest.mark.parametrize("name", ["f.csv", "f.jsonl"])
def test_physical_line_is_capped(name: str) -> None:
    data = HEADER + b"D,c\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\nD3,c\n"
    assert error(name, data) == f"{name}: line 3: line longer than 4194304 bytes (4 MiB)"
    out = rows(name, HEADER + b"D,c\n" + b"x," * (MAX_LINE_BYTES // 2) + b"\n")
    assert out[-1].line == 3


def test_extra_csv_columns_warn_once() -> None:
    warnings: list[str] = []
    out = rows("f.csv", b"target_id,command_id,note\nD,c,x\nE,d,y\n", warnings=warnings)
    assert len(out) == 2
    assert warnings == ["f.csv: ignoring column(s) not used by applivery-apple: note"]


def test_short_csv_row_leaves_missing_cells_none() -> None:
    out = rows("f.csv", HEADER + b"DEV1\n")
    assert out[0].values["command_id"] is None


def test_enos_header_needs_asset_or_keys() -> None:
    with pytest.raises(InputError, match="asset_id"):
        rows("f.csv", b"product_key,command_id\np,c\n", ENOS)
    assert rows("f.csv", b"product_key,device_key\np,d\n", ENOS)[0].values["device_key"] == "d"


def test_jsonl_rows_and_problems_by_line() -> None:
    text = (
        '{"target_id": "D1", "command_id": "c1"}\r\n'
        "not json\n"
        "[1, 2]\n"
        '{"target_id": 356938035643809, "command_id": "c2", "extra": 1}\n'
        "\n"
        '{"target_id": 1.5, "command_id": "c3"}\n'
        '{"target_id": "a", "target_id": "b"}\n' + "[" * 100_000 + "\n"
    )
    warnings: list[str] = []
    out = rows("f.jsonl", text.encode(), warnings=warnings)
    assert [r.line for r in out] == [1, 2, 3, 4, 6, 7, 8]
    assert out[0].problem is None
    assert out[0].values["command_id"] == "c1"
    assert out[1].problem == "not valid JSON: Expecting value at column 1"
    assert out[2].problem == "expected a JSON object"
    assert out[3].values["target_id"] == "356938035643809"
    assert out[4].problem == "target_id must be a string, got float"
    assert out[5].problem == "key 'target_id' appears twice"
    assert out[6].problem is not None and out[6].problem.startswith("not valid JSON")
    assert warnings == ["f.jsonl: line 4: ignoring key(s) extra"]


def test_jsonl_bad_byte_is_a_file_level_error() -> None:
    data = b'{"target_id": "D1"}\n\n{"target_id": "D\xe93"}\n'
    assert error("f.ndjson", data) == (
        "f.ndjson: line 3: not UTF-8: 0xE9 at byte 17 of the line; save as UTF-8"
    )
    assert error("f.jsonl", b'{"a": 1}\n{"a": "\x00"}\n').startswith("f.jsonl: line 2: NUL")


def test_text_stream_is_read_by_the_same_rules() -> None:
    stream = io.StringIO('target_id,command_id\n"D\n1",c\nE,d\n')
    assert lines(list(read_rows("t.csv", stream, APPLE, print))) == [(2, "D\n1"), (4, "E")]


def test_open_input_reads_bytes(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(HEADER + b"D,c\n")
    with open_input(str(path)) as stream:
        assert stream.read() == HEADER + b"D,c\n"
    with pytest.raises(UsageError, match=r"^.*missing\.csv: cannot read: No such file"):
        open_input(str(tmp_path / "missing.csv"))


def test_open_input_dash_is_stdin_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(HEADER + b"D,\xe9\n")))
    with pytest.raises(InputError) as info:
        list(read_rows("-", open_input("-"), APPLE, print))
    assert str(info.value) == "-: line 2: not UTF-8: 0xE9 at byte 3 of the line; save as UTF-8"


def test_names_in_messages_are_clipped_however_long_the_input_makes_them() -> None:
    """A key megabytes long (found by the CLI fuzz test: rich's highlighter took minutes over
    it) is named by its first characters, in warnings and in the stored reason alike."""
    key = "k" * 1_000_000
    said: list[str] = []
    text = f'{{"{key}": 1, "device_id": "d", "command_id": "c"}}\n'
    text += f'{{"{key}": 1, "{key}": 2}}\n'
    rows = list(read_rows("t.jsonl", io.BytesIO(text.encode()), SPECS["enos"], said.append))
    assert len(said) == 1 and len(said[0]) < 200 and said[0].endswith("…")
    assert rows[1].problem is not None and "appears twice" in rows[1].problem
    assert len(rows[1].problem) < 200
