"""One call path, end to end: for every kind of job the simulator's request count equals the
limiter's tokens and no 1-second window holds more than the rate; a Windows poll at the
server's own limit gets no 429; after ``pause`` returns no request arrives."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from countermand import jobs
from countermand.audit import Actor
from countermand.simulator.control import max_in_window
from countermand.store import Store, keys
from tests.checks import assert_books_exact, report, submit_and_wait, wait_settled, write_input
from tests.harness import SimulatorProcess, WorkerProcess, cli, wait_for
from tests.scenarios import Scenario, android, apple, enos
from tests.test_e2e_cleanup import OLD_MS, enos_command, with_policies
from tests.test_e2e_poll import windows_batch

pytestmark = pytest.mark.e2e
RATE = 40


def tokens(env: dict[str, str], tenant: str) -> int:
    client = redis.Redis.from_url(env["COUNTERMAND_REDIS_URL"], decode_responses=True)
    try:
        return int(client.hget(f"{keys.PREFIX}:rl:{tenant}", "tokens") or 0)
    finally:
        client.close()


def requests_of(sim: SimulatorProcess, tenant: str) -> list[dict[str, Any]]:
    return [c for c in sim.client.requests()["requests"] if c["tenant"] == tenant]


def assert_one_call_path(env: dict[str, str], sim: SimulatorProcess, tenant: str) -> int:
    sent = requests_of(sim, tenant)
    assert sent, f"nothing reached the simulator for {tenant}"
    assert len(sent) == tokens(env, tenant), f"{tenant}: requests and limiter tokens differ"
    assert max_in_window([c["t"] for c in sent], 1.0) <= RATE
    return len(sent)


def new_org(provider: str) -> str:
    return f"o{secrets.randbelow(10**12)}" if provider == "enos" else f"org-{secrets.token_hex(4)}"


@pytest.mark.parametrize(
    ("build", "provider"),
    [(apple, "applivery-apple"), (android, "applivery-android"), (enos, "enos")],
    ids=["apple", "android", "enos"],
)
def test_cancels_reads_and_device_wide_rows_take_one_token_per_request(
    build: Any,
    provider: str,
    env: dict[str, str],
    sim: SimulatorProcess,
    worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    sc: Scenario = build(new_org(provider))
    sim.client.add_commands(sc.provider, sc.records)
    extra = ["--verify"] if sc.provider == "applivery-android" else []
    info = submit_and_wait(env, tmp_path, sc, "--rate", str(RATE), *extra)
    assert info["status"] == "completed", info["_stderr"]
    vendor = "enos" if sc.provider == "enos" else "applivery"
    routes = {c["route"] for c in requests_of(sim, f"{vendor}:{sc.org}")}
    if sc.provider == "enos":
        assert {"enos.search", "enos.cancel"} <= routes  # device-wide rows search, then cancel
    if extra:
        assert "android.get" in routes  # the --verify reads
    assert_one_call_path(env, sim, f"{vendor}:{sc.org}")


def test_windows_poll_at_the_servers_limit_gets_no_429(
    env: dict[str, str], sim: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    org = new_org("applivery-windows")
    batches = [windows_batch(org, ["Acknowledged"] * 150) for _ in range(25)]  # 2 pages each
    sim.client.add_commands("applivery-windows", batches)
    sc = Scenario("applivery-windows", org, ["device_id", "command_id"])
    for batch in batches:
        sc.add([str(batch["device_id"]), str(batch["command_id"])], "done")
    sim.client.config(rate_limit=RATE)
    try:
        path = write_input(tmp_path, sc)
        done = cli(env, "poll", sc.provider, str(path), "--org", org, "--rate", str(RATE),
                   "--wait", "--json")  # fmt: skip
    finally:
        sim.client.config(rate_limit=0)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert [r["outcome"] for r in report(env, info["job_id"])] == sc.expected
    sent = requests_of(sim, f"applivery:{org}")
    assert [c for c in sent if c["status"] == 429] == []
    assert len(sent) == 25 * 3  # the batch, then two pages of actions, each paced
    assert_one_call_path(env, sim, f"applivery:{org}")


def test_cleanup_discovery_takes_one_token_per_request(
    env: dict[str, str], sim: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    org = new_org("enos")
    sim.client.add_commands("enos", [enos_command(org, f"a{i % 12}", 1, OLD_MS + i)
                                     for i in range(60)])  # fmt: skip
    policy_env = with_policies(env, tmp_path, f"""
[policy.tokens]
provider = "enos"
org = "{org}"
older_than = "72h"
rate = {RATE}
page_size = 5
""")  # fmt: skip
    done = cli(policy_env, "cleanup", "run", "tokens", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["canceled"] == 60  # one row per stale command
    count = assert_one_call_path(env, sim, f"enos:{org}")
    assert count == 3 + 12 + 60  # 3 pages of devices, a search per device, then the cancels


@pytest.fixture
def slow_sim(sim: SimulatorProcess) -> Iterator[SimulatorProcess]:
    sim.client.config(latency_ms=20)
    yield sim
    sim.client.config(latency_ms=0)


def test_no_request_starts_after_pause_returns(
    env: dict[str, str], slow_sim: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    sc = apple(new_org("applivery-apple"), pending=400, done=0, missing=0)
    slow_sim.client.add_commands(sc.provider, sc.records)
    done = cli(env, "submit", sc.provider, str(write_input(tmp_path, sc)), "--org", sc.org,
               "--rate", "20")  # fmt: skip
    job_id = done.stdout.strip()
    tenant = f"applivery:{sc.org}"
    wait_for(lambda: len(requests_of(slow_sim, tenant)) >= 30, 60, "the job to be under way")

    async def pause() -> tuple[int, int]:
        """What ``countermand pause`` does, in this process (the CLI's exit would give the
        workers time): the chunks still held once it returned, by its count and by the owners'
        hash."""
        store = Store.connect(env["COUNTERMAND_REDIS_URL"])
        try:
            held = await jobs.pause(store, job_id, actor=Actor.system("test"))
            return held, int(await store.redis.hlen(keys.owners(job_id)))
        finally:
            await store.close()

    held, owners = asyncio.run(pause())
    returned = time.time()
    assert (held, owners) == (0, 0)  # every chunk run had stopped and given its lease back
    # and its calls on the wire had been answered and recorded: none arrives after
    sent = requests_of(slow_sim, tenant)
    assert [c for c in sent if c["t"] > returned] == []
    info = wait_settled(env, job_id)
    assert info["status"] == "paused" and info["counts"]["remaining"] > 0
    resumed = cli(env, "resume", job_id)
    assert resumed.returncode == 0
    final = wait_settled(env, job_id, deadline=120)
    assert final["status"] == "completed"
    assert_books_exact(final, report(env, job_id))
