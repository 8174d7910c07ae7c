"""Scale benchmark: a million targets end to end.

    python bench/scale.py [--targets 1000000] [--workers 2]

A private Redis, the simulator holding ``--targets`` pending Apple commands (no server-side
limit), one worker with 2 pool processes, the job and tenant rates far above what the machine
can do. Printed:

* submit: the CLI's wall time and peak RSS (target <= 100 MB), streaming the CSV in;
* time from submit returned to completed, and the requests/s of the run (simulator log);
* Redis: peak ``used_memory`` over the run less the empty server's, per target, with every
  outcome stored (target <= 128 bytes);
* the most chunk messages the broker held at once (sampled every 0.2 s from the Celery queue);
* report: the CLI's wall time and peak RSS writing the million rows (target <= 100 MB);
* purge: its wall time, and Redis memory left after it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.core import ORG, PYTHON, commands, seed, stack
from countermand.store import keys
from tasks.messages import Queue

# Runs a command and writes its peak RSS (KiB) to the file named first. The CLI is started by
# this small process, not by the benchmark: a child forked from the benchmark (which held a
# million records) counts the parent's resident pages in its peak until it execs.
PEAK = """import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_pid, status, usage = os.wait4(proc.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def timed(env: dict[str, str], folder: Path, *args: str) -> tuple[float, float, str]:
    """Run ``countermand ARGS``: wall seconds, peak RSS (MB) of that process, its stdout."""
    out_path, err_path, peak_path = folder / "cli.out", folder / "cli.err", folder / "cli.peak"
    with out_path.open("w") as out, err_path.open("w") as err:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", PEAK, str(peak_path), *PYTHON, *args],
                              env=env, stdout=out, stderr=err, check=False)  # fmt: skip
        wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"countermand {' '.join(args)} failed: {err_path.read_text()[-2000:]}")
    return wall, int(peak_path.read_text()) / 1024, out_path.read_text()


class BrokerWatch(threading.Thread):
    """The most messages the chunk queue (all its priority lists) held at any sample."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(url)
        self.most = 0
        self.stop = threading.Event()

    def run(self) -> None:
        names = [Queue.CHUNKS.value] + [f"{Queue.CHUNKS.value}\x06\x16{p}" for p in range(10)]
        while not self.stop.wait(0.2):
            self.most = max(self.most, sum(int(self.client.llen(n)) for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    n = args.targets
    with stack(args.workers, tenant_rate="100000") as st:
        client = redis.Redis.from_url(st.redis_url, decode_responses=True)
        records = commands(n)
        seed(st.sim, records)
        path = st.folder / "targets.csv"
        with path.open("w") as csv_file:
            csv_file.write("target_id,command_id\n")
            csv_file.writelines(f"{r['target_id']},{r['command_id']}\n" for r in records)
        del records
        st.sim.reset_requests()
        client.config_resetstat()
        empty = int(client.info("memory")["used_memory"])
        watch = BrokerWatch(st.redis_url)
        watch.start()
        submit_s, submit_mb, out = timed(st.env, st.folder, "submit", "applivery-apple", str(path),
                                         "--org", ORG, "--rate", "100000")  # fmt: skip
        job_id = out.strip()
        submitted = time.monotonic()
        peak = 0
        while client.hget(keys.job(job_id), "status") != "completed":
            peak = max(peak, int(client.info("memory")["used_memory"]))
            time.sleep(0.5)
        completed_s = time.monotonic() - submitted
        memory = client.info("memory")
        peak = max(peak, int(memory["used_memory_peak"]), int(memory["used_memory"]))
        watch.stop.set()
        watch.join()
        calls = st.sim.requests(route="apple.cancel")["requests"]
        times = sorted(c["t"] for c in calls)
        rate = (len(times) - 1) / (times[-1] - times[0])
        canceled = int(client.hget(keys.job(job_id), "n:c") or 0)
        report_s, report_mb, _ = timed(st.env, st.folder, "report", job_id, "--output",
                                       str(st.folder / "report.csv"))  # fmt: skip
        rows = sum(1 for _ in (st.folder / "report.csv").open()) - 1
        purge_s, _, _ = timed(st.env, st.folder, "purge", job_id)
        left = int(client.info("memory")["used_memory"]) - empty
    print(f"targets                          {n:,}  ({canceled:,} canceled)")
    print(f"submit                           {submit_s:.1f} s, CLI peak RSS {submit_mb:.0f} MB"
          "  (<= 100 MB)")  # fmt: skip
    print(f"submit returned -> completed     {completed_s:.1f} s")
    print(f"requests/s                       {rate:,.0f}  ({len(calls):,} requests)")
    print(f"Redis peak per target            {(peak - empty) / n:.0f} bytes  (<= 128)")
    print(f"most chunk messages in broker    {watch.most}")
    print(f"report                           {report_s:.1f} s for {rows:,} rows, "
          f"CLI peak RSS {report_mb:.0f} MB  (<= 100 MB)")  # fmt: skip
    print(f"purge                            {purge_s:.1f} s, Redis left {left / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
