"""Redis SIGKILLed and started again mid-job (AOF everysec): how soon work resumes.

    python bench/redis_restart.py [--targets 3000] [--rate 200] [--outage 3] [--runs 3]

Each run: a private Redis with ``appendonly yes``/``appendfsync everysec``, the simulator and
one worker (2 pool processes); an Applivery Apple job of ``--targets`` pending commands at
``--rate``. Once a third is done, Redis is SIGKILLed, kept down ``--outage`` seconds and started
again on the same files. Printed per run: the seconds from Redis answering again to the next
recorded outcome (the bar: 5), the job's status, outcomes other than ``canceled`` (every
command was pending: each one is a difference from the simulator's truth), targets sent again
after the vendor answered them (double sends; the bar: rate x 1 s), and the warnings the
worker logged from the kill on.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from bench.core import ORG, PYTHON, commands, seed, stack
from bench.limits import write_csv
from countermand.localredis import RestartableRedis
from countermand.store import keys


def done(url: str, job_id: str) -> int:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return int(client.hget(keys.job(job_id), "done") or 0)
    except redis.RedisError:
        return -1
    finally:
        client.close()


def until(check: object, deadline: float, what: str) -> None:
    end = time.monotonic() + deadline
    while not check():  # type: ignore[operator]
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def one(targets: int, rate: float, outage: float) -> dict[str, object]:
    server = RestartableRedis()
    try:
        with stack(2, redis_url=server.url, tenant_rate="100000") as st:
            records = commands(targets)
            seed(st.sim, records)
            path = write_csv(st.folder, records)
            submit = subprocess.run(
                [*PYTHON, "submit", "applivery-apple", str(path), "--org", ORG,
                 "--rate", str(rate)],
                env=st.env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            job_id = submit.stdout.strip()
            until(lambda: done(server.url, job_id) >= targets // 3, 120, "the job under way")
            logged_before = (st.folder / "worker.log").stat().st_size
            server.kill()
            time.sleep(outage)  # the outage's length is the experiment, not a wait for a state
            server.start()
            back = time.monotonic()
            before = done(server.url, job_id)
            until(lambda: done(server.url, job_id) > before, 120, "an outcome after the restart")
            resumed = time.monotonic() - back
            until(lambda: done(server.url, job_id) >= targets, 300, "the job to complete")
            report = subprocess.run(
                [*PYTHON, "report", job_id], env=st.env, capture_output=True, text=True,
                check=True,
            )  # fmt: skip
            outcomes = Counter(row["outcome"] for row in csv.DictReader(io.StringIO(report.stdout)))
            calls = st.sim.requests(route="apple.cancel")["requests"]
            answered = Counter(c["key"] for c in calls if c["status"] != 0)
            with (st.folder / "worker.log").open("rb") as worker_log:
                worker_log.seek(logged_before)  # what the worker logged from the kill on
                log = worker_log.read().decode(errors="replace")
            status = subprocess.run([*PYTHON, "status", job_id, "--json"], env=st.env,
                                    capture_output=True, text=True, check=True).stdout  # fmt: skip
        return {
            "resumed_s": resumed,
            "completed": '"status": "completed"' in status,
            "not_canceled": sum(n for o, n in outcomes.items() if o != "canceled"),
            "double_sends": sum(n - 1 for n in answered.values() if n > 1),
            "warnings": sum(1 for line in log.splitlines() if "[warning" in line),
            "tracebacks": log.count("Traceback"),
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--outage", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.targets} targets at {args.rate:g}/s, Redis down {args.outage:g}s, "
          f"{args.runs} runs")  # fmt: skip
    for n in range(args.runs):
        r = one(args.targets, args.rate, args.outage)
        print(
            f"run {n + 1}: next outcome {r['resumed_s']:.2f}s after Redis answered (bar 5 s); "
            f"completed {r['completed']}; differences from truth {r['not_canceled']}; "
            f"double sends {r['double_sends']} (bar {args.rate:g}); warnings {r['warnings']}; "
            f"tracebacks {r['tracebacks']}"
        )


if __name__ == "__main__":
    main()
