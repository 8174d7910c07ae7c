"""A hostile vendor, end to end: real Redis, a real worker, the simulator sending broken answers
(``countermand/simulator/faults.py``). For each fault at 5% on Applivery Apple cancels, and for
every read-path fault mixed on a Windows poll (batches over two pages of actions), the job
completes, never pauses, crashes no worker, and every outcome is the simulator's truth.

One simulator and one worker serve the whole module; each case turns its fault on through the
control API and works on its own org, so the request log tells the cases apart."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from countermand.simulator.config import BROKEN_FIELDS
from tests.checks import assert_books_exact, assert_matches_truth, report, submit_and_wait
from tests.conftest import e2e_env
from tests.harness import SimulatorProcess, WorkerProcess, cli, wait_for
from tests.scenarios import Scenario, hex24

pytestmark = pytest.mark.e2e
FAULTS = [field.removesuffix("_rate") for field in BROKEN_FIELDS]
BEFORE_THE_JOB = "2026-02-10T10:00:00.000Z"
HANG_S = 3  # a stall or hang outlasts the client's HTTP_TIMEOUT
SETTINGS = {
    "HTTP_TIMEOUT": "2",
    # Enough tries that a target outlives the faults: `failed` would hide nothing, but it is
    # not what this test is about (tests/test_e2e_truth.py does the same).
    "RETRY_ATTEMPTS": "8",
    "RETRY_TOTAL_DELAY": "60",
    "TENANT_RATE": "2000",
}


@pytest.fixture(scope="module")
def hostile(e2e_dir: Path) -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess(e2e_dir, "--seed", "11", "--hang-seconds", str(HANG_S))
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def hostile_env(
    redis_url: str, hostile: SimulatorProcess, credentials_file: Path
) -> dict[str, str]:
    env = e2e_env(redis_url, hostile.url, credentials_file, db=11)
    return {**env, **{f"COUNTERMAND_{k}": v for k, v in SETTINGS.items()}}


@pytest.fixture(scope="module")
def hostile_worker(e2e_dir: Path, hostile_env: dict[str, str]) -> Iterator[WorkerProcess]:
    process = WorkerProcess(e2e_dir, hostile_env)
    yield process
    process.stop()


@pytest.fixture
def faults(hostile: SimulatorProcess) -> Iterator[Any]:
    """Set fault rates for one test; every rate is 0 again after it."""
    yield lambda **rates: hostile.client.config(**rates)
    hostile.client.config(**dict.fromkeys(BROKEN_FIELDS, 0.0))


def apple_targets(org: str, n: int) -> Scenario:
    """80% pending (canceled), 10% already ran, 5% canceled before the job (not_pending: a read
    back must not claim them), 5% missing (not_found)."""
    sc = Scenario("applivery-apple", org, ["target_id", "command_id", "target_type"])
    for i in range(n):
        kind = i % 20
        target, command = f"SER{secrets.token_hex(5)}", hex24()
        record = {"org": org, "target_type": "device", "target_id": target,
                  "command_id": command, "status": "Pending"}  # fmt: skip
        expected = "canceled"
        if kind in (16, 17):
            record["status"], expected = "Acknowledged", "not_pending"
        elif kind == 18:
            record.update(status="Canceled", canceled_at=BEFORE_THE_JOB)
            expected = "not_pending"
        if kind == 19:
            expected = "not_found"
        else:
            sc.records.append(record)
        sc.add([target, command, "device"], expected)
    return sc


def windows_batch(org: str, statuses: list[str]) -> dict[str, Any]:
    actions = [{"cmd_id": f"cmd-{i}", "status": status, "status_code": 200}
               for i, status in enumerate(statuses)]  # fmt: skip
    return {"org": org, "device_id": hex24(), "command_id": hex24(), "actions": actions}


def mine(sim: SimulatorProcess, org: str) -> list[dict[str, Any]]:
    return [c for c in sim.client.requests()["requests"] if c["tenant"] == f"applivery:{org}"]


def assert_clean_run(info: dict[str, Any], worker: WorkerProcess) -> None:
    """Completed, never paused (a paused job stays paused: nobody resumes it here), and no
    Traceback in the log of the module's worker, ever."""
    assert info["_exit"] == 0, info["_stderr"]
    assert info["status"] == "completed" and info["reason"] is None, info
    log = worker.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert "job paused" not in log


def all_requests_logged(sim: SimulatorProcess, org: str, records: list[dict[str, Any]]) -> None:
    """Every request the worker made is in the simulator's log: a stalled answer is logged
    when it ends, after the job may have completed. Requests equal the attempts reported."""
    sent = sum(int(r["attempts"] or 0) for r in records)
    wait_for(lambda: len(mine(sim, org)) == sent, 30, f"{sent} requests in the log")


@pytest.mark.parametrize("fault", FAULTS)
def test_apple_cancels_stay_true_under_each_fault(
    fault: str,
    faults: Any,
    hostile: SimulatorProcess,
    hostile_env: dict[str, str],
    hostile_worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    org = f"org-{secrets.token_hex(4)}"
    sc = apple_targets(org, 300)
    hostile.client.add_commands(sc.provider, sc.records)
    faults(**{f"{fault}_rate": 0.05})
    info = submit_and_wait(hostile_env, tmp_path, sc, "--rate", "500")
    faults(**{f"{fault}_rate": 0.0})
    assert_clean_run(info, hostile_worker)
    records = report(hostile_env, info["job_id"])
    assert_books_exact(info, records)
    all_requests_logged(hostile, org, records)
    assert_matches_truth(hostile.client, sc, records)
    assert [r["outcome"] for r in records] == sc.expected  # zero differences from the truth
    now = {r["command_id"]: r for r in hostile.client.commands(sc.provider) if r["org"] == org}
    for row, expected in zip(sc.rows, sc.expected, strict=True):
        record = now.get(row[1])
        if expected == "not_found":
            assert record is None
        elif expected == "canceled":  # this job canceled it, and said so
            assert record is not None and record["status"] == "Canceled", record
        else:  # it ran, or was canceled before the job: untouched
            assert record is not None and record["status"] in ("Acknowledged", "Canceled")
            assert record["status"] == "Acknowledged" or record["canceled_at"] == BEFORE_THE_JOB
    assert info["undecided"] == 0 and not [r for r in records if r["verified"] == "unknown"]
    hit = [c for c in mine(hostile, org) if c["fault"] == fault]
    assert len(hit) >= 3, f"only {len(hit)} {fault} answers: the fault was not exercised"


def test_windows_poll_stays_true_under_every_read_fault_mixed(
    faults: Any,
    hostile: SimulatorProcess,
    hostile_env: dict[str, str],
    hostile_worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    org = f"org-{secrets.token_hex(4)}"
    shapes = {  # 150 actions: two pages of the 100 the client asks for
        "pending": ["Acknowledged"] * 149 + ["Pending"],
        "done": ["Acknowledged"] * 150,
        "errored": ["Acknowledged"] * 100 + ["UnexpectedError"] * 50,
        "canceled": ["OperationCanceled"] * 150,
    }
    sc = Scenario("applivery-windows", org, ["device_id", "command_id"])
    batches = []
    for i in range(60):
        expected = sorted(shapes)[i % 4]
        batch = windows_batch(org, shapes[expected])
        batches.append(batch)
        sc.add([str(batch["device_id"]), str(batch["command_id"])], expected)
    for _ in range(4):
        sc.add([hex24(), hex24()], "not_found")
    hostile.client.add_commands(sc.provider, batches)
    faults(**dict.fromkeys(BROKEN_FIELDS, 0.03))
    path = tmp_path / "windows.csv"
    path.write_text(sc.csv_text())
    done = cli(hostile_env, "poll", sc.provider, str(path), "--org", org, "--rate", "500",
               "--wait", "--json")  # fmt: skip
    faults(**dict.fromkeys(BROKEN_FIELDS, 0.0))
    info = {**json.loads(done.stdout), "_exit": done.returncode, "_stderr": done.stderr}
    assert_clean_run(info, hostile_worker)
    records = report(hostile_env, info["job_id"])
    assert_books_exact(info, records)
    assert [r["outcome"] for r in records] == sc.expected
    for record, expected in zip(records, sc.expected, strict=True):
        if expected != "not_found":
            assert len(json.loads(record["actions"])) == 150, record  # every page, whole
    all_requests_logged(hostile, org, records)
    hit = {c["fault"] for c in mine(hostile, org)} - {""}
    assert hit == set(FAULTS), f"faults never drawn: {set(FAULTS) - hit}"
