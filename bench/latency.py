"""Latency benchmark: a job runs at its rate whatever the vendor's latency, with default settings.

    python bench/latency.py [--targets 30000] [--rate 1000] [--latencies 5,200,1000]

For each latency L (ms), a private Redis, the simulator answering in L ms plus up to L/10 ms of
jitter (no server-side limit), and one ``countermand worker`` with 2 pool processes and every
setting at its default (no concurrency tuning; the tenant's limit is raised above the job's
rate so that only the job's own --rate paces it). A job of ``--targets`` pending Apple commands
is submitted at ``--rate`` with ``--wait``. Printed, from the simulator's request log
(``--profile``: also the requests that arrived in each second, to see where a shortfall lies):

* achieved rate: requests / (last arrival - first arrival), target >= 0.95 x rate (the pacer
  keeps the default 3% headroom under the job's rate: 0.97 x rate is the most it can reach);
* wall rate: targets / (submit returned ... job completed), which adds the submit, the ramp of
  the first answers and the last answers' latency;
* the most requests in flight the simulator saw at once (arrived, not yet answered).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.core import ORG, PYTHON, commands, seed, stack
from bench.limits import write_csv


def most_in_flight(calls: list[dict[str, float]]) -> int:
    events = sorted([(c["t"], 1) for c in calls] + [(c["done"], -1) for c in calls])
    level = best = 0
    for _t, step in events:
        level += step
        best = max(best, level)
    return best


def one(latency_ms: float, targets: int, rate: float, *, profile: bool = False) -> dict[str, float]:
    jitter = latency_ms / 10
    sim_options = ("--latency-ms", str(latency_ms), "--jitter-ms", str(jitter))
    with stack(2, sim_options, tenant_rate=str(rate * 10)) as st:
        records = commands(targets)
        seed(st.sim, records)
        st.sim.reset_requests()
        path = write_csv(st.folder, records)
        started = time.monotonic()
        done = subprocess.run(
            [*PYTHON, "submit", "applivery-apple", str(path), "--org", ORG, "--rate", str(rate),
             "--json", "--wait"],
            env=st.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.monotonic() - started
        info = json.loads(done.stdout)
        calls = st.sim.requests(route="apple.cancel")["requests"]
    times = sorted(c["t"] for c in calls)
    achieved = (len(times) - 1) / (times[-1] - times[0])
    if profile:
        per_second = [0] * (int(times[-1] - times[0]) + 1)
        for t in times:
            per_second[int(t - times[0])] += 1
        print(f"  {latency_ms:.0f} ms, requests in each second from the first:", *per_second)
    return {
        "latency": latency_ms,
        "requests": len(calls),
        "achieved": achieved,
        "wall": targets / wall,
        "in_flight": most_in_flight(calls),
        "canceled": info["counts"]["canceled"],
        "failed": info["counts"]["failed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=30_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--latencies", default="5,200,1000", help="ms, comma-separated")
    parser.add_argument(
        "--profile", action="store_true", help="also print the requests in each second"
    )
    args = parser.parse_args()
    print(f"job rate {args.rate:.0f}/s, {args.targets} targets, 2 pool processes, defaults")
    print("latency   achieved rate         wall rate   most in flight   canceled  failed")
    for latency in (float(x) for x in args.latencies.split(",")):
        r = one(latency, args.targets, args.rate, profile=args.profile)
        print(
            f"{latency:5.0f} ms  {r['achieved']:7.1f}/s = {r['achieved'] / args.rate:.3f} x  "
            f"{r['wall']:7.1f}/s  {r['in_flight']:14d}   {r['canceled']:8d}  {r['failed']:6d}"
        )


if __name__ == "__main__":
    main()
