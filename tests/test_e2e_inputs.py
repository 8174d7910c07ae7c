"""Bad input, as a user meets it through the CLI: every file-level problem exits 2 naming the
file and the physical line, with no job left and nothing sent; an over-long id is that row's
``invalid``; generated garbage never makes ``submit --dry-run`` crash."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from countermand.providers import SPECS
from tests.checks import report, wait_settled
from tests.conftest import NIGHTLY
from tests.harness import SimulatorProcess, WorkerProcess, cli
from tests.scenarios import hex24
from tests.test_fuzz_inputs import chaos

pytestmark = pytest.mark.e2e


def deep_csv() -> bytes:
    rows = [f"SER{i},{hex24()},device" for i in range(3000)]
    rows[2000] = "SER2000," + "\xe9"  # physical line 2,002 (after the header)
    body = "\n".join(rows).encode("utf-8")
    return b"target_id,command_id,target_type\n" + body.replace(b"\xc3\xa9", b"\xe9") + b"\n"


CASES = [
    ("spanning.csv",  # a quoted field spans lines 2-3, the bad byte is on line 4
     b'target_id,command_id,note\nSER1,' + hex24().encode() + b',"two\nlines"\nSER\xe9,x,y\n', 4),
    ("deep.csv", deep_csv(), 2002),
    ("bad.jsonl", b'{"target_id": "A", "command_id": "' + hex24().encode() + b'"}\n{}\n'
     b'{"target_id": "\xff"}\n', 3),
    ("utf16.csv", "target_id,command_id\nA,B\n".encode("utf-16"), 1),
    ("nul.csv", b"target_id,command_id\nA\x00,B\n", 2),
    ("open-quote.csv", b'target_id,command_id\nA,B\n"C,D\nE,F\n', 3),
]  # fmt: skip


def job_count(env: dict[str, str]) -> int:
    return len(json.loads(cli(env, "jobs", "--json").stdout))


@pytest.mark.parametrize(("name", "data", "line"), CASES, ids=[c[0] for c in CASES])
def test_file_level_errors_exit_2_name_the_line_and_send_nothing(
    name: str,
    data: bytes,
    line: int,
    env: dict[str, str],
    sim: SimulatorProcess,
    worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    org = f"org-{secrets.token_hex(4)}"
    path = tmp_path / name
    path.write_bytes(data)
    before = job_count(env)
    done = cli(env, "submit", "applivery-apple", str(path), "--org", org)
    assert done.returncode == 2, done.stderr
    assert f"{path}: line {line}:" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert job_count(env) == before  # no job left behind, aborted or otherwise
    sent = [c for c in sim.client.requests()["requests"] if c["tenant"] == f"applivery:{org}"]
    assert sent == []


def test_an_over_long_id_is_that_rows_invalid(
    env: dict[str, str], sim: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    org = f"org-{secrets.token_hex(4)}"
    good = {"org": org, "target_type": "device", "target_id": "SER1", "command_id": hex24(),
            "status": "Pending"}  # fmt: skip
    sim.client.add_commands("applivery-apple", [good])
    path = tmp_path / "long.csv"
    path.write_text(f"target_id,command_id\n{'S' * 100_000},{hex24()}\nSER1,{good['command_id']}\n")
    done = cli(env, "submit", "applivery-apple", str(path), "--org", org, "--wait", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    records = report(env, info["job_id"])
    assert [r["outcome"] for r in records] == ["invalid", "canceled"]
    assert "at most 128" in records[0]["error_message"] or "128" in records[0]["error_message"]
    assert len(records[0]["error_message"]) < 300  # the id is not copied into the report
    assert wait_settled(env, info["job_id"])["status"] == "completed"
    sent = [c for c in sim.client.requests()["requests"] if c["tenant"] == f"applivery:{org}"]
    assert len(sent) == 1  # the long id never went into a URL


WHERE = re.compile(r"error: (?P<file>\S+): line (?P<line>\d+): ")


@settings(max_examples=200 if NIGHTLY else 20)
@given(data=st.data())
def test_generated_files_through_the_cli_exit_0_or_2(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    provider = data.draw(st.sampled_from(sorted(n for n, s in SPECS.items() if s.can_cancel)))
    name, contents = data.draw(chaos(SPECS[provider]))
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(contents)
    org = "o1" if provider == "enos" else "acme-corp"
    done = cli(env, "submit", provider, str(path), "--org", org, "--dry-run")
    assert done.returncode in (0, 2), done.stderr
    assert "Traceback" not in done.stderr
    if done.returncode == 2:
        where = WHERE.search(done.stderr)
        assert where is not None and where["file"] == str(path), done.stderr
        count = contents.count(b"\n") + (not contents.endswith(b"\n"))
        assert 1 <= int(where["line"]) <= max(count, 1)
    else:
        assert re.fullmatch(r"[0-9a-f]{16}\n", done.stdout), done.stdout
