"""End to end: jobs sharing one tenant (README, "Priority and fair share"), real workers and
the simulator holding the tenant to 200 requests/s (429 past it).

A bulk job of 200,000 targets runs at its --rate 200; an urgent job of 300 targets is
submitted: its requests start before the bulk job's next chunk, it takes its share (all but the
5% floor) and completes while the bulk job still runs. Then two normal jobs submitted together
split what the bulk job leaves them evenly. The server never answers 429. Order and counts come
from the simulator's request log; the seconds are ``bench/fair.py``'s.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from countermand.store import Store
from countermand.store.tenants import Share
from tests.checks import wait_settled, write_input
from tests.conftest import e2e_env
from tests.harness import PYTHON, SimulatorProcess, WorkerProcess, cli, cli_json, wait_for
from tests.scenarios import apple

pytestmark = pytest.mark.e2e
LIMIT = 200
CHUNK = 500
BULK = 200_000
DB = 10


@pytest.fixture
def limited(sim: SimulatorProcess) -> Iterator[SimulatorProcess]:
    sim.client.config(rate_limit=LIMIT, retry_after=None)
    yield sim
    sim.client.config(rate_limit=0)


@pytest.fixture
def fair_env(
    redis_url: str, limited: SimulatorProcess, credentials_file: Path, e2e_dir: Path
) -> Iterator[dict[str, str]]:
    env = e2e_env(redis_url, limited.url, credentials_file, db=DB)
    env.update(
        COUNTERMAND_TENANT_RATES=f'{{"applivery": {LIMIT}}}',
        COUNTERMAND_CHUNK_SIZE=str(CHUNK),
        COUNTERMAND_BATCH_SIZE="100",
    )
    redis.Redis.from_url(env["COUNTERMAND_REDIS_URL"]).flushdb()
    worker = WorkerProcess(e2e_dir, env)
    yield env
    worker.stop()


def unknown_targets(path: Path, prefix: str, n: int) -> Path:
    """``n`` targets the simulator does not know (each answered 404: not_found, one request)."""
    with path.open("w") as out:
        out.write("target_id,command_id\n")
        out.writelines(f"{prefix}{i:07d},{i:024x}\n" for i in range(n))
    return path


def submit(env: dict[str, str], path: Path, org: str, priority: str) -> str:
    done = cli(env, "submit", "applivery-apple", str(path), "--org", org, "--rate", str(LIMIT),
               "--priority", priority, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return str(done.stdout.strip())


def start_submit(env: dict[str, str], path: Path, org: str, priority: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PYTHON, "submit", "applivery-apple", str(path), "--org", org, "--rate", str(LIMIT),
         "--priority", priority],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def share_below(env: dict[str, str], org: str, job: str, most: float) -> Share | None:
    """The job's share as the limiter granted it last, once below ``most`` (read through the
    store, not the CLI: the urgent job runs for under two seconds)."""

    async def read() -> Share | None:
        store = Store.connect(env["COUNTERMAND_REDIS_URL"])
        try:
            return await store.job_share("applivery", org, job)
        finally:
            await store.close()

    share = asyncio.run(read())
    return share if share is not None and share.rate < most else None


def cancels(sim: SimulatorProcess, org: str) -> list[dict[str, Any]]:
    calls = sim.client.requests(route="apple.cancel")["requests"]
    mine = [c for c in calls if c["tenant"] == f"applivery:{org}"]
    return sorted(mine, key=lambda c: c["t"])


def window_of(calls: list[dict[str, Any]], t: float) -> dict[str, int]:
    """Requests accepted in the second before ``t``, by target prefix (a 429's context)."""
    seen: dict[str, int] = {}
    for c in calls:
        if t - 1 < c["t"] <= t and c["status"] != 429:
            seen[target_of(c)[:4]] = seen.get(target_of(c)[:4], 0) + 1
    return seen


def target_of(call: dict[str, Any]) -> str:
    return str(call["key"]).split("/")[1]  # "<target type>/<target id>/<command id>"


def bulk_chunk(call: dict[str, Any]) -> int | None:
    target = target_of(call)
    return int(target[4:]) // CHUNK if target.startswith("BULK") else None


def test_urgent_goes_first_and_equal_jobs_share_evenly(
    fair_env: dict[str, str], limited: SimulatorProcess, tmp_path: Path
) -> None:
    env, sim = fair_env, limited
    org = f"fair-{secrets.token_hex(4)}"
    bulk = submit(env, unknown_targets(tmp_path / "bulk.csv", "BULK", BULK), org, "bulk")
    wait_for(lambda: len(cancels(sim, org)) >= 2 * CHUNK, 60, "the bulk job under way")
    alone = cli_json(env, "status", bulk, "--json")  # alone on the tenant: its own rate binds
    assert (alone["priority"], alone["limited_by"]) == ("bulk", "job_rate"), alone
    assert LIMIT * 0.9 <= alone["share"] <= LIMIT, alone

    urgent_sc = apple(org, pending=300, done=0, missing=0)
    sim.client.add_commands(urgent_sc.provider, urgent_sc.records)
    urgent = submit(env, write_input(tmp_path, urgent_sc), org, "urgent")
    floor = wait_for(lambda: share_below(env, org, bulk, 20), 10, "the bulk job's share to drop")
    assert not floor.by_job_rate and LIMIT * 0.04 <= floor.rate <= LIMIT * 0.06, floor
    info = wait_settled(env, urgent, deadline=60)
    assert info["status"] == "completed" and info["counts"]["canceled"] == 300, info
    assert info["priority"] == "urgent"
    assert cli_json(env, "status", bulk, "--json")["status"] == "running"

    # Its requests start before the bulk job's next chunk.
    calls = cancels(sim, org)
    urgent_calls = [c for c in calls if bulk_chunk(c) is None]
    first_urgent, last_urgent = urgent_calls[0]["t"], urgent_calls[-1]["t"]
    before = {bulk_chunk(c) for c in calls if c["t"] < first_urgent and bulk_chunk(c) is not None}

    def next_chunk_started() -> float | None:
        later = [c for c in cancels(sim, org) if bulk_chunk(c) not in before | {None}]
        return later[0]["t"] if later else None

    next_bulk = wait_for(next_chunk_started, 60, "the bulk job's next chunk")
    assert first_urgent < next_bulk
    # While both ran, the urgent job had all but the floor kept for the bulk job.
    during = [c for c in calls if first_urgent <= c["t"] <= last_urgent]
    urgent_part = sum(bulk_chunk(c) is None for c in during) / len(during)
    assert urgent_part >= 0.85, urgent_part

    # Two normal jobs submitted together split what the bulk job leaves them evenly.
    paths = [unknown_targets(tmp_path / f"n{i}.csv", f"NRM{i}", 1000) for i in (1, 2)]
    procs = [start_submit(env, p, org, "normal") for p in paths]
    normal = [proc.communicate(timeout=120)[0].strip() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    for job_id in normal:
        assert wait_settled(env, job_id, deadline=120)["status"] == "completed"
    calls = cancels(sim, org)
    by_job = {
        prefix: [c["t"] for c in calls if target_of(c).startswith(prefix)]
        for prefix in ("NRM1", "NRM2")
    }
    start = max(times[0] for times in by_job.values())
    end = min(times[-1] for times in by_job.values())
    counts = {p: sum(start <= t <= end for t in times) for p, times in by_job.items()}
    part = counts["NRM1"] / (counts["NRM1"] + counts["NRM2"])
    assert 0.4 <= part <= 0.6, counts
    # Normal jobs take four parts in five of what is left from the bulk job.
    both = [c for c in calls if start <= c["t"] <= end]
    normal_part = sum(target_of(c).startswith("NRM") for c in both) / len(both)
    assert 0.7 <= normal_part <= 0.9, normal_part

    throttled = [c for c in calls if c["status"] == 429]
    assert not throttled, [(c["t"], target_of(c), window_of(calls, c["t"])) for c in throttled]
    cli(env, "abort", bulk)
