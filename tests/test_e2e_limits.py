"""End to end: 429 feedback, retry rounds by hand and on schedule, abort threshold."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.checks import (
    assert_books_exact,
    call_key,
    calls_by_key,
    report,
    submit_and_wait,
    tenant,
    wait_settled,
)
from tests.harness import BeatProcess, SimulatorProcess, WorkerProcess, cli, cli_json
from tests.scenarios import apple

pytestmark = pytest.mark.e2e


def new_org() -> str:
    return f"org-{secrets.token_hex(4)}"


@pytest.fixture
def faults(sim: SimulatorProcess) -> Iterator[SimulatorProcess]:
    """Faults for one test only."""
    yield sim
    sim.client.config(rate_limit=0, retry_after=None, error_rate=0.0)


def arrivals(sim: SimulatorProcess, org: str) -> list[dict[str, object]]:
    calls = sim.client.requests(route="apple.cancel")["requests"]
    return sorted((c for c in calls if c["tenant"] == f"applivery:{org}"), key=lambda c: c["t"])


def test_429_with_retry_after_holds_every_worker_process(
    env: dict[str, str], faults: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    faults.client.config(rate_limit=10, retry_after=1.5)
    sc = apple(new_org(), pending=45, done=0, missing=0)
    faults.client.add_commands(sc.provider, sc.records)
    info = submit_and_wait(faults_env := env, tmp_path, sc, "--rate", "100")
    assert info["_exit"] == 0 and info["status"] == "completed", info["_stderr"]
    assert info["counts"]["canceled"] == 45 and info["counts"]["failed"] == 0
    calls = arrivals(faults, sc.org)
    first_429 = next(c["t"] for c in calls if c["status"] == 429)
    held = [c for c in calls if first_429 + 0.15 < c["t"] < first_429 + 1.35]  # type: ignore[operator]
    assert held == [], "a worker process sent during the tenant's hold"
    assert faults_env is env


def test_429_storm_without_retry_after_lowers_the_rate_and_fails_nothing(
    env: dict[str, str], faults: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    faults.client.config(rate_limit=15, retry_after=None)
    sc = apple(new_org(), pending=90, done=0, missing=0)
    faults.client.add_commands(sc.provider, sc.records)
    info = submit_and_wait(env, tmp_path, sc, "--rate", "60")
    assert info["_exit"] == 0 and info["status"] == "completed", info["_stderr"]
    assert info["counts"]["canceled"] == 90 and info["counts"]["failed"] == 0
    status = cli_json(env, "status", info["job_id"], "--json")
    assert status["limiter"]["effective_rate"] < status["limiter"]["limit"]
    assert_books_exact(status, report(env, info["job_id"]))


def test_retry_calls_only_the_failed_targets(
    env: dict[str, str], faults: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    faults.client.config(error_rate=0.8)
    sc = apple(new_org(), pending=40, done=0, missing=0)
    faults.client.add_commands(sc.provider, sc.records)
    info = submit_and_wait(env, tmp_path, sc, "--rate", "200")
    assert info["status"] == "completed" and info["counts"]["failed"] > 0
    first = report(env, info["job_id"])
    failed_keys = {call_key(sc, row) for row, r in zip(sc.rows, first, strict=True)
                   if r["outcome"] == "failed"}  # fmt: skip
    before = {k: len(v) for k, v in calls_by_key(faults.client, sc).items()}
    faults.client.config(error_rate=0.0)
    done = cli(env, "retry", info["job_id"], "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["round"] == 1
    final = wait_settled(env, info["job_id"])
    assert final["status"] == "completed" and final["counts"]["failed"] == 0
    after = {k: len(v) for k, v in calls_by_key(faults.client, sc).items()}
    called_again = {k for k in after if after[k] > before.get(k, 0)}
    assert called_again == failed_keys
    records = report(env, info["job_id"])
    assert_books_exact(final, records)
    for r, old in zip(records, first, strict=True):
        if old["outcome"] == "failed":
            assert r["outcome"] == "canceled" and int(r["attempts"]) > int(old["attempts"])


def test_auto_retry_rounds_stop_at_n_with_two_beat_processes(
    env: dict[str, str],
    faults: SimulatorProcess,
    worker: WorkerProcess,
    e2e_dir: Path,
    tmp_path: Path,
) -> None:
    beats = [BeatProcess(e2e_dir, env, name) for name in ("a", "b")]
    try:
        faults.client.config(error_rate=1.0)
        sc = apple(new_org(), pending=6, done=0, missing=0)
        faults.client.add_commands(sc.provider, sc.records)
        path = tmp_path / "in.csv"
        path.write_text(sc.csv_text())
        done = cli(env, "submit", sc.provider, str(path), "--org", sc.org, "--auto-retry", "2")
        job_id = done.stdout.strip()

        def final_round() -> dict[str, object] | None:
            info = cli_json(env, "status", job_id, "--json")
            settled = info["status"] == "completed" and info["next_retry_at"] is None
            return info if settled and info["round"] == 2 else None

        from tests.harness import wait_for

        info = wait_for(final_round, 90, "the second auto-retry round to finish", every=0.5)
        assert info["counts"]["failed"] == 6
        attempts = int(env["COUNTERMAND_RETRY_ATTEMPTS"])
        per_target = {k: len(v) for k, v in calls_by_key(faults.client, sc).items()}
        assert set(per_target.values()) == {3 * attempts}  # 3 rounds, none twice
    finally:
        for beat in beats:
            beat.stop()


def test_abort_threshold_leaves_untried_targets_uncalled(
    env: dict[str, str], faults: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    faults.client.config(error_rate=1.0)
    sc = apple(new_org(), pending=80, done=0, missing=0)
    faults.client.add_commands(sc.provider, sc.records)
    info = submit_and_wait(env, tmp_path, sc, "--rate", "20", "--abort-at", "50",
                           "--abort-min", "5")  # fmt: skip
    assert info["_exit"] == 1
    assert (info["status"], info["reason"]) == ("aborted", "abort_threshold")
    called = set(calls_by_key(faults.client, sc))
    records = report(env, info["job_id"])
    valid = [(row, r) for row, r, e in zip(sc.rows, records, sc.expected, strict=True)
             if e != "invalid"]  # fmt: skip
    untried = [row for row, r in valid if r["attempts"] == 0]
    assert untried, "the threshold should stop the job before every target was tried"
    assert all(r["outcome"] == "remaining" for _, r in valid if r["attempts"] == 0)
    assert not {call_key(sc, row) for row in untried} & called
    assert tenant(sc.provider, sc.org) in {c["tenant"] for c in arrivals(faults, sc.org)}
