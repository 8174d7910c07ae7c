"""Core benchmark: Countermand's pipeline beside a bare aiohttp loop, on the same machine.

    python bench/core.py [--targets 100000] [--workers 2] [--in-flight 32]

1. A private Redis and the simulator (no server-side limit) are started.
2. Pipeline: a 100,000-target Applivery Apple job, submitted with the CLI, run by one
   ``countermand worker`` with 2 pool processes (``--in-flight`` requests each), job and tenant
   rates set far above what the machine can do, so the limiter runs but never binds.
3. Bare loop: one process, plain aiohttp, the same total number of requests in flight
   (workers x in-flight), the same number of cancels of other pending commands, half of them
   before the pipeline and half after; its rate is the mean of the two halves.
Throughput is measured from the simulator's own request log (first to last arrival), so both
sides are timed by the same clock. Redis memory per target is ``used_memory`` after the job minus
before it, over the number of targets. Prints the figures and the ratio; floors from the issue:
ratio >= 0.6 and <= 256 bytes per target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import redis
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from countermand.localredis import free_port, private_redis, stop_process
from countermand.simulator import SimulatorClient

ORG = "bench-org"
TOKEN = "sim-applivery-token"
PYTHON = [sys.executable, "-m", "countermand"]


def commands(n: int) -> list[dict[str, str]]:
    return [
        {"org": ORG, "target_type": "device", "target_id": f"SER{i:09d}",
         "command_id": secrets.token_hex(12), "status": "Pending"}
        for i in range(n)
    ]  # fmt: skip


def seed(sim: SimulatorClient, records: list[dict[str, str]]) -> None:
    for start in range(0, len(records), 20_000):
        sim.add_commands("applivery-apple", records[start : start + 20_000])


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """User+system CPU seconds so far of each named group of processes (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, group in pids.items():
        total = 0
        for pid in group:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        out[name] = total / tick
    return out


def worker_pids(main_pid: int) -> list[int]:
    children = Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text().split()
    return [main_pid, *map(int, children)]


def rate_from_log(sim: SimulatorClient) -> tuple[int, float]:
    calls = sim.requests(route="apple.cancel")["requests"]
    times = sorted(c["t"] for c in calls)
    return len(calls), (len(times) - 1) / (times[-1] - times[0])


def timed_bare(
    sim: SimulatorClient, sim_pid: int, records: list[dict[str, str]], in_flight: int
) -> tuple[int, float, dict[str, float]]:
    """Run the bare loop in this process: (requests, rate, CPU seconds of client and simulator)."""
    sim.reset_requests()
    sim_before, client_before = cpu_seconds({"s": [sim_pid]})["s"], time.process_time()
    uvloop.run(bare_loop(sim.base_url, records, in_flight))
    cpu = {
        "client": time.process_time() - client_before,
        "simulator": cpu_seconds({"s": [sim_pid]})["s"] - sim_before,
    }
    n, rate = rate_from_log(sim)
    return n, rate, cpu


def run_pipeline(env: dict[str, str], folder: Path, records: list[dict[str, str]]) -> float:
    path = folder / "targets.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["target_id", "command_id"])
        writer.writerows([r["target_id"], r["command_id"]] for r in records)
    started = time.monotonic()
    done = subprocess.run(
        [*PYTHON, "submit", "applivery-apple", str(path), "--org", ORG, "--rate", "100000",
         "--json", "--wait"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"job failed: {done.stderr[-2000:]}")
    return elapsed


async def bare_loop(url: str, records: list[dict[str, str]], in_flight: int) -> None:
    queue = iter(records)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = f"{url}/v1/organizations/{ORG}/mdm/apple/enterprise/commands/device"
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one_lane() -> None:
            for record in queue:
                target = f"{base}/{record['target_id']}/{record['command_id']}/cancel"
                async with session.post(target, headers=headers) as resp:
                    await resp.read()

        await asyncio.gather(*[one_lane() for _ in range(in_flight)])


@dataclass
class Stack:
    """A private Redis, the simulator and one worker, as separate processes."""

    redis_url: str
    sim: SimulatorClient
    sim_pid: int
    worker_pid: int
    env: dict[str, str]
    folder: Path


@contextlib.contextmanager
def stack(workers: int, sim_options: tuple[str, ...] = (), **settings: str) -> Iterator[Stack]:
    """Start the stack with ``COUNTERMAND_<NAME>`` settings (and the simulator with
    ``sim_options``); stop it all on exit."""
    folder = Path(tempfile.mkdtemp(prefix="countermand-bench-"))
    port = free_port()
    sim_url = f"http://127.0.0.1:{port}"
    with private_redis() as redis_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERMAND_")}
        env.update(COUNTERMAND_REDIS_URL=redis_url, COUNTERMAND_APPLIVERY_URL=sim_url,
                   COUNTERMAND_APPLIVERY_TOKEN=TOKEN)  # fmt: skip
        env.update({f"COUNTERMAND_{k.upper()}": v for k, v in settings.items()})
        sim_proc = subprocess.Popen([*PYTHON, "simulator", "--port", str(port), *sim_options],
                                    stdout=(folder / "simulator.log").open("wb"),
                                    stderr=subprocess.STDOUT, env=env)  # fmt: skip
        worker_log = folder / "worker.log"
        worker = subprocess.Popen([*PYTHON, "worker", "--concurrency", str(workers)],
                                  stdout=worker_log.open("wb"), stderr=subprocess.STDOUT,
                                  env=env)  # fmt: skip
        try:
            sim = SimulatorClient(sim_url)
            sim.wait_ready(30)
            while " ready." not in worker_log.read_text(errors="replace"):
                time.sleep(0.2)
            yield Stack(redis_url, sim, sim_proc.pid, worker.pid, env, folder)
        finally:
            stop_process(worker, 60)  # type: ignore[arg-type]
            stop_process(sim_proc, 30)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="worker pool processes")
    parser.add_argument("--in-flight", type=int, default=32, help="requests per process")
    parser.add_argument("--chunk-size", type=int, default=None, help="default: settings")
    parser.add_argument("--batch-size", type=int, default=None, help="default: settings")
    args = parser.parse_args()
    extra = {name: str(getattr(args, name)) for name in ("chunk_size", "batch_size")
             if getattr(args, name)}  # fmt: skip
    extra.update(s.split("=", 1) for s in os.environ.get("BENCH_SETTINGS", "").split() if s)
    with stack(args.workers, tenant_rate="100000", concurrency=str(args.in_flight), **extra) as st:
        sim, env, folder, redis_url = st.sim, st.env, st.folder, st.redis_url
        job_records = commands(args.targets)
        bare_before, bare_after = commands(args.targets // 2), commands(args.targets // 2)
        seed(sim, job_records + bare_before + bare_after)
        # The bare loop runs before and after the pipeline (half the requests each) and
        # its rate is their mean, so a drift of the machine during the run shows in both.
        in_flight = args.workers * args.in_flight
        n_before, rate_before, bare_cpu = timed_bare(sim, st.sim_pid, bare_before, in_flight)
        client = redis.Redis.from_url(redis_url)
        before = int(client.info("memory")["used_memory"])
        sim.reset_requests()
        redis_pid = int(client.info("server")["process_id"])
        pool = worker_pids(st.worker_pid)[1:]
        groups = {"worker pool": pool, "worker main": [st.worker_pid],
                  "simulator": [st.sim_pid], "redis": [redis_pid]}  # fmt: skip
        cpu_before = cpu_seconds(groups)
        wall = run_pipeline(env, folder, job_records)
        cpu = {k: v - cpu_before[k] for k, v in cpu_seconds(groups).items()}
        after = int(client.info("memory")["used_memory"])
        n_job, job_rate = rate_from_log(sim)
        n_after, rate_after, cpu_after = timed_bare(sim, st.sim_pid, bare_after, in_flight)
        n_bare, bare_rate = n_before + n_after, (rate_before + rate_after) / 2
        bare_cpu = {k: v + cpu_after[k] for k, v in bare_cpu.items()}
    per_target = (after - before) / args.targets
    print(f"targets                      {args.targets}")
    print(f"in flight                    {args.workers} processes x {args.in_flight}")
    print(f"pipeline requests            {n_job} in {wall:.1f}s wall (submit to completed)")
    print(f"pipeline throughput          {job_rate:,.0f} req/s (simulator log)")
    print(
        f"bare aiohttp throughput      {bare_rate:,.0f} req/s ({n_bare} requests; "
        f"{rate_before:,.0f} before, {rate_after:,.0f} after)"
    )
    print(f"ratio                        {job_rate / bare_rate:.2f}  (floor 0.6)")
    print(
        "pipeline CPU per request     "
        + ", ".join(
            f"{name} {seconds / args.targets * 1e6:.0f} µs" for name, seconds in cpu.items()
        )
    )
    print(
        "bare CPU per request         "
        + ", ".join(f"{name} {sec / n_bare * 1e6:.0f} µs" for name, sec in bare_cpu.items())
    )
    print(f"redis memory per target      {per_target:.0f} bytes  (floor 256)")


if __name__ == "__main__":
    main()
