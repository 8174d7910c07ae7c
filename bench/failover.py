"""Failover benchmark: how long a running job stalls when the Redis primary dies under Sentinel.

    python bench/failover.py [--targets 300] [--rate 30] [--lease-ttl 30] [--reclaim-interval 10]

1. A primary, a replica and three sentinels (``tests/sentinel.py``: ``down-after-milliseconds``
   1000), the simulator, two workers (2 pool processes each) and beat, all through Sentinel.
2. An Applivery Apple job of ``--targets`` at ``--rate`` (about 10 s with the defaults).
3. Once a third of it is done, the primary is SIGKILLed.
Printed: when the sentinels named the replica master, and the failover time the job saw: from
the kill to the next outcome recorded (the job's ``done`` counter, polled every 20 ms through
the sentinels, changing on the new master). The workers' commands are retried through the
outage (``countermand.store.outage``, ``REDIS_GRACE``), so chunk runs carry on once the new
master answers; ``--lease-ttl`` (the shipped 30 s) matters only if they gave up.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from bench.core import ORG, TOKEN, commands, seed
from bench.limits import write_csv
from countermand.store import keys
from tests.harness import BeatProcess, SimulatorProcess, WorkerProcess, cli, cli_json, wait_for
from tests.sentinel import Deployment, sentinel_deployment

DB = 0
POLL = 0.02


def read_done(deployment: Deployment, job_id: str) -> int | None:
    client = deployment.client(DB)
    try:
        return int(client.hget(keys.job(job_id), "done") or 0)
    except (redis.RedisError, OSError):  # no master: the failover is under way
        return None
    finally:
        client.close()


def after_kill(deployment: Deployment, job_id: str, deadline: float) -> tuple[float, float]:
    """Poll until the sentinels name the replica master and ``done`` changed on it: when each
    happened. ``done`` is read through the sentinels: no answer until the new master is known,
    then its first value, then a change (an outcome recorded)."""
    end = time.monotonic() + deadline
    promoted = outcome = None
    first = None
    while promoted is None or outcome is None:
        if time.monotonic() > end:
            raise SystemExit(f"no failover or no outcome within {deadline}s of the kill")
        if promoted is None and deployment.master_port() == deployment.replica.port:
            promoted = time.monotonic()
        value = read_done(deployment, job_id) if outcome is None else None
        if value is not None and first is None:
            first = value
        elif value is not None and value != first:
            outcome = time.monotonic()
        time.sleep(POLL)
    return promoted, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=300)
    parser.add_argument("--rate", type=float, default=30)
    parser.add_argument("--lease-ttl", default="30", help="COUNTERMAND_LEASE_TTL (shipped: 30)")
    parser.add_argument("--reclaim-interval", default="10", help="shipped: 10")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="countermand-failover-"))
    with sentinel_deployment() as deployment:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERMAND_")}
        env.update(deployment.env(DB), COUNTERMAND_APPLIVERY_TOKEN=TOKEN,
                   COUNTERMAND_LEASE_TTL=args.lease_ttl,
                   COUNTERMAND_RECLAIM_INTERVAL=args.reclaim_interval)  # fmt: skip
        sim = SimulatorProcess(folder)
        env["COUNTERMAND_APPLIVERY_URL"] = sim.url
        workers = [WorkerProcess(folder, env, 2) for _ in range(2)]
        beat = BeatProcess(folder, env, "failover")
        try:
            records = commands(args.targets)
            seed(sim.client, records)
            done = cli(env, "submit", "applivery-apple", str(write_csv(folder, records)),
                       "--org", ORG, "--rate", str(args.rate))  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"submit failed: {done.stderr[-2000:]}")
            job_id = done.stdout.strip()
            started = time.monotonic()
            wait_for(lambda: (read_done(deployment, job_id) or 0) >= args.targets // 3, 120,
                     "a third of the job", POLL)  # fmt: skip
            deployment.primary.kill()
            killed = time.monotonic()
            promoted_at, outcome = after_kill(deployment, job_id, 600)
            wait_for(lambda: cli_json(env, "status", job_id, "--json")["status"] == "completed",
                     600, "the job to complete", 0.5)  # fmt: skip
            end = time.monotonic()
        finally:
            beat.stop()
            for worker in workers:
                worker.stop()
            sim.stop()
    print(f"targets, rate                 {args.targets} at {args.rate:g}/s")
    print(f"lease ttl, reclaim interval   {args.lease_ttl} s, {args.reclaim_interval} s")
    print(f"killed the primary after      {killed - started:.1f} s")
    print(f"new master named by sentinels {promoted_at - killed:.2f} s after the kill")
    print(f"failover time the job saw     {outcome - killed:.2f} s (kill to next outcome)")
    print(f"job completed                 {end - started:.1f} s after submit")


if __name__ == "__main__":
    main()
