"""The copies in tests/data are the shared originals: the Compose schema and the vendor's
reference pages the tests read. Where the originals are present (beside the repository, as in
the team's workspace), any drift fails; in a clone alone, the copies are the contract."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
ORIGINALS = {
    "compose-spec.json": SHARED / "schemas" / "compose-spec.json",
    "applivery-windows-command-actions.txt": SHARED
    / "apis"
    / "applivery-windows-command-actions.txt",
    "applivery-windows-get-command.txt": SHARED / "apis" / "applivery-windows-get-command.txt",
}


@pytest.mark.parametrize("name", sorted(ORIGINALS))
def test_copy_matches_the_original_where_present(name: str) -> None:
    copy = (DATA / name).read_bytes()
    assert copy, f"tests/data/{name} is empty"
    original = ORIGINALS[name]
    if original.exists():
        assert copy == original.read_bytes(), f"tests/data/{name} drifted from {original}"
