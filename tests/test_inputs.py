import io

import pytest

from countermand.errors import InputError
from countermand.inputs import read_rows
from countermand.providers import get_spec

APPLE = get_spec("applivery-apple")
ENOS = get_spec("enos")


def rows(name: str, text: str, spec=APPLE, warnings=None):  # type: ignore[no-untyped-def]
    sink = warnings if warnings is not None else []
    return list(read_rows(name, io.StringIO(text), spec, sink.append))


def test_csv_rows_keep_order_and_line_numbers() -> None:
    out = rows("f.csv", "target_id,command_id\nDEV1,aaa\n\nDEV2,bbb\n")
    assert [(r.line, r.values["target_id"], r.values["command_id"]) for r in out] == [
        (2, "DEV1", "aaa"),
        (4, "DEV2", "bbb"),
    ]
    assert out[0].values["target_type"] is None


def test_csv_header_missing_required_column_is_a_usage_error() -> None:
    with pytest.raises(InputError) as info:
        rows("f.csv", "target_id,cmd\nDEV1,aaa\n")
    assert "f.csv: line 1" in str(info.value)
    assert "command_id" in str(info.value)


def test_empty_file_is_a_usage_error() -> None:
    with pytest.raises(InputError, match="empty file"):
        rows("f.csv", "")


def test_extra_csv_columns_warn_once() -> None:
    warnings: list[str] = []
    out = rows("f.csv", "target_id,command_id,note\nD,c,x\nE,d,y\n", warnings=warnings)
    assert len(out) == 2
    assert warnings == ["f.csv: ignoring column(s) not used by applivery-apple: note"]


def test_short_csv_row_leaves_missing_cells_none() -> None:
    out = rows("f.csv", "target_id,command_id\nDEV1\n")
    assert out[0].values["command_id"] is None


def test_enos_header_needs_asset_or_keys() -> None:
    with pytest.raises(InputError, match="asset_id"):
        rows("f.csv", "product_key,command_id\np,c\n", ENOS)
    assert rows("f.csv", "product_key,device_key\np,d\n", ENOS)[0].values["device_key"] == "d"


def test_jsonl_rows_and_problems_by_line() -> None:
    text = (
        '{"target_id": "D1", "command_id": "c1"}\n'
        "not json\n"
        "[1, 2]\n"
        '{"target_id": 356938035643809, "command_id": "c2", "extra": 1}\n'
        '{"target_id": 1.5, "command_id": "c3"}\n'
    )
    warnings: list[str] = []
    out = rows("f.jsonl", text, warnings=warnings)
    assert [r.line for r in out] == [1, 2, 3, 4, 5]
    assert out[0].problem is None
    assert out[1].problem is not None and "not valid JSON" in out[1].problem
    assert out[2].problem == "expected a JSON object"
    assert out[3].values["target_id"] == "356938035643809"
    assert out[4].problem == "target_id must be a string, got float"
    assert warnings == ["f.jsonl: line 4: ignoring key(s) extra"]
