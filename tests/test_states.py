"""The state-class tables: every Windows status of the reference page has a class."""

from __future__ import annotations

from pathlib import Path

import pytest

from countermand.states import WINDOWS, StateClass, batch_class

# Copies of the vendor's reference pages (../shared/apis), so a fresh clone tests alone;
# tests/test_vendored.py holds them equal to the originals wherever those are present.
PAGES = Path(__file__).resolve().parent / "data"
P, D, C, E = StateClass.PENDING, StateClass.DONE, StateClass.CANCELED, StateClass.ERRORED


def reference_statuses(page: str) -> list[str]:
    text = (PAGES / page).read_text()
    line = next(line for line in text.splitlines() if line.startswith("Pending Awaiting"))
    return line.split()


@pytest.mark.parametrize(
    "page", ["applivery-windows-command-actions.txt", "applivery-windows-get-command.txt"]
)
def test_every_windows_status_of_the_reference_page_has_a_class(page: str) -> None:
    statuses = reference_statuses(page)
    assert len(statuses) == 65
    missing = [s for s in statuses if s not in WINDOWS]
    assert missing == []


def test_no_class_for_a_status_the_page_does_not_list() -> None:
    listed = set(reference_statuses("applivery-windows-command-actions.txt"))
    assert set(WINDOWS) <= listed


def test_retry_statuses_count_as_pending() -> None:
    assert WINDOWS["RequestFailRetryAfterSomeTime"] is P
    assert WINDOWS["TemporaryOverloadingOrMaintenanceError"] is P


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        ([D, D], D),
        ([C], C),
        ([D, P, E], P),
        ([D, E, C], E),
        ([D, C], C),
        ([], D),
    ],
)
def test_batch_outcome(classes: list[StateClass], expected: StateClass) -> None:
    assert batch_class(classes) is expected
