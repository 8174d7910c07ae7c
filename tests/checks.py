"""Assertions shared by the end-to-end tests: exact books, truth, and the request log."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import redis

from countermand.store import keys
from tests.harness import cli, cli_json, wait_for
from tests.scenarios import Scenario

ROUTE = {
    "applivery-apple": "apple.cancel",
    "applivery-android": "android.cancel",
    "enos": "enos.cancel",
}
SETTLED = ("completed", "paused", "aborted")


def tenant(provider: str, org: str) -> str:
    return ("enos:" if provider == "enos" else "applivery:") + org


def call_key(sc: Scenario, row: list[str]) -> str:
    values = dict(zip(sc.header, row, strict=True))
    if sc.provider == "applivery-apple":
        return f"{values['target_type'] or 'device'}/{values['target_id']}/{values['command_id']}"
    if sc.provider == "applivery-android":
        return f"{values['device_id']}/{values['command_id']}"
    device = values["asset_id"] or f"{values['product_key']}/{values['device_key']}"
    return device + (f"/{values['command_id']}" if values["command_id"] else "")


def write_input(folder: Path, sc: Scenario) -> Path:
    path = folder / f"{sc.provider}-{sc.org}.csv"
    path.write_text(sc.csv_text())
    return path


def job_done(env: dict[str, str], job_id: str) -> int:
    client = redis.Redis.from_url(env["COUNTERMAND_REDIS_URL"], decode_responses=True)
    try:
        return int(client.hget(keys.job(job_id), "done") or 0)
    finally:
        client.close()


def lease_pids(env: dict[str, str], job_id: str) -> set[int]:
    """The process ids holding a lease on one of the job's chunks (an owner token is
    ``host:pid:runner-token:lease-token``, ``countermand.runner``)."""
    client = redis.Redis.from_url(env["COUNTERMAND_REDIS_URL"], decode_responses=True)
    try:
        return {int(owner.split(":")[-3]) for owner in client.hvals(keys.owners(job_id))}
    finally:
        client.close()


def wait_settled(env: dict[str, str], job_id: str, deadline: float = 90) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        info: dict[str, Any] = cli_json(env, "status", job_id, "--json")
        return info if info["status"] in SETTLED else None

    return wait_for(settled, deadline, f"job {job_id} to settle", every=0.5)


def report(env: dict[str, str], job_id: str) -> list[dict[str, Any]]:
    done = cli(env, "report", job_id, "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def assert_books_exact(info: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """Every target has one final outcome and the counters equal the per-target outcomes."""
    counts = {k: v for k, v in info["counts"].items() if v}
    assert counts.get("remaining", 0) == 0
    assert sum(counts.values()) == info["total"] == len(records)
    assert Counter(r["outcome"] for r in records) == Counter(counts)


def answer_outcome(call: dict[str, Any], provider: str) -> str | None:
    if call["status"] == 200:
        return {"applivery-apple": "canceled", "applivery-android": "cancel_requested"}.get(
            provider, "enos"
        )
    if call["code"] == 5106:
        return "not_pending"
    if call["status"] == 404 or call["code"] == 11404:
        return "not_found"
    return None


def calls_by_key(sim_client: Any, sc: Scenario) -> dict[str, list[dict[str, Any]]]:
    calls = defaultdict(list)
    for call in sim_client.requests(route=ROUTE[sc.provider])["requests"]:
        if call["tenant"] == tenant(sc.provider, sc.org):
            calls[call["key"]].append(call)
    for seq in calls.values():
        seq.sort(key=lambda c: c["t"])
    return calls


def assert_matches_truth(
    sim_client: Any, sc: Scenario, records: list[dict[str, Any]], races_allowed: int = 0
) -> None:
    """Outcomes equal the simulator's truth, and no target was called after it was final: the
    last call of every target gave the recorded outcome. A worker killed after the API took a
    cancel may leave a 'redelivery race' (canceled by us, then heard not pending): allowed only
    where ``races_allowed`` says so, and only with an earlier accepted cancel in the log."""
    calls = calls_by_key(sim_client, sc)
    races = []
    for row, expected, record in zip(sc.rows, sc.expected, records, strict=True):
        outcome = record["outcome"]
        if expected == "invalid":
            assert outcome == "invalid", (row, record)
            continue
        if sc.provider == "enos" and not dict(zip(sc.header, row, strict=True))["command_id"]:
            continue  # device-wide: a search, then cancels by id (tests/test_providers.py)
        seq = calls[call_key(sc, row)]
        assert seq, f"target {row} was never called"
        last = answer_outcome(seq[-1], sc.provider)
        if (last, outcome) == ("not_pending", "canceled"):
            # the redelivery race, resolved by reading the command back: ours took earlier
            assert any(c["status"] == 200 for c in seq[:-1]), (row, seq)
        else:
            assert last in (outcome, "enos"), (row, record, seq)  # nothing after the final
        if outcome != expected:
            assert (expected, outcome) == ("canceled", "not_pending"), (row, record, seq)
            assert any(c["status"] == 200 for c in seq[:-1]), (row, seq)
            races.append(row)
    assert len(races) <= races_allowed, races


def submit_and_wait(env: dict[str, str], folder: Path, sc: Scenario, *extra: str) -> dict[str, Any]:
    path = write_input(folder, sc)
    done = cli(env, "submit", sc.provider, str(path), "--org", sc.org, "--wait", "--json", *extra)
    info: dict[str, Any] = json.loads(done.stdout)
    info["_exit"] = done.returncode
    info["_stderr"] = done.stderr
    return info


def poll(seconds: float) -> float:
    return time.monotonic() + seconds
