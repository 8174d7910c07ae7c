"""Poll throughput beside cancel throughput, in one run, on the same stack.

    python bench/poll.py [--targets 50000]

One worker with 2 pool processes against the simulator (no server limit): a cancel job of N
Applivery Apple commands, then a poll job reading N other commands (one GET each; Windows
batches need a GET per page of actions, so they are not in this figure). Throughput is
counted from the simulator's request log.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.core import ORG, PYTHON, commands, rate_from_log, seed, stack
from bench.limits import write_csv


def run(env: dict[str, str], verb: str, path: Path) -> None:
    done = subprocess.run(
        [*PYTHON, verb, "applivery-apple", str(path), "--org", ORG, "--rate", "100000",
         "--wait", "--json"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{verb} failed: {done.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=50_000)
    args = parser.parse_args()
    with stack(2, tenant_rate="100000") as st:
        to_cancel, to_poll = commands(args.targets), commands(args.targets)
        seed(st.sim, to_cancel + to_poll)
        st.sim.reset_requests()
        run(st.env, "submit", write_csv(st.folder, to_cancel))
        n_cancel, cancel_rate = rate_from_log(st.sim)
        st.sim.reset_requests()
        run(st.env, "poll", write_csv(st.folder, to_poll))
        calls = st.sim.requests(route="apple.get")["requests"]
        times = sorted(c["t"] for c in calls)
        poll_rate = (len(times) - 1) / (times[-1] - times[0])
    print(f"targets              {args.targets} per job, 2 worker processes x 32 in flight")
    print(f"cancel throughput    {cancel_rate:,.0f} req/s ({n_cancel} cancels)")
    print(f"poll throughput      {poll_rate:,.0f} req/s ({len(times)} reads)")
    print(f"poll / cancel        {poll_rate / cancel_rate:.2f}")


if __name__ == "__main__":
    main()
