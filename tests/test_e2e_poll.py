"""End to end: poll jobs (Windows batches over several pages) and the redelivery race."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from tests.checks import assert_books_exact, report, wait_settled, write_input
from tests.conftest import e2e_env
from tests.harness import SimulatorProcess, WorkerProcess, cli, wait_for
from tests.scenarios import Scenario, apple, hex24

pytestmark = pytest.mark.e2e


def windows_batch(org: str, statuses: list[str]) -> dict[str, object]:
    actions = [
        {"cmd_id": f"cmd-{i}", "status": status, "path": f"./Vendor/MSFT/Policy/{i}",
         "action": "Replace", "status_code": 200}
        for i, status in enumerate(statuses)
    ]  # fmt: skip
    return {"org": org, "device_id": hex24(), "command_id": hex24(), "actions": actions}


def test_windows_poll_reads_every_page_of_actions(
    env: dict[str, str], sim: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    org = f"org-{secrets.token_hex(4)}"
    batches = [
        windows_batch(org, ["Acknowledged"] * 129 + ["Pending"]),  # 2 pages: the last is pending
        windows_batch(org, ["Acknowledged"] * 3),
        windows_batch(org, ["OperationCanceled", "Acknowledged", "UnexpectedError"]),
        windows_batch(org, ["CommandNotExecutedUserCanceled"] * 2),
    ]
    sim.client.add_commands("applivery-windows", batches)
    sc = Scenario("applivery-windows", org, ["device_id", "command_id"])
    for batch, expected in zip(batches, ["pending", "done", "errored", "canceled"], strict=True):
        sc.add([str(batch["device_id"]), str(batch["command_id"])], expected)
    sc.add([hex24(), hex24()], "not_found")
    path = write_input(tmp_path, sc)
    done = cli(env, "poll", sc.provider, str(path), "--org", org, "--wait", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["kind"] == "poll" and info["status"] == "completed"
    records = report(env, info["job_id"])
    assert [r["outcome"] for r in records] == sc.expected
    assert_books_exact(info, records)
    actions = json.loads(records[0]["actions"])
    assert len(actions) == 130 and actions[-1]["status"] == "Pending"
    assert {"cmdId", "path", "action", "status", "statusCode", "sentAt"} <= set(actions[0])
    assert records[0]["vendor_status"] == "Acknowledged,Pending"
    cancels = [c for c in sim.client.requests()["requests"]
               if c["tenant"] == f"applivery:{org}" and c["route"].endswith("cancel")]  # fmt: skip
    assert cancels == []  # a poll changes nothing


def test_windows_cannot_be_submitted_for_cancel(env: dict[str, str]) -> None:
    done = cli(env, "submit", "applivery-windows", "-", "--org", "acme-corp",
               stdin="device_id,command_id\nD1,5f8d0d55b54764421b7156c1\n")  # fmt: skip
    assert done.returncode == 2 and "countermand poll" in done.stderr


def test_redelivery_race_reads_back_a_cancel_that_took(
    redis_url: str,
    sim: SimulatorProcess,
    credentials_file: Path,
    e2e_dir: Path,
    tmp_path: Path,
) -> None:
    env = e2e_env(redis_url, sim.url, credentials_file, db=5)
    sc = apple(f"org-{secrets.token_hex(4)}", pending=1, done=0, missing=0)
    command = sc.records[0]["command_id"]
    sim.client.add_commands(sc.provider, sc.records)
    first = WorkerProcess(e2e_dir, env)
    second = None
    sim.client.config(cancel_stall_s=30)  # the API takes the cancel, then the answer stalls
    try:
        done = cli(env, "submit", sc.provider, str(write_input(tmp_path, sc)), "--org", sc.org)
        job_id = done.stdout.strip()

        def taken() -> bool:
            records = sim.client.commands(sc.provider)
            return any(r["command_id"] == command and r["status"] == "Canceled" for r in records)

        wait_for(taken, 30, "the simulator to accept the cancel")
        first.kill_all()  # the worker dies before it hears the answer
        sim.client.config(cancel_stall_s=0)
        second = WorkerProcess(e2e_dir, env)
        info = wait_settled(env, job_id, deadline=60)
    finally:
        sim.client.config(cancel_stall_s=0)
        for process in (first, second):
            if process is not None:
                process.stop()
    records = report(env, job_id)
    assert records[0]["outcome"] == "canceled", records[0]
    assert records[0]["vendor_status"] == "Canceled"
    assert_books_exact(info, records)
    log = sim.client.requests()["requests"]
    mine = [c for c in log if c["tenant"] == f"applivery:{sc.org}"]
    assert [c["route"] for c in mine if c["route"] == "apple.get"] == ["apple.get"]
    assert any(c["code"] == 5106 for c in mine)  # the redelivered cancel heard "too late"


def test_verify_turns_android_cancel_requested_into_the_final_state(
    env: dict[str, str], sim: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    from tests.scenarios import android

    sc = android(f"org-{secrets.token_hex(4)}", pending=20, done=2, missing=1)
    sim.client.add_commands(sc.provider, sc.records)
    sim.client.config(android_cancel_done_rate=0.5)  # Google finishes some operations anyway
    try:
        path = write_input(tmp_path, sc)
        done = cli(env, "submit", sc.provider, str(path), "--org", sc.org, "--verify", "--wait",
                   "--json")  # fmt: skip
    finally:
        sim.client.config(android_cancel_done_rate=0.0)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["status"] == "completed" and info["verify"] is True
    records = report(env, info["job_id"])
    assert_books_exact(info, records)
    truth = {
        (r["device_id"], r["command_id"]): r["status"] for r in sim.client.commands(sc.provider)
    }
    finished_anyway = 0
    for row, expected, record in zip(sc.rows, sc.expected, records, strict=True):
        if expected != "cancel_requested":
            assert record["outcome"] == expected
            continue
        state = truth[(row[0], row[1])]
        assert record["outcome"] == {"CANCELLED": "canceled", "DONE": "not_pending"}[state]
        assert record["verified"] == {"CANCELLED": "canceled", "DONE": "done"}[state]
        finished_anyway += state == "DONE"
    assert 0 < finished_anyway < 20
    assert info["counts"]["cancel_requested"] == 0
