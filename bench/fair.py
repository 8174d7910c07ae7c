"""Fairness benchmark: the seconds behind tests/test_e2e_fair.py.

    python bench/fair.py [--limit 200] [--bulk 200000] [--urgent 300] [--normal 2000]

A private Redis, the simulator holding the tenant to ``--limit`` requests/s (429 past it), one
worker with 2 pool processes, the tenant's limit set to the same figure, default chunk size.

1. A bulk job of ``--bulk`` targets at --rate LIMIT is submitted and let run.
2. An urgent job of ``--urgent`` pending commands at --rate LIMIT is submitted. Printed: its
   first request after ``submit`` returned (target <= 2 s), its completion after ``submit``
   returned (target <= urgent / limit x 1.5 + 2 s), its part of the requests while it ran
   (all but the 5% floor: 0.95), and whether the bulk job still runs when it completes.
3. Two normal jobs of ``--normal`` targets each are submitted together. Printed: each one's part
   of the two's requests while both ran (target 50% +- 10%), and the normal jobs' part of all
   requests then (normal : bulk = 4 : 1, so 0.8).
4. The number of 429 answers over the whole run (target 0).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.core import ORG, PYTHON, commands, seed, stack
from bench.limits import write_csv
from countermand.store import keys


def unknown(folder: Path, prefix: str, n: int) -> Path:
    path = folder / f"{prefix}.csv"
    with path.open("w") as out:
        out.write("target_id,command_id\n")
        out.writelines(f"{prefix}{i:07d},{i:024x}\n" for i in range(n))
    return path


def start(env: dict[str, str], path: Path, rate: float, priority: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PYTHON, "submit", "applivery-apple", str(path), "--org", ORG, "--rate", str(rate),
         "--priority", priority],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finished(proc: subprocess.Popen[str]) -> tuple[str, float]:
    """The job id a submit printed, and when it returned (unix time)."""
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"submit failed: {err[-2000:]}")
    return out.strip(), time.time()


def cancels(st: Any) -> list[dict[str, Any]]:
    return sorted(st.sim.requests(route="apple.cancel")["requests"], key=lambda c: c["t"])


def target(call: dict[str, Any]) -> str:
    return str(call["key"]).split("/")[1]


def wait_status(client: redis.Redis, job_id: str, statuses: set[str], deadline: float) -> None:
    end = time.monotonic() + deadline
    while client.hget(keys.job(job_id), "status") not in statuses:
        if time.monotonic() > end:
            raise SystemExit(f"job {job_id} not {statuses} within {deadline}s")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=200.0)
    parser.add_argument("--bulk", type=int, default=200_000)
    parser.add_argument("--urgent", type=int, default=300)
    parser.add_argument("--normal", type=int, default=2000)
    args = parser.parse_args()
    limit = args.limit
    sim_options = ("--rate-limit", str(limit))
    with stack(2, sim_options, tenant_rates=f'{{"applivery": {limit}}}') as st:
        client = redis.Redis.from_url(st.redis_url, decode_responses=True)
        bulk, _ = finished(start(st.env, unknown(st.folder, "BULK", args.bulk), limit, "bulk"))
        while len(cancels(st)) < limit * 5:  # let it run for about five seconds
            time.sleep(0.2)
        records = commands(args.urgent)
        seed(st.sim, records)
        urgent, returned = finished(start(st.env, write_csv(st.folder, records), limit, "urgent"))
        wait_status(client, urgent, {"completed"}, 120)
        done_at = float(client.hget(keys.job(urgent), "finished_at") or 0)
        bulk_status = client.hget(keys.job(bulk), "status")
        calls = cancels(st)
        mine = [c for c in calls if target(c).startswith("SER")]
        first, last = mine[0]["t"], mine[-1]["t"]
        during = [c for c in calls if first <= c["t"] <= last]
        part = len(mine) / len(during)
        budget = args.urgent / limit * 1.5 + 2
        print(f"tenant limit {limit:.0f}/s; bulk {args.bulk} targets, urgent {args.urgent}")
        print(f"urgent first request after submit returned   {first - returned:6.2f} s  (<= 2 s)")
        print(f"urgent completed after submit returned       {done_at - returned:6.2f} s  "
              f"(<= {budget:.2f} s)")  # fmt: skip
        print(f"urgent part of the requests while it ran     {part:6.3f}    (0.95)")
        print(f"bulk job when the urgent one completed       {bulk_status}")

        procs = [start(st.env, unknown(st.folder, f"NRM{i}", args.normal), limit, "normal")
                 for i in (1, 2)]  # fmt: skip
        normal = [finished(p)[0] for p in procs]
        for job_id in normal:
            wait_status(client, job_id, {"completed"}, 300)
        calls = cancels(st)
        times = {p: [c["t"] for c in calls if target(c).startswith(p)] for p in ("NRM1", "NRM2")}
        lo, hi = max(t[0] for t in times.values()), min(t[-1] for t in times.values())
        counts = {p: sum(lo <= x <= hi for x in t) for p, t in times.items()}
        both = [c for c in calls if lo <= c["t"] <= hi]
        normal_part = sum(target(c).startswith("NRM") for c in both) / len(both)
        one, two = (counts[p] / (counts["NRM1"] + counts["NRM2"]) for p in ("NRM1", "NRM2"))
        throttled = sum(c["status"] == 429 for c in calls)
        print(f"normal jobs' split while both ran            {one:6.3f} / {two:.3f}  (0.5 +- 0.1)")
        print(f"normal jobs' part of all requests then       {normal_part:6.3f}    (0.8)")
        print(f"429 answers                                  {throttled:6d}    (0)")
        subprocess.run([*PYTHON, "abort", bulk], env=st.env, capture_output=True, check=False)


if __name__ == "__main__":
    main()
