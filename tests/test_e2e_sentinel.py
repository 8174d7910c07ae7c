"""Redis Sentinel: the primary is SIGKILLed in the middle of a job; the sentinels promote the
replica, and the job completes on it, every target final exactly once and true to the
simulator.

Everything reaches Redis through the sentinels alone: the store of the workers and of the CLI
(redis-py's asyncio ``Sentinel``), the broker (kombu's Sentinel transport) and beat (RedBeat).
``COUNTERMAND_REDIS_URL`` names no server (``sentinel-decides``), only the database and the
password, so anything that read it for an address would fail from the start."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from countermand.store import keys
from tasks.messages import RETRY_SWEEP_TASK
from tests.checks import assert_books_exact, assert_matches_truth, report, wait_settled, write_input
from tests.conftest import e2e_env
from tests.harness import BeatProcess, SimulatorProcess, WorkerProcess, cli, wait_for
from tests.scenarios import apple
from tests.sentinel import Deployment, sentinel_deployment

pytestmark = pytest.mark.e2e
DB = 5  # not 0: the database comes from the URL through every translation
WORKERS, CONCURRENCY, IN_FLIGHT = 2, 2, 32
RATE = 30  # 300 targets: about 10 s


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    with sentinel_deployment() as started:
        yield started


def done_count(deployment: Deployment, job_id: str) -> int | None:
    """The job's ``done`` counter read through the sentinels; None while no master answers."""
    client = deployment.client(DB)
    try:
        return int(client.hget(keys.job(job_id), "done") or 0)
    except (redis.RedisError, OSError):  # no master yet: the failover is under way
        return None
    finally:
        client.close()


def sweeps_sent(beat: BeatProcess) -> int:
    return beat.log_path.read_text(errors="replace").count("Sending due task retry-sweep")


def sweeps_run(workers: list[WorkerProcess]) -> int:
    """Retry sweeps the workers took from the broker and ran."""
    pattern = re.compile(re.escape(RETRY_SWEEP_TASK) + r"\[[^]]+\] succeeded")
    return sum(len(pattern.findall(w.log_path.read_text(errors="replace"))) for w in workers)


def test_job_completes_across_a_failover(
    deployment: Deployment,
    sim: SimulatorProcess,
    credentials_file: Path,
    e2e_dir: Path,
    tmp_path: Path,
) -> None:
    env = {**e2e_env("redis://unused/0", sim.url, credentials_file), **deployment.env(DB)}
    workers = [WorkerProcess(e2e_dir, env, CONCURRENCY) for _ in range(WORKERS)]
    beat = BeatProcess(e2e_dir, env, "sentinel")
    try:
        wait_for(lambda: sweeps_sent(beat) > 0, 60, "beat to send a retry sweep")
        sc = apple(f"org-{secrets.token_hex(4)}", pending=260, done=30, missing=10)
        sim.client.add_commands(sc.provider, sc.records)
        done = cli(env, "submit", sc.provider, str(write_input(tmp_path, sc)), "--org", sc.org,
                   "--rate", str(RATE))  # fmt: skip
        assert done.returncode == 0, done.stderr
        job_id = done.stdout.strip()
        wait_for(lambda: (done_count(deployment, job_id) or 0) >= 90, 90, "the job under way")
        done_before = done_count(deployment, job_id)
        deployment.primary.kill()
        killed_at, killed_wall = time.monotonic(), time.time()
        wait_for(lambda: deployment.master_port() == deployment.replica.port, 60, "the failover")
        sent, run = sweeps_sent(beat), sweeps_run(workers)

        info = wait_settled(env, job_id, deadline=180)
        assert info["status"] == "completed", info
        assert done_before is not None and done_before < info["total"], "killed after the end"
        records = report(env, job_id)
        assert_books_exact(info, records)
        # Answers lost with the primary's last writes, or heard while Redis was away, are read
        # back (the epoch changed): a target may be canceled by us and then heard not pending.
        assert_matches_truth(
            sim.client, sc, records, races_allowed=WORKERS * CONCURRENCY * IN_FLIGHT
        )

        # The workers saw the new server (the epoch changed); beat still fires on it, and the
        # workers take what it sends from the broker.
        master = deployment.client(DB)
        try:
            epoch = master.hgetall(keys.EPOCH)
            assert epoch["run_id"] == deployment.replica.ask("INFO", "server")["run_id"]
            assert float(epoch["changed_at"]) >= killed_wall - 1
        finally:
            master.close()
        wait_for(lambda: sweeps_sent(beat) > sent, 60, "beat to send a sweep after the failover")
        wait_for(lambda: sweeps_run(workers) > run, 60, "a worker to run a sweep after it")
        assert beat.proc.poll() is None and all(w.proc.poll() is None for w in workers)
        assert time.monotonic() - killed_at < 180
    finally:
        beat.stop()
        for worker in workers:
            worker.stop()
