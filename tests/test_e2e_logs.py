"""Structured logs: with COUNTERMAND_LOG_FORMAT=json every line of a worker is one JSON object,
and the lines about a job carry its id, chunk, vendor and tenant; lifecycle events are there."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from tests.checks import submit_and_wait
from tests.conftest import e2e_env
from tests.harness import SimulatorProcess, WorkerProcess
from tests.scenarios import apple

pytestmark = pytest.mark.e2e


def test_json_lines_with_the_job_on_every_line_about_it(
    redis_url: str, sim: SimulatorProcess, credentials_file: Path, e2e_dir: Path, tmp_path: Path
) -> None:
    env = {**e2e_env(redis_url, sim.url, credentials_file, db=9), "COUNTERMAND_LOG_FORMAT": "json"}
    sc = apple(f"org-{secrets.token_hex(4)}", pending=60, done=5)
    sim.client.add_commands(sc.provider, sc.records)
    worker = WorkerProcess(e2e_dir, env)
    try:
        info = submit_and_wait(env, tmp_path, sc, "--rate", "200")
    finally:
        worker.stop()
    assert info["status"] == "completed", info["_stderr"]
    lines = [line for line in worker.log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line parses
    mine = [r for r in records if r.get("job_id") == info["job_id"]]
    events = {r["event"].split(":")[0] for r in mine}
    assert {"chunk started", "chunk done", "job completed"} <= events
    for record in mine:
        if record["event"].startswith("chunk"):
            assert record["vendor"] == "applivery"
            assert record["tenant"] == f"applivery:{sc.org}"
            assert isinstance(record["chunk"], int)
    assert any(r.get("logger", "").startswith("celery") for r in records)  # Celery's own too
