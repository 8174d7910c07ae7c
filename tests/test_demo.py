"""`countermand demo`, the README's first command, on a machine with nothing else running."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_demo_runs_every_provider_to_completion(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERMAND_")}
    done = subprocess.run(
        [sys.executable, "-m", "countermand", "demo"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "started a private server" in done.stdout
    assert done.stdout.count("completed") >= 3
    (run_dir,) = (tmp_path / "countermand-demo").iterdir()
    for provider in ("applivery-apple", "applivery-android", "enos"):
        with (run_dir / f"{provider}-report.csv").open() as f:
            outcomes = {row["outcome"] for row in csv.DictReader(f)}
        assert "remaining" not in outcomes
        assert "not_found" in outcomes and "invalid" in outcomes
