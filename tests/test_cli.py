"""The CLI contract: output shapes, exit codes and messages, run as a user runs it."""

from __future__ import annotations

import csv
import io
import json
import secrets
from pathlib import Path

import pytest

from countermand.localredis import free_port
from countermand.models import Outcome
from tests.checks import wait_settled
from tests.harness import SimulatorProcess, WorkerProcess, cli
from tests.scenarios import apple

pytestmark = pytest.mark.e2e
HEADER = "target_id,command_id\n"


def cmd() -> str:
    return secrets.token_hex(12)


def test_submit_prints_only_the_job_id_and_warns_on_stderr(
    env: dict[str, str], worker: WorkerProcess, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"target_id,command_id,note\nDEV1,{cmd()},x\n")
    done = cli(env, "submit", "applivery-apple", str(path), "--org", "acme-corp", "--dry-run")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert done.stdout == job_id + "\n" and len(job_id) == 16
    assert "ignoring column(s) not used by applivery-apple: note" in done.stderr
    info = wait_settled(env, job_id)
    assert info["status"] == "completed"


def test_status_object_shape(env: dict[str, str], worker: WorkerProcess) -> None:
    done = cli(
        env, "submit", "applivery-apple", "-", "--org", "acme-corp", "--dry-run", "--json",
        "--name", "shape", stdin=f"{HEADER}DEV1,{cmd()}\nDEV2,nothex\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    for key in ("job_id", "status", "reason", "total", "counts"):
        assert key in info
    assert set(info["counts"]) == {o.value for o in Outcome} | {"remaining"}
    assert info["total"] == 2 and info["name"] == "shape"
    assert info["counts"]["invalid"] == 1


def test_jobs_lists_newest_first(env: dict[str, str], worker: WorkerProcess) -> None:
    ids = []
    for _ in range(2):
        done = cli(env, "submit", "applivery-apple", "-", "--org", "acme-corp", "--dry-run",
                   stdin=f"{HEADER}DEV1,{cmd()}\n")  # fmt: skip
        ids.append(done.stdout.strip())
    listed = json.loads(cli(env, "jobs", "--json").stdout)
    positions = [next(i for i, j in enumerate(listed) if j["job_id"] == job) for job in ids]
    assert positions[1] < positions[0]


def test_report_columns_and_order(
    env: dict[str, str], sim: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    sc = apple(f"org-{secrets.token_hex(4)}", pending=3, done=1, missing=1)
    sim.client.add_commands(sc.provider, sc.records)
    path = tmp_path / "in.csv"
    path.write_text(sc.csv_text())
    done = cli(env, "submit", sc.provider, str(path), "--org", sc.org, "--wait")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    out = tmp_path / "report.csv"
    written = cli(env, "report", job_id, "--output", str(out))
    assert written.returncode == 0 and written.stdout == ""
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == [
        "target_id", "command_id", "target_type", "outcome", "http_status", "error_code",
        "error_message", "attempts", "updated_at", "vendor_status", "verified",
    ]  # fmt: skip
    assert [r[1] for r in rows[1:]] == [r[1] for r in sc.rows]
    assert [r[3] for r in rows[1:]] == sc.expected
    not_found = rows[1 + sc.expected.index("not_found")]
    assert not_found[4:7] == ["404", "3001", "Entity not found"]


def test_pause_resume_abort_and_purge(env: dict[str, str], worker: WorkerProcess) -> None:
    rows = "".join(f"DEV{i},{cmd()}\n" for i in range(40))
    done = cli(env, "submit", "applivery-apple", "-", "--org", f"org-{secrets.token_hex(3)}",
               "--rate", "2", stdin=HEADER + rows)  # fmt: skip
    job_id = done.stdout.strip()
    purge = cli(env, "purge", job_id)
    assert purge.returncode == 2 and "abort or pause it before purge" in purge.stderr
    assert cli(env, "pause", job_id).returncode == 0
    paused = json.loads(cli(env, "status", job_id, "--json").stdout)
    assert (paused["status"], paused["reason"]) == ("paused", "operator")
    again = cli(env, "pause", job_id)
    assert again.returncode == 2 and "is paused" in again.stderr
    assert cli(env, "resume", job_id).returncode == 0
    assert cli(env, "abort", job_id).returncode == 0
    aborted = json.loads(cli(env, "status", job_id, "--json").stdout)
    assert aborted["status"] == "aborted" and aborted["counts"]["remaining"] > 0
    assert cli(env, "resume", job_id).returncode == 2
    assert cli(env, "purge", job_id).returncode == 0
    gone = cli(env, "status", job_id)
    assert gone.returncode == 2 and "unknown job" in gone.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["submit", "jamf", "-", "--org", "acme-corp"], HEADER, "unknown provider 'jamf'"),
        (["submit", "applivery-apple", "/nope.csv", "--org", "acme-corp"], None, "/nope.csv"),
        (["submit", "applivery-apple", "-", "--org", "a b"], HEADER, "--org"),
        (["submit", "applivery-apple", "-", "--org", "acme-corp", "--rate", "0"], HEADER, "rate"),
        (["submit", "applivery-apple", "-", "--org", "acme-corp"], "id,cmd\n", "-: line 1"),
        (["status", "0000000000000000"], None, "unknown job"),
        (["report", "0000000000000000"], None, "unknown job"),
        (["worker", "-P", "threads"], None, "pool 'threads' is not supported"),
    ],
)
def test_usage_errors_exit_2_and_say_what(
    env: dict[str, str], args: list[str], stdin: str | None, message: str
) -> None:
    done = cli(env, *args, stdin=stdin)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert done.stdout == ""


def test_missing_credential_is_refused_before_anything_is_queued(env: dict[str, str]) -> None:
    bare = {k: v for k, v in env.items() if k != "COUNTERMAND_ENOS_ACCESS_KEY"}
    before = json.loads(cli(env, "jobs", "--json").stdout)
    done = cli(bare, "submit", "enos", "-", "--org", "o1", stdin="asset_id\na1\n")
    assert done.returncode == 2
    assert "no enos credential for org 'o1'" in done.stderr
    assert "COUNTERMAND_ENOS_ACCESS_KEY" in done.stderr
    assert len(json.loads(cli(env, "jobs", "--json").stdout)) == len(before)


def test_redis_unreachable_exits_3(env: dict[str, str]) -> None:
    down = {**env, "COUNTERMAND_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    done = cli(down, "status", "0000000000000000")
    assert done.returncode == 3
    assert "cannot reach Redis at redis://127.0.0.1" in done.stderr


def test_secrets_never_reach_redis(env: dict[str, str], redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(count=1000):
            kind = client.type(key)
            dump = repr(client.dump(key)) if kind else ""
            for secret in ("sim-applivery-token", "sim-secret-key", "sim-access-key"):
                assert secret not in dump, (key, secret)
    finally:
        client.close()
