"""Rate-limit benchmarks: precision against a strict server, a 429 storm, limiter overhead.

    python bench/limits.py [--rate 200] [--seconds 30]

1. Precision: the simulator allows R requests in any sliding second (429 past it), the job's
   --rate and the tenant limit are R, one worker with 2 pool processes, about 30 s. Prints the
   largest number of requests the simulator saw in any 1-second window, the steady mean rate
   (the middle of the run) and the number of 429s. Targets: zero 429s, mean >= 0.95 R.
2. Storm: the same, but a third of the way in the simulator's limit drops to R/2, without
   Retry-After. Prints the time until our rate (requests arriving in the trailing second) is
   under R/2, and the number of failed targets. Targets: <= 3 s, 0 failed.
3. Overhead: the limiter's Redis round trips per request at high rates (in-process engine, no
   server limit). Target: <= 0.2 with batch acquisition.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.core import ORG, PYTHON, TOKEN, commands, seed, stack, submit_in_process
from countermand.localredis import private_redis
from countermand.runner import work_through
from countermand.runtime import Runtime
from countermand.settings import Settings
from countermand.simulator import SimulatorClient
from countermand.simulator.control import max_in_window


def write_csv(folder: Path, records: list[dict[str, str]]) -> Path:
    path = folder / f"targets-{len(records)}-{time.monotonic_ns()}.csv"
    lines = ["target_id,command_id"] + [f"{r['target_id']},{r['command_id']}" for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def submit(env: dict[str, str], path: Path, rate: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PYTHON, "submit", "applivery-apple", str(path), "--org", ORG, "--rate", str(rate),
         "--json", "--wait"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def cancels(sim: SimulatorClient) -> list[dict[str, Any]]:
    calls = sim.requests(route="apple.cancel")["requests"]
    return sorted(calls, key=lambda c: c["t"])


def precision(sim: SimulatorClient, env: dict[str, str], folder: Path, rate: float, n: int) -> None:
    records = commands(n)
    seed(sim, records)
    sim.config(rate_limit=rate, retry_after=None)
    sim.reset_requests()
    proc = submit(env, write_csv(folder, records), rate)
    out, _err = proc.communicate()
    info = json.loads(out)
    calls = cancels(sim)
    times = [c["t"] for c in calls]
    start, end = times[0], times[-1]
    middle = [t for t in times if start + 2 <= t <= end - 2]
    mean = (len(middle) - 1) / (middle[-1] - middle[0])
    print(f"precision  R={rate:.0f}/s, {len(times)} requests over {end - start:.1f}s")
    print(f"  largest count in any 1 s window  {max_in_window(times, 1.0)}  (limit {rate:.0f})")
    print(
        f"  steady mean rate                 {mean:.1f}/s = {mean / rate:.3f} R  (target >= 0.95)"
    )
    print(
        f"  429 answers                      {sum(c['status'] == 429 for c in calls)}  (target 0)"
    )
    print(f"  job                              {info['status']}, failed {info['counts']['failed']}")


def storm(sim: SimulatorClient, env: dict[str, str], folder: Path, rate: float, n: int) -> None:
    records = commands(n)
    seed(sim, records)
    sim.config(rate_limit=rate, retry_after=None)
    sim.reset_requests()
    proc = submit(env, write_csv(folder, records), rate)
    time.sleep(n / rate / 3)  # a third of the way in (benchmark pacing, not a test wait)
    sim.config(rate_limit=rate / 2)
    changed = time.time()
    out, _ = proc.communicate()
    info = json.loads(out)
    times = [c["t"] for c in cancels(sim)]
    under = next(
        (t for t in times if t > changed + 0.001
         and sum(1 for u in times if t - 1 < u <= t) < rate / 2),
        None,
    )  # fmt: skip
    rejected = sum(1 for c in cancels(sim) if c["status"] == 429)
    print(f"storm  R={rate:.0f}/s dropping to {rate / 2:.0f}/s without Retry-After")
    took = f"{under - changed:.2f}s" if under else "never"
    print(f"  time until our rate < R/2        {took}  (target <= 3 s)")
    print(f"  429 answers                      {rejected}")
    print(f"  failed targets                   {info['counts']['failed']}  (target 0), "
          f"job {info['status']}")  # fmt: skip
    sim.config(rate_limit=0)


async def overhead(redis_url: str, sim_url: str, rate: float, n: int) -> tuple[int, int]:
    settings = Settings(
        _env_file=None, redis_url=redis_url, applivery_url=sim_url, applivery_token=TOKEN,
        tenant_rate=rate, chunk_size=n,
    )  # fmt: skip
    records = commands(n)
    seed(SimulatorClient(sim_url), records)
    rt = await Runtime.open(settings)
    try:
        await submit_in_process(rt, records, rate)
        await work_through(rt)  # its own Redis: no worker claims it, this process runs it
        pacer = next(iter(rt.limiter._pacers.values()))
        return pacer.round_trips, n
    finally:
        await rt.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with stack(2, tenant_rate=str(args.rate)) as st:
        sim, env, folder = st.sim, st.env, st.folder
        n = int(args.rate * args.seconds)
        precision(sim, env, folder, args.rate, n)
        storm(sim, env, folder, args.rate, n)
        sim.config(rate_limit=0)
        for rate in (500.0, 2000.0, 10000.0):
            with private_redis() as own:  # no worker there: this process claims the job
                trips, requests = asyncio.run(overhead(own, sim.base_url, rate, 5000))
            per = trips / requests
            print(f"overhead  rate {rate:.0f}/s: {trips} limiter round trips for {requests} "
                  f"requests = {per:.3f} per request  (target <= 0.2)")  # fmt: skip


if __name__ == "__main__":
    main()
