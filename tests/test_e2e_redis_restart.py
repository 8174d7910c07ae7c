"""Redis SIGKILLed and started again mid-job (AOF everysec): workers and ``--wait`` ride it
out by themselves.

The job completes, exactly once and true against the simulator; outcomes are recorded again
soon after Redis answers (well before a chunk lease could expire and be reclaimed: nothing is
reclaimed); each worker process logs the outage once, as a warning, with no traceback; the CLI's
``--wait`` sees it through. The seconds from Redis answering to the next outcome are printed by
``bench/redis_restart.py``."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from countermand.localredis import RestartableRedis
from tests.checks import (
    assert_books_exact,
    assert_matches_truth,
    job_done,
    report,
    wait_settled,
    write_input,
)
from tests.conftest import e2e_env
from tests.harness import PYTHON, SimulatorProcess, WorkerProcess, wait_for
from tests.scenarios import apple

pytestmark = pytest.mark.e2e
OUTAGE = 3.0  # seconds Redis stays down
CONCURRENCY = 2  # pool processes of the worker


@pytest.fixture
def aof_redis() -> Iterator[RestartableRedis]:
    server = RestartableRedis()
    yield server
    server.stop()


def test_redis_killed_and_restarted_mid_job(
    aof_redis: RestartableRedis,
    sim: SimulatorProcess,
    credentials_file: Path,
    e2e_dir: Path,
    tmp_path: Path,
) -> None:
    env = e2e_env(aof_redis.url, sim.url, credentials_file)
    env["COUNTERMAND_LEASE_TTL"] = "30"  # resuming must not wait for a lease to expire
    worker = WorkerProcess(e2e_dir, env, CONCURRENCY)
    try:
        sc = apple(f"org-{secrets.token_hex(4)}", pending=900, done=60, missing=40)
        sim.client.add_commands(sc.provider, sc.records)
        waiting = subprocess.Popen(
            [*PYTHON, "submit", sc.provider, str(write_input(tmp_path, sc)), "--org", sc.org,
             "--rate", "100", "--wait", "--json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        job_id = wait_for(lambda: _job_id(aof_redis.url), 30, "the job to be submitted")
        wait_for(lambda: job_done(env, job_id) >= 200, 60, "the job to be under way")
        logged_before = len(worker.log_path.read_text())
        aof_redis.kill()
        down_until = time.monotonic() + OUTAGE
        wait_for(lambda: time.monotonic() >= down_until, OUTAGE + 1, "the outage to last")
        aof_redis.start()
        back = time.monotonic()
        before = job_done(env, job_id)
        wait_for(lambda: job_done(env, job_id) > before, 20, "an outcome after Redis came back")
        resumed_after = time.monotonic() - back
        _out, err = waiting.communicate(timeout=120)
        assert waiting.returncode == 0, err
        info = wait_settled(env, job_id, deadline=60)
        assert info["status"] == "completed", info
        records = report(env, job_id)
        assert_books_exact(info, records)
        # a cancel the vendor took in the last second before the kill may be recorded again
        # after AOF lost it: resolved by the read rules, never counted twice
        assert_matches_truth(sim.client, sc, records, races_allowed=100)
        assert resumed_after < 25, resumed_after  # not after the 30 s lease expiry
        log = worker.log_path.read_text()
        assert "Traceback" not in log, log[-4000:]
        assert "(owner gone)" not in log
        # from the kill on (Celery's warning may come before the pool processes' first one)
        told = log[logged_before:].splitlines()
        loud = [line for line in told if "[warning" in line or "[error" in line]
        # once per process: Celery's in the main process, Countermand's in each pool process
        assert len([line for line in loud if "Redis unreachable" in line]) == CONCURRENCY, loud
        assert len(loud) == CONCURRENCY + 1, loud
        assert "Traceback" not in err, err
    finally:
        worker.stop()


def _job_id(url: str) -> str | None:
    import redis

    from countermand.store import keys

    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        newest = client.zrange(keys.JOBS, -1, -1)
        return str(newest[0]) if newest else None
    finally:
        client.close()
