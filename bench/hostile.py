"""Hostile-vendor benchmark: what each broken answer of the simulator costs a cancel job.

    python bench/hostile.py [--targets 2000] [--rate 500] [--rate-of-fault 0.05]

One worker with 2 pool processes against the simulator (no server limit). First a run with no
fault, then one Applivery Apple cancel job per fault (``countermand/simulator/faults.py``), each
fault alone at ``--rate-of-fault`` of the vendor's answers, each job on its own org: 80% of the
targets pending, 10% already run, 5% canceled before the job, 5% missing. The worker keeps the
shipped retry settings (``--retry-initial-wait`` changes the first backoff); ``--http-timeout``
(default 10 s, shipped 30 s) bounds what a stalled answer costs, and the simulator stalls 5 s
longer than it. Prints per fault: seconds from submit to completed, requests sent (the
simulator's log), retries (tries after the first of the same request), read-backs, outcomes by
name, differences from the simulator's truth, the faults injected, and whether the job paused.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.core import PYTHON, stack
from countermand.simulator import SimulatorClient
from countermand.simulator.config import BROKEN_FIELDS

BEFORE_THE_JOB = "2026-02-10T10:00:00.000Z"
FAULTS = ["none", *(field.removesuffix("_rate") for field in BROKEN_FIELDS)]


def targets(org: str, n: int) -> tuple[list[dict[str, Any]], list[list[str]], list[str]]:
    """(simulator records, input rows, expected outcome of each row)."""
    records, rows, expected = [], [], []
    for i in range(n):
        kind = i % 20
        target, command = f"SER{i:06d}{secrets.token_hex(3)}", secrets.token_hex(12)
        record = {"org": org, "target_type": "device", "target_id": target,
                  "command_id": command, "status": "Pending"}  # fmt: skip
        outcome = "canceled"
        if kind in (16, 17):
            record["status"], outcome = "Acknowledged", "not_pending"
        elif kind == 18:
            record.update(status="Canceled", canceled_at=BEFORE_THE_JOB)
            outcome = "not_pending"
        if kind == 19:
            outcome = "not_found"
        else:
            records.append(record)
        rows.append([target, command])
        expected.append(outcome)
    return records, rows, expected


def differences(
    sim: SimulatorClient, org: str, rows: list[list[str]], expected: list[str], got: list[str]
) -> int:
    """Rows whose outcome is not the truth: the expected outcome, and for ``canceled`` the
    simulator's record canceled (by this job: nothing else touches the org)."""
    now = {r["command_id"]: r["status"] for r in sim.commands("applivery-apple")
           if r["org"] == org}  # fmt: skip
    wrong = 0
    for row, want, outcome in zip(rows, expected, got, strict=True):
        truth_ok = now.get(row[1]) == "Canceled" if want == "canceled" else True
        wrong += outcome != want or not truth_ok
    return wrong


def requests_of(sim: SimulatorClient, org: str) -> list[dict[str, Any]]:
    return [c for c in sim.requests()["requests"] if c["tenant"] == f"applivery:{org}"]


def one_job(
    env: dict[str, str], folder: Path, sim: SimulatorClient, fault: str, args: argparse.Namespace
) -> dict[str, Any]:
    org = f"hostile-{fault.replace('_', '-')}-{secrets.token_hex(3)}"
    records, rows, expected = targets(org, args.targets)
    sim.add_commands("applivery-apple", records)
    path = folder / f"{org}.csv"
    path.write_text("target_id,command_id\n" + "".join(f"{a},{b}\n" for a, b in rows))
    if fault != "none":
        sim.config(**{f"{fault}_rate": args.rate_of_fault})
    started = time.monotonic()
    try:
        done = subprocess.run(
            [*PYTHON, "submit", "applivery-apple", str(path), "--org", org, "--rate",
             str(args.rate), "--json", "--wait"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        seconds = time.monotonic() - started
    finally:
        if fault != "none":
            sim.config(**{f"{fault}_rate": 0.0})
    info = json.loads(done.stdout) if done.stdout.strip() else {"status": done.stderr[-500:]}
    if info.get("status") != "completed":
        return {"fault": fault, "seconds": seconds, "status": info.get("status"), "info": info}
    reported = subprocess.run(
        [*PYTHON, "report", info["job_id"], "--format", "jsonl"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    results = [json.loads(line) for line in reported.stdout.splitlines()]
    sent = sum(int(r["attempts"] or 0) for r in results)
    give_up = time.monotonic() + 2 * args.http_timeout + 30  # stalled answers are logged late
    while len(calls := requests_of(sim, org)) < sent and time.monotonic() < give_up:
        time.sleep(0.2)
    tries = Counter((c["route"], c["key"]) for c in calls)
    return {
        "fault": fault,
        "seconds": seconds,
        "status": info["status"],
        "paused": info.get("reason") is not None,
        "requests": len(calls),
        "attempts": sent,
        "retries": sum(n - 1 for n in tries.values()),
        "reads": sum(1 for c in calls if c["route"] == "apple.get"),
        "injected": sum(1 for c in calls if c["fault"]),
        "outcomes": Counter(r["outcome"] for r in results),
        "differences": differences(sim, org, rows, expected, [r["outcome"] for r in results]),
        "undecided": info.get("undecided", 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500, help="the job's --rate")
    parser.add_argument("--rate-of-fault", type=float, default=0.05)
    parser.add_argument("--http-timeout", type=float, default=10.0)
    parser.add_argument("--retry-initial-wait", type=float, default=None, help="default: shipped")
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated subset")
    args = parser.parse_args()
    hang = str(args.http_timeout + 5)
    settings = {"tenant_rate": "100000", "http_timeout": str(args.http_timeout)}
    if args.retry_initial_wait is not None:
        settings["retry_initial_wait"] = str(args.retry_initial_wait)
    with stack(2, ("--hang-seconds", hang), **settings) as st:
        rows = [one_job(st.env, st.folder, st.sim, fault, args) for fault in args.faults.split(",")]
        crashed = "Traceback" in (st.folder / "worker.log").read_text(errors="replace")
    wait = settings.get("retry_initial_wait", "shipped")
    print(f"{args.targets} Apple targets per job, each fault at {args.rate_of_fault:.0%} alone, "
          f"--rate {args.rate:g}, HTTP_TIMEOUT {args.http_timeout:g} s, stall {hang} s, "
          f"RETRY_INITIAL_WAIT {wait}, 1 worker x 2 processes")  # fmt: skip
    print(f"{'fault':<12} {'seconds':>7} {'requests':>8} {'retries':>7} {'reads':>5} "
          f"{'injected':>8} {'diffs':>5} {'paused':>6}  outcomes")  # fmt: skip
    for row in rows:
        if row["status"] != "completed":
            print(f"{row['fault']:<12} {row['seconds']:7.1f}  job {row['status']}: {row['info']}")
            continue
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(row["outcomes"].items()))
        paused = "yes" if row["paused"] else "no"
        print(f"{row['fault']:<12} {row['seconds']:7.1f} {row['requests']:8d} "
              f"{row['retries']:7d} {row['reads']:5d} {row['injected']:8d} "
              f"{row['differences']:5d} {paused:>6}  {outcomes}")  # fmt: skip
        if row["requests"] != row["attempts"]:
            print(f"{'':<12} requests in the log {row['requests']} != attempts {row['attempts']}")
    print(f"worker Traceback in its log: {'yes' if crashed else 'none'}")


if __name__ == "__main__":
    main()
