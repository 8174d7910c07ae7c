"""Redeploys are not crashes: SIGTERM makes a worker stop starting requests, record what is on
the wire and hand its chunks back before it exits (``Runner.drain`` from ``bridge.stop``).

Both workers are redeployed one after the other mid-job (SIGTERM to the main process, as
compose and Kubernetes send it, then a new worker in its place): the job completes, no chunk
waited for a lease to expire, and no target was sent twice (the simulator's log)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.checks import (
    assert_books_exact,
    assert_matches_truth,
    calls_by_key,
    job_done,
    lease_pids,
    report,
    wait_settled,
    write_input,
)
from tests.conftest import e2e_env
from tests.harness import SimulatorProcess, WorkerProcess, cli, wait_for
from tests.scenarios import apple

pytestmark = pytest.mark.e2e


def test_both_workers_redeployed_mid_job_with_zero_double_sends(
    redis_url: str,
    sim: SimulatorProcess,
    credentials_file: Path,
    e2e_dir: Path,
    tmp_path: Path,
    workers: list[WorkerProcess],
) -> None:
    env = e2e_env(redis_url, sim.url, credentials_file, db=5)
    workers.append(WorkerProcess(e2e_dir, env))
    sc = apple(f"org-{secrets.token_hex(4)}", pending=560, done=30, missing=10)
    sim.client.add_commands(sc.provider, sc.records)
    done = cli(env, "submit", sc.provider, str(write_input(tmp_path, sc)), "--org", sc.org,
               "--rate", "60")  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    redeployed = []
    for _ in range(2):  # a rolling update: the new worker starts, then the old one stops
        old = workers[-1]
        wait_for(
            lambda old=old: lease_pids(env, job_id) & set(old.pool_pids()),
            60,
            f"worker {old.name} to hold a chunk",
            every=0.02,
        )
        workers.append(WorkerProcess(e2e_dir, env))
        assert lease_pids(env, job_id) & set(old.pool_pids()), "the old worker still holds one"
        before = job_done(env, job_id)
        old.stop()  # SIGTERM, and wait for the exit
        assert old.proc.returncode == 0, old.log_path.read_text()[-3000:]
        redeployed.append(old)
        workers.remove(old)
        wait_for(lambda before=before: job_done(env, job_id) > before + 20, 60, "progress")
    info = wait_settled(env, job_id, deadline=120)
    assert info["status"] == "completed", info
    records = report(env, job_id)
    assert_books_exact(info, records)
    assert_matches_truth(sim.client, sc, records)
    sent_twice = {
        key: len(seq) for key, seq in calls_by_key(sim.client, sc).items() if len(seq) > 1
    }
    assert sent_twice == {}
    for old in redeployed:
        log = old.log_path.read_text()
        assert "chunk done: handed_back" in log, log[-3000:]
    for process in [*redeployed, *workers]:
        assert "(owner gone)" not in process.log_path.read_text()
