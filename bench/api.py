"""A large job submitted over HTTP: does the upload stream, and do the events keep coming?

    python bench/api.py [--targets 100000]

A private Redis, the simulator (seeded with the job's Applivery Apple commands), one worker with
2 pool processes and ``countermand api``, each its own process. The input (a CSV of N rows) is
POSTed to ``/v1/jobs`` as one request body; then ``/v1/jobs/{id}/events`` is followed until the
job ends. Printed: the size of the upload, the time to the 201, the API process's peak RSS
(``VmHWM``) before and after (goal <= 150 MB), and the largest gap between two server-sent
events (each at most a second apart by design).
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.core import ORG, PYTHON, commands, seed, stack
from countermand.localredis import free_port, stop_process


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100_000)
    args = parser.parse_args()
    with stack(2, tenant_rate="100000") as st:
        records = commands(args.targets)
        seed(st.sim, records)
        port = free_port()
        log = (st.folder / "api.log").open("wb")
        api = subprocess.Popen([*PYTHON, "api", "--port", str(port)], stdout=log,
                               stderr=subprocess.STDOUT, env=st.env)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + "/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the API did not start")
                time.sleep(0.1)
            key = subprocess.run([*PYTHON, "keys", "add", f"bench-{secrets.token_hex(3)}",
                                  "--role", "operator"], env=st.env, capture_output=True,
                                 text=True, check=True).stdout.strip().splitlines()[-1]  # fmt: skip
            rows = "".join(f"{r['target_id']},{r['command_id']}\n" for r in records)
            body = ("target_id,command_id\n" + rows).encode()
            before = peak_rss_mb(api.pid)
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "text/csv"}
            started = time.monotonic()
            with httpx.Client(base_url=url, headers=headers, timeout=600) as http:
                created = http.post("/v1/jobs", params={"provider": "applivery-apple", "org": ORG,
                                                        "rate": 100000}, content=body)  # fmt: skip
                created.raise_for_status()
                upload_s = time.monotonic() - started
                job_id = created.json()["job_id"]
                arrivals = []
                with http.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
                    for line in stream.iter_lines():
                        if line.startswith("event: "):
                            arrivals.append(time.monotonic())
                            if line == "event: end":
                                break
            after = peak_rss_mb(api.pid)
        finally:
            stop_process(api, 30)  # type: ignore[arg-type]
    gaps = [b - a for a, b in pairwise(arrivals)]
    print(f"targets                {args.targets}")
    print(f"upload                 {len(body) / 1e6:.1f} MB, 201 after {upload_s:.1f} s")
    print(f"API peak RSS           {before:.0f} MB before, {after:.0f} MB after (goal <= 150 MB)")
    print(f"events                 {len(arrivals)} until end, {arrivals[-1] - arrivals[0]:.1f} s")
    print(f"largest gap            {max(gaps) * 1000:.0f} ms between two events")


if __name__ == "__main__":
    main()
