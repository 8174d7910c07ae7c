"""The HTTP API end to end: real Redis, real workers, the simulator, ``countermand api`` as a
process; submits, live events, reports, problems, sessions, idempotency, webhooks, audit."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from countermand.localredis import free_port
from tests.conftest import WEBHOOK_SECRET
from tests.harness import ApiProcess, SimulatorProcess, WorkerProcess, cli_json, make_key, wait_for
from tests.scenarios import apple

pytestmark = pytest.mark.e2e
CSV = {"Content-Type": "text/csv"}


@pytest.fixture(scope="session")
def api(e2e_dir: Path, env: dict[str, str]) -> Iterator[ApiProcess]:
    process = ApiProcess(e2e_dir, env, api_max_upload_bytes="1000000")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def keys(env: dict[str, str]) -> dict[str, str]:
    return {
        "operator": make_key(env, f"ops-{secrets.token_hex(3)}", "operator"),
        "viewer": make_key(env, f"view-{secrets.token_hex(3)}", "viewer"),
        "limited": make_key(env, f"lim-{secrets.token_hex(3)}", "operator", "org-limited-only"),
    }


def client(api: ApiProcess, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=api.url, headers=headers, timeout=30)


def submit(http: httpx.Client, org: str, text: str, **params: Any) -> httpx.Response:
    return http.post("/v1/jobs", params={"provider": "applivery-apple", "org": org, **params},
                     content=text.encode(), headers=CSV)  # fmt: skip


def events(http: httpx.Client, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every server-sent event of the job until ``end``."""
    found: list[tuple[str, dict[str, Any]]] = []
    with http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=120) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                found.append((kind, json.loads(line[6:])))
                if kind == "end":
                    break
    return found


def test_submit_follow_report_and_find_a_target(
    api: ApiProcess, keys: dict[str, str], sim: SimulatorProcess, worker: WorkerProcess
) -> None:
    sc = apple(f"org-{secrets.token_hex(4)}", pending=40, done=5)
    sim.client.add_commands(sc.provider, sc.records)
    with client(api, keys["operator"]) as http:
        earlier = submit(http, sc.org, "target_id,command_id\n", dry_run=True)
        assert earlier.status_code == 201, earlier.text
        created = submit(http, sc.org, sc.csv_text(), rate=100, name="over http")
        assert created.status_code == 201, created.text
        job = created.json()
        assert job["name"] == "over http" and job["loaded"] is True and "limiter" in job
        seen = events(http, job["job_id"])
        assert seen[-1][0] == "end" and seen[-1][1]["status"] == "completed"
        assert all(kind == "progress" for kind, _ in seen[:-1])
        report = http.get(f"/v1/jobs/{job['job_id']}/report", params={"format": "jsonl"})
        assert report.headers["content-type"].startswith("application/x-ndjson")
        outcomes = [json.loads(line)["outcome"] for line in report.text.splitlines()]
        assert outcomes == sc.expected
        as_csv = http.get(f"/v1/jobs/{job['job_id']}/report")
        header = as_csv.text.splitlines()[0]
        assert header.startswith("target_id,command_id,target_type,outcome")
        wanted = sc.rows[3][0]
        found = http.get(f"/v1/jobs/{job['job_id']}/targets", params={"q": wanted}).json()
        assert [t["index"] for t in found["targets"]] == [3]
        invalid = http.get(f"/v1/jobs/{job['job_id']}/targets", params={"outcome": "invalid"})
        assert len(invalid.json()["targets"]) == sc.expected.count("invalid")
        listed = http.get("/v1/jobs", params={"limit": 1}).json()
        assert listed["jobs"][0]["job_id"] == job["job_id"] and listed["next_cursor"]
        older = http.get("/v1/jobs", params={"limit": 1, "cursor": listed["next_cursor"]}).json()
        assert older["jobs"][0]["job_id"] == earlier.json()["job_id"]


def test_problems_say_what_and_where(api: ApiProcess, keys: dict[str, str]) -> None:
    with client(api, keys["operator"]) as http:
        for path in ("/v1/jobs/not-a-job-id", "/v1/jobs/0123456789abcdef"):
            answer = http.get(path)
            assert answer.status_code == 404
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["detail"].startswith("unknown job")
        bad_file = submit(http, "acme-corp", "target_id,command_id\nA,B\n\xe9\n")
        assert bad_file.status_code == 201  # \xe9 as text is UTF-8: a row, not a file error
        broken = http.post("/v1/jobs", params={"provider": "applivery-apple", "org": "acme"},
                           content=b"target_id,command_id\nA,B\n\xff\n", headers=CSV)  # fmt: skip
        assert (
            broken.status_code == 422 and "upload.csv: line 3: not UTF-8" in broken.json()["detail"]
        )
        assert submit(http, "acme-corp", "x", rate=0).status_code == 422
        assert submit(http, "a b", "target_id,command_id\n").status_code == 422
        too_big = submit(http, "acme-corp", "target_id,command_id\n" + "A,B\n" * 300_000)
        assert too_big.status_code == 413
        pdf = {"Content-Type": "application/pdf"}
        wrong_type = http.post("/v1/jobs", params={"provider": "enos", "org": "o1"},
                               content=b"{}", headers=pdf)  # fmt: skip
        assert wrong_type.status_code == 415
        job = submit(http, "acme-corp", "target_id,command_id\n", dry_run=True).json()
        assert job["status"] == "completed"
        resumed = http.post(f"/v1/jobs/{job['job_id']}/resume")
        assert resumed.status_code == 409 and "cannot make it running" in resumed.json()["detail"]


def test_idempotency_key_returns_the_first_job(api: ApiProcess, keys: dict[str, str]) -> None:
    key = secrets.token_hex(8)
    text = f"target_id,command_id\nSER1,{secrets.token_hex(12)}\n"
    params = {"provider": "applivery-apple", "org": "acme-corp", "dry_run": True}
    headers = {**CSV, "Idempotency-Key": key}
    with client(api, keys["operator"]) as http:
        first = http.post("/v1/jobs", params=params, content=text.encode(), headers=headers)
        again = http.post("/v1/jobs", params=params, content=text.encode(), headers=headers)
        other = submit(http, "acme-corp", text, dry_run=True)
    assert first.status_code == again.status_code == 201
    assert first.json()["job_id"] == again.json()["job_id"] != other.json()["job_id"]


def test_dashboard_session_needs_its_csrf_token_to_act(
    api: ApiProcess, keys: dict[str, str]
) -> None:
    with httpx.Client(base_url=api.url) as http:
        assert http.post("/session", json={"key": "cmk_nope"}).status_code == 401
        login = http.post("/session", json={"key": keys["operator"]})
        assert login.status_code == 200
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        csrf = login.json()["csrf"]
        params = {"provider": "applivery-apple", "org": "acme-corp", "dry_run": True}
        job = http.post("/v1/jobs", params=params, content=b"target_id,command_id\n",
                        headers={**CSV, "X-CSRF-Token": csrf})  # fmt: skip
        assert job.status_code == 201, job.text
        job_id = job.json()["job_id"]
        assert http.get(f"/v1/jobs/{job_id}").status_code == 200  # reads need no token
        assert http.delete(f"/v1/jobs/{job_id}").status_code == 403  # acts do
        assert http.delete(f"/v1/jobs/{job_id}", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert http.delete("/session").status_code == 204
        assert http.get(f"/v1/jobs/{job_id}").status_code == 401


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    server = HTTPServer(("127.0.0.1", free_port()), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook?token=abc"
    server.shutdown()


def test_webhooks_are_signed_and_failures_audited(
    api: ApiProcess,
    keys: dict[str, str],
    env: dict[str, str],
    sim: SimulatorProcess,
    worker: WorkerProcess,
    receiver: str,
) -> None:
    sc = apple(f"org-{secrets.token_hex(4)}", pending=3, done=0, missing=0)
    sim.client.add_commands(sc.provider, sc.records)
    with client(api, keys["operator"]) as http:
        job = submit(http, sc.org, sc.csv_text(), notify=receiver, rate=100).json()
        wait_for(lambda: Receiver.received, 60, "the completed webhook")
        headers, body = Receiver.received[0]
        expected = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Countermand-Signature"] == f"sha256={expected}"
        sent = json.loads(body)
        assert sent["event"] == "completed" and sent["job"]["job_id"] == job["job_id"]
        dead = f"http://127.0.0.1:{free_port()}/gone"
        failing = submit(http, sc.org, "target_id,command_id\n", notify=dead, dry_run=True).json()

        def gave_up() -> list[dict[str, Any]] | None:
            entries = http.get("/v1/audit", params={"job": failing["job_id"]}).json()["entries"]
            tries = [e for e in entries if e["action"] == "webhook_failed"]
            return tries if any(e["params"].get("gave_up") for e in tries) else None

        tries = wait_for(gave_up, 60, "the webhook to be given up")
        assert len(tries) == 3 and all(e["actor"] == "system:webhooks" for e in tries)
        assert all("token" not in json.dumps(e) for e in tries)  # the URL's query is not kept


def test_the_audit_log_names_every_actor(
    api: ApiProcess, keys: dict[str, str], env: dict[str, str], sim: SimulatorProcess
) -> None:
    with client(api, keys["operator"]) as http:
        job = submit(http, "acme-corp", "target_id,command_id\n", dry_run=True).json()
        http.delete(f"/v1/jobs/{job['job_id']}")
    by_api = {
        e["action"]: e["actor"] for e in cli_json(env, "audit", "--job", job["job_id"], "--json")
    }
    operator_name = next(
        k["name"] for k in cli_json(env, "keys", "list", "--json") if k["name"].startswith("ops-")
    )
    assert by_api == {"submit": f"key:{operator_name}", "purge": f"key:{operator_name}"}
    sc = apple(f"org-{secrets.token_hex(4)}", pending=1, done=0, missing=0)
    done = cli_json(env, "submit", "applivery-apple", "-", "--org", sc.org, "--dry-run", "--json",
                    stdin=sc.csv_text())  # fmt: skip
    by_cli = cli_json(env, "audit", "--job", done["job_id"], "--json")
    assert [e["actor"].split(":")[0] for e in by_cli] == ["os"]
