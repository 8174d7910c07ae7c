"""The README stays true: its test command is what CI runs, its tables cover the code."""

from __future__ import annotations

import re
from pathlib import Path

from countermand.models import Outcome, StopReason
from countermand.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci_line = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_line in README.splitlines()


def test_every_setting_is_documented() -> None:
    for name in Settings.model_fields:
        assert re.search(rf"`{name.upper()}`", README), f"COUNTERMAND_{name.upper()} undocumented"


def test_every_outcome_and_reason_is_documented() -> None:
    for outcome in Outcome:
        assert f"| `{outcome.value}` |" in README
    for reason in StopReason:
        assert f"`{reason.value}`" in README
