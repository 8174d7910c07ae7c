"""End to end: private Redis, the simulator as a real server, real Celery worker processes."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.checks import (
    ROUTE,
    assert_books_exact,
    assert_matches_truth,
    calls_by_key,
    report,
    submit_and_wait,
    tenant,
    wait_settled,
)
from tests.harness import SimulatorProcess, WorkerProcess, cli
from tests.scenarios import SCENARIOS, apple

pytestmark = pytest.mark.e2e


def new_org(provider: str) -> str:
    return f"o{secrets.randbelow(10**12)}" if provider == "enos" else f"org-{secrets.token_hex(4)}"


@pytest.mark.parametrize("provider", sorted(SCENARIOS))
def test_one_job_per_provider_matches_the_truth(
    provider: str, env: dict[str, str], sim: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    sc = SCENARIOS[provider](new_org(provider))
    sim.client.add_commands(provider, sc.records)
    info = submit_and_wait(env, tmp_path, sc, "--rate", "200")
    assert info["_exit"] == 0, info["_stderr"]
    assert info["status"] == "completed" and info["reason"] is None
    records = report(env, info["job_id"])
    assert [r["outcome"] for r in records] == sc.expected
    assert_books_exact(info, records)
    assert_matches_truth(sim.client, sc, records)
    if provider == "enos":
        device_wide = records[4]
        assert device_wide["canceled_count"] == "2"
        assert len(device_wide["canceled_command_ids"].split(";")) == 2


def test_dry_run_sends_no_cancel(
    env: dict[str, str], sim: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    sc = apple(new_org("applivery-apple"))
    sim.client.add_commands(sc.provider, sc.records)
    info = submit_and_wait(env, tmp_path, sc, "--dry-run")
    assert info["_exit"] == 0 and info["status"] == "completed"
    valid = sum(1 for e in sc.expected if e != "invalid")
    assert info["counts"]["would_cancel"] == valid
    assert info["counts"]["invalid"] == len(sc.rows) - valid
    assert calls_by_key(sim.client, sc) == {}
    assert [
        c
        for c in sim.client.commands(sc.provider)
        if c["org"] == sc.org and c["status"] == "Canceled"
    ] == []


def test_bad_credentials_pause_and_resume_completes_with_nothing_lost(
    env: dict[str, str],
    sim: SimulatorProcess,
    worker: WorkerProcess,
    credentials_file: Path,
    tmp_path: Path,
) -> None:
    sc = apple(new_org("applivery-apple"), pending=30, done=5)
    sim.client.add_commands(sc.provider, sc.records)
    original = credentials_file.read_text()
    credentials_file.write_text(original + f'\n[applivery.{sc.org}]\ntoken = "revoked"\n')
    try:
        info = submit_and_wait(env, tmp_path, sc, "--rate", "100")
        assert info["_exit"] == 1, info["_stderr"]
        assert (info["status"], info["reason"]) == ("paused", "unauthorized")
        valid = sum(1 for e in sc.expected if e != "invalid")
        assert info["counts"]["remaining"] == valid  # nothing invented for the targets
        answers = {c["code"] for seq in calls_by_key(sim.client, sc).values() for c in seq}
        assert answers == {4004}
    finally:
        credentials_file.write_text(original)
    resumed = cli(env, "resume", info["job_id"])
    assert resumed.returncode == 0, resumed.stderr
    final = wait_settled(env, info["job_id"])
    assert final["status"] == "completed"
    records = report(env, info["job_id"])
    assert [r["outcome"] for r in records] == sc.expected
    assert_books_exact(final, records)


def test_rate_limit_holds_with_two_worker_processes(
    env: dict[str, str], sim: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    rate = 25
    sc = apple(new_org("applivery-apple"), pending=110, done=0, missing=10)
    sim.client.add_commands(sc.provider, sc.records)
    info = submit_and_wait(env, tmp_path, sc, "--rate", str(rate))
    assert info["_exit"] == 0 and info["status"] == "completed"
    stats = sim.client.stats(window=1.0)
    assert stats["max_per_window"][tenant(sc.provider, sc.org)] <= rate
    times = [c["t"] for seq in calls_by_key(sim.client, sc).values() for c in seq]
    assert len(times) == 120
    assert (len(times) - 1) / (max(times) - min(times)) >= rate * 0.6  # the limit is used
    assert ROUTE[sc.provider] == "apple.cancel"
