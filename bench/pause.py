"""How fast a pause stops the vendor calls of a running job.

    python bench/pause.py [--rates 20,200,2000] [--latency-ms 20]

For each rate: a job of Applivery Apple cancels runs on one worker with 2 pool processes against
the simulator (``--latency-ms`` per answer); once it is under way, it is paused with the
function ``countermand pause`` calls (in this process, so that the instant it returned is
exact). Printed, from the simulator's log: the requests that arrived after the pause
command returned, the calls that were in flight at that instant (the rule: the first never
exceeds the second), and the time from the pause returning to the last request's arrival
(negative: the last request arrived before ``pause`` returned).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

from countermand.audit import Actor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from bench.core import ORG, PYTHON, commands, seed, stack
from bench.limits import write_csv
from countermand import jobs
from countermand.store import Store, keys

ACTOR = Actor.system("test")


async def pause(url: str, job_id: str) -> None:
    """What ``countermand pause`` does, in this process, so that "returned" is exact."""
    store = Store.connect(url)
    try:
        await jobs.pause(store, job_id, actor=ACTOR)
    finally:
        await store.close()


def wait_released(url: str, job_id: str, deadline: float = 60) -> None:
    """Until every chunk run of the job has stopped and given its lease back (a message not yet
    run holds at most its reservation): no request of the job can start after that."""
    client = redis.Redis.from_url(url, decode_responses=True)
    end = time.monotonic() + deadline
    try:
        while not all(o.startswith("rsv:") for o in client.hvals(keys.owners(job_id))):
            if time.monotonic() > end:
                raise SystemExit("the workers did not let go of the job")
            time.sleep(0.05)
    finally:
        client.close()


def one(st: object, rate: float, latency_ms: float) -> tuple[int, int, float]:
    env, sim, folder = st.env, st.sim, st.folder  # type: ignore[attr-defined]
    records = commands(int(rate * 20) + 200)
    seed(sim, records)
    sim.config(latency_ms=latency_ms)
    sim.reset_requests()
    done = subprocess.run(
        [*PYTHON, "submit", "applivery-apple", str(write_csv(folder, records)), "--org", ORG,
         "--rate", str(rate)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    job_id = done.stdout.strip()
    deadline = time.monotonic() + 60
    while sim.requests()["total"] < max(20, rate * 2):  # a couple of seconds under way
        if time.monotonic() > deadline:
            raise SystemExit("the job did not start")
        time.sleep(0.05)
    asyncio.run(pause(st.redis_url, job_id))  # type: ignore[attr-defined]
    returned = time.time()
    wait_released(st.redis_url, job_id)  # type: ignore[attr-defined]
    log = sim.requests()["requests"]
    after = [c for c in log if c["t"] > returned]
    in_flight = [c for c in log if c["t"] <= returned < c["done"]]
    last = max(c["t"] for c in log) - returned
    subprocess.run([*PYTHON, "abort", job_id], env=env, capture_output=True, check=False)
    return len(after), len(in_flight), last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="20,200,2000")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    print(f"latency {args.latency_ms:g} ms per answer, 1 worker x 2 pool processes x 32 in flight")
    print("rate/s  after pause  in flight at pause  pause -> last request")
    with stack(2, tenant_rate="100000") as st:
        for rate in rates:
            after, in_flight, last = one(st, rate, args.latency_ms)
            print(f"{rate:>6g}  {after:>11}  {in_flight:>18}  {last * 1000:>+17.0f} ms")


if __name__ == "__main__":
    main()
