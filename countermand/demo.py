"""``countermand demo``: the whole path on an embedded default, nothing to install by hand.

Redis: ``COUNTERMAND_REDIS_URL`` when it is set and answers, else a private server (see
``localredis``). Then the simulator seeded with a few thousand commands (pending, already run,
failed) across Applivery Apple, Android and EnOS; a worker with two pool processes; one cancel
job per provider built from the simulator's commands plus missing and malformed rows; live
progress; the per-outcome summary and the reports. Everything it started is stopped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from countermand import jobs
from countermand.audit import Actor
from countermand.credentials import CredentialStore
from countermand.inputs import open_input, read_rows
from countermand.localredis import answers, free_port, private_redis, stop_process
from countermand.models import REMAINING, JobInfo
from countermand.progress import SETTLED, counts_text
from countermand.providers import get_spec
from countermand.report import write_report
from countermand.settings import get_settings, redacted_url
from countermand.simulator import SimulatorClient
from countermand.store import Store

DEVICES = 400  # per provider, 3 commands each: 3,600 commands to cancel (plus Windows batches)
RATE = 400.0
ORGS = {"applivery-apple": "acme-corp", "applivery-android": "acme-corp", "enos": "o15541858646501"}


@contextlib.contextmanager
def redis_for_demo(console: Console) -> Iterator[str]:
    url = os.environ.get("COUNTERMAND_REDIS_URL")
    if url and answers(url):
        console.print(f"Redis: using COUNTERMAND_REDIS_URL ({redacted_url(url)})")
        yield url
        return
    with private_redis() as private:
        console.print(f"Redis: started a private server at {private}")
        yield private


@contextlib.contextmanager
def child(args: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            yield proc
        finally:
            stop_process(proc, timeout=30)


def wait_for_worker(proc: subprocess.Popen[bytes], log: Path, deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while " ready." not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"the worker did not start; see {log}")
        time.sleep(0.2)


def build_inputs(sim: SimulatorClient, folder: Path, rng: random.Random) -> dict[str, Path]:
    """One CSV per provider: the simulator's commands, plus missing and malformed rows."""
    files = {}
    for provider, header, rows in (
        ("applivery-apple", ["target_id", "command_id", "target_type"], _apple_rows(sim, rng)),
        ("applivery-android", ["device_id", "command_id"], _android_rows(sim, rng)),
        ("enos", ["asset_id", "product_key", "device_key", "command_id"], _enos_rows(sim, rng)),
    ):
        rows += [list(rows[i]) for i in range(5)]  # repeated rows: invalid (duplicate)
        path = folder / f"{provider}.csv"
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows)
        files[provider] = path
    return files


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(96):024x}"


def _apple_rows(sim: SimulatorClient, rng: random.Random) -> list[list[str]]:
    rows = [
        [c["target_id"], c["command_id"], c["target_type"]] for c in sim.commands("applivery-apple")
    ]
    rows += [[_hex(rng), _hex(rng), "device"] for _ in range(40)]  # unknown: not_found
    rows += [["SERIAL 01", _hex(rng), ""], ["C02XK1ZJH7JY", "not-a-command-id", ""]]
    return rows


def _android_rows(sim: SimulatorClient, rng: random.Random) -> list[list[str]]:
    rows = [[c["device_id"], c["command_id"]] for c in sim.commands("applivery-android")]
    rows += [[_hex(rng), _hex(rng)] for _ in range(40)]
    rows += [["", _hex(rng)]]
    return rows


def _enos_rows(sim: SimulatorClient, rng: random.Random) -> list[list[str]]:
    commands = sim.commands("enos")
    rows = [[c["asset_id"], "", "", c["command_id"]] for c in commands[: len(commands) // 2]]
    devices = {c["asset_id"]: c for c in commands[len(commands) // 2 :]}
    rows += [["", c["product_key"], c["device_key"], ""] for c in devices.values()]  # device-wide
    rows += [[f"missing{rng.randrange(10**6)}", "", "", str(rng.randrange(10**18, 10**19))]
             for _ in range(20)]  # fmt: skip
    rows += [["asset with spaces", "", "", ""]]
    return rows


async def run_jobs(
    url: str, files: dict[str, Path], folder: Path, console: Console
) -> list[JobInfo]:
    settings = get_settings()
    credentials = CredentialStore(settings)
    store = Store.connect(url)
    try:
        ids = {}
        for provider, path in files.items():
            spec = get_spec(provider)
            request = jobs.SubmitRequest(spec, ORGS[provider], rate=RATE, name=f"demo {provider}")
            with open_input(str(path)) as stream:
                rows = read_rows(
                    str(path), stream, spec, lambda m: console.print(Text(f"warning: {m}"))
                )
                ids[provider] = await jobs.submit(
                    store, settings, credentials, request, rows, Actor.os_user()
                )
        infos = await follow_all(store, ids, console)
        for provider, job_id in ids.items():
            with (folder / f"{provider}-report.csv").open("w", newline="") as out:
                await write_report(store, job_id, out, "csv")
        return infos
    finally:
        await store.close()


async def follow_all(store: Store, ids: dict[str, str], console: Console) -> list[JobInfo]:
    columns = (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[counts]}"))  # fmt: skip
    with Progress(*columns, console=console) as progress:
        tasks = {p: progress.add_task(p, total=None, counts="") for p in ids}
        while True:
            infos = [await store.info(job_id) for job_id in ids.values()]
            for provider, info in zip(ids, infos, strict=True):
                progress.update(tasks[provider], total=info.total, completed=info.done,
                                counts=counts_text(info))  # fmt: skip
            if all(i.status in SETTLED and i.loaded for i in infos):
                return infos
            await asyncio.sleep(0.3)


def summary_table(infos: list[JobInfo]) -> Table:
    """Outcomes down, one column per job (fits a narrow terminal)."""
    table = Table(title="Outcomes per job")
    table.add_column("")
    for info in infos:
        table.add_column(info.provider, justify="right")
    table.add_row("job", *[i.job_id for i in infos])
    table.add_row("status", *[i.status.value for i in infos])
    for name in infos[0].counts:
        if any(i.counts[name] for i in infos) or name == REMAINING:
            table.add_row(name, *[str(i.counts[name]) for i in infos])
    return table


def run_demo(console: Console, folder: Path | None = None) -> int:
    folder = folder or Path.cwd() / "countermand-demo" / time.strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    with redis_for_demo(console) as url:
        port = free_port()
        sim_url = f"http://127.0.0.1:{port}"
        env = {**os.environ, **demo_env(url, sim_url)}
        os.environ.update(demo_env(url, sim_url))
        get_settings.cache_clear()
        python = [sys.executable, "-m", "countermand"]
        sim_args = [
            *python,
            "simulator",
            "--port",
            str(port),
            "--devices",
            str(DEVICES),
            "--seed",
            "7",
        ]
        with child(sim_args, folder / "simulator.log", env):
            sim = SimulatorClient(sim_url)
            sim.wait_ready(30)
            console.print(f"Simulator: {sim_url}, {DEVICES} devices per provider seeded")
            files = build_inputs(sim, folder, random.Random(7))
            worker_log = folder / "worker.log"
            with child([*python, "worker", "--concurrency", "2"], worker_log, env) as worker:
                wait_for_worker(worker, worker_log)
                console.print("Worker: ready (2 pool processes)")
                infos = asyncio.run(run_jobs(url, files, folder, console))
    console.print(summary_table(infos))
    console.print(f"Reports and inputs: {folder}")
    return 0


def demo_env(redis_url: str, sim_url: str) -> dict[str, Any]:
    return {
        "COUNTERMAND_REDIS_URL": redis_url,
        "COUNTERMAND_APPLIVERY_URL": sim_url,
        "COUNTERMAND_APPLIVERY_TOKEN": "sim-applivery-token",
        "COUNTERMAND_ENOS_URL": sim_url,
        "COUNTERMAND_ENOS_ACCESS_KEY": "sim-access-key",
        "COUNTERMAND_ENOS_SECRET_KEY": "sim-secret-key",
        "COUNTERMAND_TENANT_RATE": str(2 * RATE),
    }
