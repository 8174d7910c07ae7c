"""Core benchmark: Countermand's pipeline beside a bare aiohttp loop, on the same machine.

    python bench/core.py [--targets 100000] [--runs 3] [--workers 2] [--in-flight 32]
                         [--set NAME=VALUE ...]
    python bench/core.py --engine-only [--targets 50000] [--runs 3]

1. A private Redis and the simulator (no server-side limit) are started, and one
   ``countermand worker`` with 2 pool processes (default settings: lanes start at
   ``--in-flight`` and follow latency, ``countermand.flow``).
2. Each run (``--runs``, alternating): the bare loop (one process, plain aiohttp on uvloop,
   workers x in-flight requests in flight) cancels half as many other pending commands; the
   pipeline runs a ``--targets`` Applivery Apple job submitted with the CLI, job and tenant
   rates far above what the machine can do, so the limiter runs but never binds; the bare loop
   runs the other half. The run's bare rate is the mean of its two halves.
Throughput is measured from the simulator's own request log (first to last arrival), so both
sides are timed by the same clock; CPU from /proc. Redis memory per target is ``used_memory``
after the job minus before it, over the number of targets. Prints each run, then the medians.
Targets (issue 10): ratio >= 0.8 (floor 0.7), worker CPU per request <= 1.3 x the bare client's.

``--engine-only``: what a request costs apart from the HTTP client and the network, the part
this repository can cut. One process runs the chunks of an Apple job (``work_through``, a private
Redis, no worker, no simulator) with the vendor transport replaced by one that answers every
request at once with the vendor's 200 envelope (``CannedTransport``); the rest is the code a
pool process runs (validation, URL, limiter, flow, call path, metrics, answer parsing, ledger
and Redis scripts), the garbage collector tuned as in a pool process (``collector.tune``; no
collections by the clock). Prints the CPU per target of each run (user + system, the job's
chunks only) and the median; the machine's drift moves it much less than the full runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import redis
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from countermand import collector, jobs
from countermand.audit import Actor
from countermand.inputs import read_rows
from countermand.localredis import free_port, private_redis, stop_process
from countermand.providers import get_spec
from countermand.providers.transport import Answer, Transport
from countermand.runner import work_through
from countermand.runtime import Runtime
from countermand.settings import Settings
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


async def submit_in_process(rt: Runtime, records: list[dict[str, str]], rate: float) -> None:
    """Load and release an Applivery Apple job of ``records`` through the calls ``submit`` makes,
    in this process (no worker claims it on a private Redis: ``work_through`` runs it)."""
    spec = get_spec("applivery-apple")
    text = "target_id,command_id\n" + "".join(
        f"{r['target_id']},{r['command_id']}\n" for r in records
    )
    rows = read_rows("in.csv", io.BytesIO(text.encode()), spec, lambda _: None)
    job = await jobs.open_job(
        rt.store, rt.settings, rt.credentials, jobs.SubmitRequest(spec, ORG, rate=rate),
        Actor.system("bench"),
    )  # fmt: skip
    await job.load(rows)
    await job.release()


CANNED = Answer(200, b'{"status":true,"data":{"canceled":"OK"}}', "application/json", None)


class CannedTransport:
    """Stands in for the runtime's vendor ``Transport``: every request answers an Apple
    cancel's 200 envelope, on a later turn of the loop (as a real answer comes back)."""

    async def request(self, *_: object, **__: object) -> Answer:
        await asyncio.sleep(0)
        return CANNED

    async def close(self) -> None:
        return None


async def engine_alone(redis_url: str, targets: int) -> float:
    """CPU seconds per target of one Apple job worked in this process against
    ``CannedTransport``."""
    settings = Settings(
        _env_file=None, redis_url=redis_url, applivery_url="http://canned.invalid",
        applivery_token=TOKEN, tenant_rate=100_000,
    )  # fmt: skip
    rt = await Runtime.open(settings)
    await rt.transport.close()
    rt.transport = cast(Transport, CannedTransport())
    try:
        await submit_in_process(rt, commands(targets), 100_000)
        collector.tune()
        before = time.process_time()
        await work_through(rt)
        return (time.process_time() - before) / targets
    finally:
        await rt.close()


def engine_only(targets: int, runs: int) -> None:
    per_target = []
    with private_redis() as redis_url:
        for n in range(runs):
            per_target.append(uvloop.run(engine_alone(redis_url, targets)) * 1e6)
            print(f"run {n + 1}: engine CPU per target {per_target[-1]:.1f} µs ({targets} targets)")
    print(f"median engine CPU per target {sorted(per_target)[len(per_target) // 2]:.1f} µs "
          "(everything but the HTTP client and the network)")  # fmt: skip


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
def stack(
    workers: int,
    sim_options: tuple[str, ...] = (),
    redis_url: str | None = None,
    **settings: str,
) -> Iterator[Stack]:
    """Start the stack with ``COUNTERMAND_<NAME>`` settings (and the simulator with
    ``sim_options``; over ``redis_url`` if given, else a private Redis); stop it all on exit."""
    folder = Path(tempfile.mkdtemp(prefix="countermand-bench-"))
    port = free_port()
    sim_url = f"http://127.0.0.1:{port}"
    with contextlib.nullcontext(redis_url) if redis_url else private_redis() as redis_url:
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
            stop_process(worker, 60)
            stop_process(sim_proc, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=None, help="default 100,000 (50,000)")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs; medians printed")
    parser.add_argument("--workers", type=int, default=2, help="worker pool processes")
    parser.add_argument("--in-flight", type=int, default=32, help="requests per process")
    parser.add_argument("--chunk-size", type=int, default=None, help="default: settings")
    parser.add_argument("--batch-size", type=int, default=None, help="default: settings")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="a worker setting (COUNTERMAND_NAME), e.g. in_flight_ceiling=64",
    )  # fmt: skip
    parser.add_argument(
        "--engine-only", action="store_true",
        help="the engine's own CPU per target, HTTP answered at once in-process",
    )  # fmt: skip
    args = parser.parse_args()
    if args.engine_only:
        engine_only(args.targets or 50_000, args.runs)
        return
    args.targets = args.targets or 100_000
    extra = {name: str(getattr(args, name)) for name in ("chunk_size", "batch_size")
             if getattr(args, name)}  # fmt: skip
    for item in args.set:
        name, _, value = item.partition("=")
        extra[name.lower()] = value
    extra.update(tenant_rate="100000", concurrency=str(args.in_flight))
    in_flight = args.workers * args.in_flight  # the bare loop's requests in flight
    runs = []
    with stack(args.workers, **cast(dict[str, Any], extra)) as st:
        client = redis.Redis.from_url(st.redis_url)
        redis_pid = int(client.info("server")["process_id"])
        pool = worker_pids(st.worker_pid)[1:]
        groups = {"worker pool": pool, "worker main": [st.worker_pid],
                  "simulator": [st.sim_pid], "redis": [redis_pid]}  # fmt: skip
        for n in range(args.runs):
            runs.append(one_run(st, client, groups, args.targets, in_flight))
            print_run(n + 1, runs[-1], args.targets)
    ratios = sorted(r.ratio for r in runs)
    worker_cpu = sorted(r.worker_us for r in runs)
    bare_cpu = sorted(r.bare_us for r in runs)
    mid = len(runs) // 2
    print(f"targets                      {args.targets} per run, {args.runs} runs")
    print(f"in flight                    {args.workers} processes (lanes follow latency); "
          f"bare loop {in_flight}")  # fmt: skip
    print(f"median ratio                 {ratios[mid]:.2f}  (target 0.8, floor 0.7)")
    print(f"median worker CPU/request    {worker_cpu[mid]:.0f} µs (pool processes)")
    print(f"median bare CPU/request      {bare_cpu[mid]:.0f} µs  (target: worker <= 1.3 x bare, "
          f"now {worker_cpu[mid] / bare_cpu[mid]:.2f} x)")  # fmt: skip
    print(f"redis memory per target      {runs[-1].redis_bytes:.0f} bytes (last run)")


@dataclass
class Run:
    job_rate: float
    bare_rate: float
    wall: float
    worker_us: float
    bare_us: float
    cpu: dict[str, float]
    redis_bytes: float

    @property
    def ratio(self) -> float:
        return self.job_rate / self.bare_rate


def one_run(
    st: Stack, client: redis.Redis, groups: dict[str, list[int]], targets: int, in_flight: int
) -> Run:
    """Bare loop (half the requests), the pipeline, bare loop again (the other half): a drift
    of the machine during the run shows in both."""
    sim = st.sim
    job_records = commands(targets)
    bare_before, bare_after = commands(targets // 2), commands(targets // 2)
    seed(sim, job_records + bare_before + bare_after)
    n_before, rate_before, cpu_b = timed_bare(sim, st.sim_pid, bare_before, in_flight)
    before = int(client.info("memory")["used_memory"])
    sim.reset_requests()
    cpu_before = cpu_seconds(groups)
    wall = run_pipeline(st.env, st.folder, job_records)
    cpu = {k: (v - cpu_before[k]) / targets * 1e6 for k, v in cpu_seconds(groups).items()}
    after = int(client.info("memory")["used_memory"])
    _n_job, job_rate = rate_from_log(sim)
    n_after, rate_after, cpu_a = timed_bare(sim, st.sim_pid, bare_after, in_flight)
    bare_us = (cpu_b["client"] + cpu_a["client"]) / (n_before + n_after) * 1e6
    return Run(job_rate, (rate_before + rate_after) / 2, wall, cpu["worker pool"], bare_us, cpu,
               (after - before) / targets)  # fmt: skip


def print_run(n: int, run: Run, targets: int) -> None:
    cpu = ", ".join(f"{name} {us:.0f} µs" for name, us in run.cpu.items())
    print(f"run {n}: pipeline {run.job_rate:,.0f} req/s ({targets} in {run.wall:.1f}s wall), "
          f"bare {run.bare_rate:,.0f} req/s, ratio {run.ratio:.2f}; CPU per request: {cpu}; "
          f"bare client {run.bare_us:.0f} µs")  # fmt: skip


if __name__ == "__main__":
    main()
