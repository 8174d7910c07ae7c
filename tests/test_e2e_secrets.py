"""No secret leaves the processes that hold it. Every job kind runs (Apple, Android and EnOS
cancels, EnOS device-wide rows among them; a Windows poll; a cleanup policy run from the CLI and
one from the API; a retry round started by beat and one by hand; a --verify job; a job stopped by
a wrong credential) against a private Redis that requires a password, with distinctive secrets:
vendor credentials (environment and credentials file), API keys, a dashboard session and the
webhook secret. Worker, beat, API and CLI all log at DEBUG.

Then everything they left is searched for every secret in its obvious encodings (raw,
URL-quoted, base64 at any alignment, the Redis URL with its password): every command Redis
received (MONITOR: broker messages in flight and data deleted since are there too), every key
and value of every database at the end, the broker's message bodies decoded, every log (worker,
beat, API, Redis, CLI stderr), every CLI output and error (some forced: unreachable or refused
Redis with the password in its URL, bad input files, unknown names), every report, every API
answer (jobs, lists, reports, targets, events, tenants, policies, audit, problems, /metrics,
/openapi.json) and every webhook delivered. Only the probes this test plants are found: proof
that the search reaches every kind of place it claims to.

The simulator plays the vendor: it holds the credentials by design, and its log is not searched.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

import httpx
import pytest
import redis

from countermand.localredis import free_port, private_redis
from tests.checks import write_input
from tests.conftest import e2e_env
from tests.harness import (
    PYTHON,
    ApiProcess,
    BeatProcess,
    SimulatorProcess,
    WorkerProcess,
    cli,
    wait_for,
)
from tests.scenarios import Scenario, android, apple, enos, hex24
from tests.test_e2e_cleanup import OLD_MS, enos_command
from tests.test_e2e_poll import windows_batch

pytestmark = pytest.mark.e2e
PROBE = "cm-secrets-probe"  # in the name of everything this test plants
APPLIVERY_ORGS = ("apple", "android", "api", "windows", "retry", "refused")
CSV = {"Content-Type": "text/csv"}

# Every Countermand process of this test logs at DEBUG. There is no log-level setting (only
# `worker` and `beat` take a --loglevel, and the harness passes the worker none), so a
# sitecustomize on the PYTHONPATH of every process the test starts makes
# countermand.logs.configure, through which worker, beat and API set up their logs, use DEBUG,
# and calls it at start for the CLI, which sets up none.
SITECUSTOMIZE = """
import logging
import countermand.logs as logs

_configure = logs.configure


def _debug(fmt="text", level=None):
    _configure(fmt, logging.DEBUG)


logs.configure = _debug
_debug()
"""


# --- the search ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    source: str  # "redis MONITOR", "redis dump", "broker message", "log", "cli", "api", "webhook"
    where: str
    data: bytes


@dataclass(frozen=True)
class Hit:
    source: str
    where: str
    secret: str
    encoding: str
    line: bytes

    @property
    def planted(self) -> bool:
        return PROBE in self.where or PROBE.encode() in self.line

    @property
    def at_home(self) -> bool:
        """Where the secret is meant to be shown: a new API key on the stdout of `keys add`
        (once), a new dashboard session in the Set-Cookie header of `POST /session`."""
        if self.secret.startswith("api_"):
            where = self.where.startswith("keys add ") and self.where.endswith(" (stdout)")
            return self.source == "cli" and where
        if self.secret == "dashboard_session":
            where = self.where == "POST /session (headers)"
            return self.source == "api" and where and self.line.startswith(b"set-cookie: ")
        return False

    def describe(self) -> str:
        return f"{self.secret} ({self.encoding}) in {self.source} {self.where}: {self.line!r}"


def base64_forms(raw: bytes) -> dict[str, bytes]:
    """The base64 text that ``raw`` becomes wherever it starts in the encoded bytes: the 4-char
    groups made of its own bytes alone, for each of the three alignments, both alphabets."""
    forms = {}
    for shift in range(3):
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = encode(b"\0" * shift + raw)
            first, end = -(-shift // 3), (shift + len(raw)) // 3
            forms[f"{name}+{shift}"] = text[4 * first : 4 * end]
    return forms


def needles(secrets_: dict[str, str]) -> dict[bytes, list[tuple[str, str]]]:
    table: dict[bytes, list[tuple[str, str]]] = {}
    for name, value in secrets_.items():
        raw = value.encode()
        forms = {"raw": raw, "url-quoted": quote(value, safe="").encode(),
                 "form-quoted": quote_plus(value).encode(), **base64_forms(raw)}  # fmt: skip
        for encoding, needle in forms.items():
            assert len(needle) >= 12, (name, encoding)  # long enough never to match by chance
            table.setdefault(needle, []).append((name, encoding))
    return table


def search(items: list[Item], secrets_: dict[str, str]) -> list[Hit]:
    table = needles(secrets_)
    pattern = re.compile(b"|".join(re.escape(n) for n in sorted(table, key=len, reverse=True)))
    hits = []
    for item in items:
        for match in pattern.finditer(item.data):
            start = item.data.rfind(b"\n", 0, match.start()) + 1
            end = item.data.find(b"\n", match.end())
            line = item.data[start : end if end >= 0 else len(item.data)]
            for name, encoding in table[match.group()]:
                hits.append(Hit(item.source, item.where, name, encoding, line[:300]))
    return hits


def message_bodies(value: Any) -> Iterator[bytes]:
    """The decoded bodies of the kombu messages in a JSON value (a queued message, or the
    ``[message, exchange, routing_key]`` of kombu's ``unacked`` hash)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            props = node.get("properties")
            encoding = props.get("body_encoding") if isinstance(props, dict) else None
            if encoding == "base64" and isinstance(node.get("body"), str):
                yield base64.b64decode(node["body"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


DEBUG = re.compile(rb'\[debug |"level": "debug"')  # a DEBUG line, as text or JSON
MONITOR_BODY = re.compile(rb'\\"body\\": \\"([A-Za-z0-9+/=]+)\\"')
MONITOR_TASK = re.compile(rb'\\"task\\": \\"([\w.]+)\\"')


def monitor_messages(stream: bytes) -> list[Item]:
    """The bodies of every kombu message a MONITOR stream shows written (escaped as MONITOR
    quotes arguments), each with the command that wrote it."""
    found = []
    for match in MONITOR_BODY.finditer(stream):
        start = stream.rfind(b"\n", 0, match.start()) + 1
        where = stream[start : start + 160].decode(errors="replace")
        found.append(Item("broker message", where, base64.b64decode(match.group(1))))
    return found


def dump_redis(url: str) -> list[Item]:
    """Every key and value of every database, each key one item; the broker's messages among
    the values decoded as their own items."""
    items: list[Item] = []
    base = url.rsplit("/", 1)[0]
    admin = redis.Redis.from_url(url)
    databases = int(admin.config_get("databases")["databases"])
    admin.close()
    for db in range(databases):
        client = redis.Redis.from_url(f"{base}/{db}")
        try:
            for name in client.scan_iter(count=1000):
                kind, values = dump_key(client, name)
                where = f"db{db} {name.decode(errors='replace')} ({kind})"
                items.append(Item("redis dump", where, b"\n".join([name, *values])))
                for value in values:
                    try:
                        doc = json.loads(value)
                    except ValueError:
                        continue
                    items += [Item("broker message", where, b) for b in message_bodies(doc)]
        finally:
            client.close()
    return items


def dump_key(client: redis.Redis, name: bytes) -> tuple[str, list[bytes]]:
    kind = client.type(name).decode()
    if kind == "string":
        return kind, [client.get(name) or b""]
    if kind == "hash":
        return kind, [b for pair in client.hgetall(name).items() for b in pair]
    if kind == "list":
        return kind, list(client.lrange(name, 0, -1))
    if kind == "set":
        return kind, list(client.smembers(name))
    if kind == "zset":
        return kind, [member for member, _ in client.zrange(name, 0, -1, withscores=True)]
    if kind == "stream":
        entries = client.xrange(name)
        return kind, [b for _, fields in entries for pair in fields.items() for b in pair]
    return kind, []  # gone meanwhile ("none")


class Monitor:
    """Every command the Redis server runs, as MONITOR streams it, kept in memory."""

    END = f"{PROBE}-monitor-end"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.sock = socket.create_connection((parts.hostname, parts.port))
        self.sock.sendall(resp("AUTH", unquote(parts.password or "")) + resp("MONITOR"))
        self.chunks: list[bytes] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        wait_for(lambda: b"+OK\r\n+OK\r\n" in b"".join(self.chunks), 10, "MONITOR to start")

    def _read(self) -> None:
        with contextlib.suppress(OSError):  # the socket shut by stop()
            while chunk := self.sock.recv(1 << 16):
                self.chunks.append(chunk)

    def stop(self) -> bytes:
        """The stream up to now: an ECHO marks its end, so nothing sent before is missed."""
        client = redis.Redis.from_url(self.url)
        client.echo(self.END)
        client.close()
        wait_for(lambda: self.END.encode() in b"".join(self.chunks[-3:]), 30, "MONITOR's end")
        self.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(10)
        self.sock.close()
        return b"".join(self.chunks)


def resp(*args: str) -> bytes:
    out = b"*%d\r\n" % len(args)
    for arg in args:
        out += b"$%d\r\n%s\r\n" % (len(arg.encode()), arg.encode())
    return out


# --- the parts, with distinctive secrets -----------------------------------------------------


def distinctive() -> dict[str, str]:
    tag = secrets.token_hex(6)
    return {
        "redis_password": f"rdsPw{tag}/+x{secrets.token_hex(6)}",  # '/' and '+' quote apart
        "redis_wrong_password": f"rdsWrong{tag}{secrets.token_hex(6)}",
        "applivery_token": f"apvTok{tag}{secrets.token_hex(8)}",
        "applivery_wrong_token": f"apvWrong{tag}{secrets.token_hex(8)}",
        "enos_access_key": f"enosAk{tag}{secrets.token_hex(6)}",
        "enos_secret_key": f"enosSk{tag}{secrets.token_hex(8)}",
        "enos_env_access_key": f"enosEnvAk{tag}{secrets.token_hex(6)}",
        "enos_env_secret_key": f"enosEnvSk{tag}{secrets.token_hex(8)}",
        "webhook_secret": f"whSec{tag}{secrets.token_hex(8)}",
    }


class Hooks:
    """A webhook receiver: every request's headers and body."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.received.append((dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.received]


@dataclass
class Stack:
    folder: Path
    env: dict[str, str]
    secrets: dict[str, str]
    sim: SimulatorProcess
    monitor: Monitor
    hooks: Hooks
    orgs: dict[str, str]
    items: list[Item] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, source: str, where: str, data: bytes) -> None:
        with self.lock:
            self.items.append(Item(source, where, data))

    def cli(self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Any:
        done = cli(env or self.env, *args, stdin=stdin)
        self.record("cli", " ".join(args) + " (stdout)", done.stdout.encode())
        self.record("cli", " ".join(args) + " (stderr)", done.stderr.encode())
        return done

    def cli_json(self, *args: str) -> Any:
        done = self.cli(*args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def record_answer(stack: Stack, answer: httpx.Response) -> httpx.Response:
    head = f"{answer.status_code}\n" + "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
    where = f"{answer.request.method} {answer.request.url.raw_path.decode()}"
    stack.record("api", where + " (headers)", head.encode())
    stack.record("api", where + " (body)", answer.content)
    return answer


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    values = distinctive()
    orgs = {o: f"org-{secrets.token_hex(4)}" for o in APPLIVERY_ORGS}
    orgs |= {o: f"o{secrets.randbelow(10**12)}" for o in ("enos", "cleanup")}
    redis_log = ("--logfile", str(tmp_path / "redis.log"))
    with (
        private_redis(password=values["redis_password"], extra_args=redis_log) as url,
        contextlib.ExitStack() as on_exit,
    ):
        monitor = Monitor(url)
        sim = SimulatorProcess(tmp_path, "--applivery-token", values["applivery_token"],
                               "--enos-access-key", values["enos_access_key"],
                               "--enos-secret-key", values["enos_secret_key"])  # fmt: skip
        on_exit.callback(sim.stop)
        hooks = Hooks()
        on_exit.callback(hooks.server.shutdown)
        env = e2e_env(url, sim.url, write_files(tmp_path, values, orgs))
        env.update(
            COUNTERMAND_APPLIVERY_TOKEN=values["applivery_token"],
            COUNTERMAND_ENOS_ACCESS_KEY=values["enos_env_access_key"],  # no org uses them
            COUNTERMAND_ENOS_SECRET_KEY=values["enos_env_secret_key"],
            COUNTERMAND_WEBHOOK_SECRET=values["webhook_secret"],
            COUNTERMAND_POLICIES_FILE=str(tmp_path / "policies.toml"),
            PYTHONPATH=os.pathsep.join(
                p for p in (str(tmp_path / "debuglogs"), os.environ.get("PYTHONPATH")) if p
            ),
        )
        yield Stack(tmp_path, env, values, sim, monitor, hooks, orgs)


def write_files(folder: Path, values: dict[str, str], orgs: dict[str, str]) -> Path:
    """The credentials file (the wrong Applivery token, the EnOS keys), the policies file and
    the sitecustomize; returns the credentials file."""
    credentials = folder / "credentials.toml"
    text = f'[applivery.{orgs["refused"]}]\ntoken = "{values["applivery_wrong_token"]}"\n'
    for org in (orgs["enos"], orgs["cleanup"]):
        text += f'[enos.{org}]\naccess_key = "{values["enos_access_key"]}"\n'
        text += f'secret_key = "{values["enos_secret_key"]}"\n'
    credentials.write_text(text)
    (folder / "policies.toml").write_text(
        f'[policy.stale-enos]\nprovider = "enos"\norg = "{orgs["cleanup"]}"\n'
        'older_than = "72h"\nschedule = "0 3 * * *"\n'
    )
    (folder / "debuglogs").mkdir()
    (folder / "debuglogs" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return credentials


def plant_probes(stack: Stack) -> None:
    """A secret in base64 in a hash of another database, and a broker-shaped message carrying
    one in its body, through MONITOR and into the dump; and one echoed by the CLI and the API."""
    secret = stack.secrets["webhook_secret"]
    base = stack.env["COUNTERMAND_REDIS_URL"].rsplit("/", 1)[0]
    other = redis.Redis.from_url(f"{base}/7")
    other.hset(f"{PROBE}:hash", "field", base64.b64encode(secret.encode()))
    other.close()
    body = base64.b64encode(json.dumps(["probe", secret]).encode()).decode()
    message = {"body": body, "headers": {}, "properties": {"body_encoding": "base64"}}
    main = redis.Redis.from_url(stack.env["COUNTERMAND_REDIS_URL"])
    main.lpush(f"{PROBE}:queue", json.dumps(message))
    main.close()
    assert stack.cli("keys", "revoke", f"{PROBE}-{secret}").returncode == 2


# --- the run ---------------------------------------------------------------------------------


def parallel(*calls: Callable[[], Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


def scenarios(stack: Stack) -> dict[str, Scenario]:
    o = stack.orgs
    found = {"apple": apple(o["apple"], pending=6, done=2, missing=1),
             "android": android(o["android"], pending=6, done=1, missing=1),
             "api": android(o["api"], pending=4, done=1, missing=0),
             "enos": enos(o["enos"]),
             "retry": apple(o["retry"], pending=4, done=0, missing=0),
             "refused": apple(o["refused"], pending=2, done=0, missing=0)}  # fmt: skip
    for sc in found.values():
        stack.sim.client.add_commands(sc.provider, sc.records)
    batches = [windows_batch(o["windows"], ["Acknowledged", "Pending"]),
               windows_batch(o["windows"], ["OperationCanceled"])]  # fmt: skip
    stack.sim.client.add_commands("applivery-windows", batches)
    windows = Scenario("applivery-windows", o["windows"], ["device_id", "command_id"])
    for batch in batches:
        windows.add([str(batch["device_id"]), str(batch["command_id"])], "")
    found["windows"] = windows
    stale = [enos_command(o["cleanup"], f"a{i % 3}", 1, OLD_MS + i) for i in range(6)]
    stack.sim.client.add_commands("enos", stale)
    return found


def run_every_kind(stack: Stack, api: ApiProcess, keys: dict[str, str]) -> list[str]:
    """Every job kind, to its end; the ids of the jobs."""
    auth = {"Authorization": f"Bearer {keys['operator']}"}
    with httpx.Client(base_url=api.url, timeout=60, headers=auth) as http:
        return run_jobs(stack, http, scenarios(stack))


def run_jobs(stack: Stack, http: httpx.Client, sc: dict[str, Scenario]) -> list[str]:
    def job(job_id: str) -> dict[str, Any]:
        info: dict[str, Any] = record_answer(stack, http.get(f"/v1/jobs/{job_id}")).json()
        return info

    def submit(name: str, *extra: str, command: str = "submit") -> dict[str, Any]:
        path = str(write_input(stack.folder, sc[name]))
        s = sc[name]
        done = stack.cli(command, s.provider, path, "--org", s.org, "--wait", "--json", *extra)
        assert done.returncode in (0, 1), done.stderr
        info: dict[str, Any] = json.loads(done.stdout)
        return info

    # A retry round by beat (--auto-retry), every try failing, then one by hand that succeeds.
    stack.sim.client.config(error_rate=1.0)
    path = write_input(stack.folder, sc["retry"])
    retried = stack.cli("submit", "applivery-apple", str(path), "--org", sc["retry"].org,
                        "--auto-retry", "1", "--rate", "200").stdout.strip()  # fmt: skip
    wait_for(lambda: (i := job(retried))["round"] == 1 and i["status"] == "completed"
             and i["next_retry_at"] is None, 60, "beat's retry round", every=0.3)  # fmt: skip
    stack.sim.client.config(error_rate=0.0)

    def by_api() -> str:
        created = http.post("/v1/jobs", params={"provider": "applivery-android",
                            "org": sc["api"].org, "rate": 200, "notify": stack.hooks.url},
                            content=sc["api"].csv_text().encode(), headers=CSV)  # fmt: skip
        job_id = str(record_answer(stack, created).json()["job_id"])
        with http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=90) as events:
            lines = [line for line in events.iter_lines() if not line.startswith(": ")]
        stack.record("api", f"GET /v1/jobs/{job_id}/events (body)", "\n".join(lines).encode())
        assert "event: end" in lines
        return job_id

    dead = f"http://127.0.0.1:{free_port()}/gone"
    infos = parallel(
        lambda: stack.cli_json("retry", retried, "--json"),
        lambda: submit("apple", "--rate", "200", "--notify", stack.hooks.url),
        lambda: submit("android", "--rate", "200", "--verify", "--notify", dead),
        lambda: submit("enos", "--rate", "200"),
        lambda: submit("windows", "--rate", "200", command="poll"),
        lambda: submit("refused", "--notify", stack.hooks.url),
        lambda: stack.cli_json("cleanup", "run", "stale-enos", "--wait", "--json"),
        by_api,
    )
    ids = [str(i["job_id"]) if isinstance(i, dict) else i for i in infos]
    final = wait_for(lambda: (i := job(retried))["status"] == "completed" and i, 60, "the retry")
    assert final["round"] == 2 and final["counts"]["failed"] == 0, final
    assert infos[5]["status"] == "paused" and infos[5]["reason"] == "unauthorized", infos[5]
    assert all(i["status"] == "completed" for i in infos[1:5] + infos[6:7]), infos
    assert infos[2]["verify"] and infos[6]["name"] == "cleanup:stale-enos"
    policy_run = http.post("/v1/policies/stale-enos/run", params={"dry_run": True})
    ids.append(str(record_answer(stack, policy_run).json()["job_id"]))

    def webhooks_done() -> bool:
        entries = record_answer(stack, http.get("/v1/audit", params={"limit": 1000})).json()
        gave_up = any(e["params"].get("gave_up") for e in entries["entries"])
        return gave_up and {"completed", "paused"} <= set(stack.hooks.events())

    wait_for(webhooks_done, 60, "webhooks delivered, and the dead one given up", every=0.5)
    return ids


def read_everything(stack: Stack, api: ApiProcess, keys: dict[str, str], ids: list[str]) -> None:
    """Every report, list and status through the CLI and the API, every API route's answer."""
    run_cli: list[Callable[[], Any]] = []
    for job_id in ids:
        run_cli += [lambda j=job_id: stack.cli("status", j, "--json"),
                    lambda j=job_id: stack.cli("report", j, "--format", "csv"),
                    lambda j=job_id: stack.cli("report", j, "--format", "jsonl")]  # fmt: skip
    for args in (["jobs", "--json"], ["audit", "--json"], ["keys", "list", "--json"]):
        run_cli.append(lambda a=args: stack.cli(*a))
    run_cli.append(lambda: stack.cli("cleanup", "check"))
    for i in range(0, len(run_cli), 4):
        parallel(*run_cli[i : i + 4])
    for role, key in keys.items():
        with httpx.Client(base_url=api.url, timeout=60,
                          headers={"Authorization": f"Bearer {key}"}) as http:  # fmt: skip
            paths = ["/v1/jobs?limit=100", "/v1/tenants", "/v1/policies", "/v1/audit?limit=1000",
                     f"/v1/jobs/{PROBE}-{stack.secrets['webhook_secret']}"]  # fmt: skip
            for job_id in ids if role == "viewer" else ids[:1]:
                paths += [f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/report?format=csv",
                          f"/v1/jobs/{job_id}/report?format=jsonl", f"/v1/jobs/{job_id}/targets",
                          f"/v1/jobs/{job_id}/events"]  # fmt: skip
            for path in paths:
                record_answer(stack, http.get(path))
            assert record_answer(stack, http.post(f"/v1/jobs/{ids[1]}/resume")).status_code in (
                403, 409)  # fmt: skip
            broken = http.post("/v1/jobs", params={"provider": "enos", "org": "o1"},
                               content=b"asset_id\n\xff\n", headers=CSV)  # fmt: skip
            assert record_answer(stack, broken).status_code in (403, 422)
    with httpx.Client(base_url=api.url, timeout=60) as http:
        for path in ("/metrics", "/openapi.json", "/healthz", "/readyz", "/", "/v1/jobs"):
            record_answer(stack, http.get(path))
        wrong = {"Authorization": "Bearer cmk_" + "0" * 16 + "_" + "x" * 43}
        assert record_answer(stack, http.get("/v1/jobs", headers=wrong)).status_code == 401
        login = record_answer(stack, http.post("/session", json={"key": keys["viewer"]}))
        stack.secrets["dashboard_session"] = login.cookies["cm_session"]
        record_answer(stack, http.get("/session"))
        record_answer(stack, http.get(f"/v1/jobs/{ids[0]}"))
        record_answer(stack, http.delete("/session"))


def force_cli_errors(stack: Stack, ids: list[str]) -> None:
    """Redis unreachable or refusing, with the password in the URL in each form redis-py reads;
    bad input files; unknown jobs."""
    url = stack.env["COUNTERMAND_REDIS_URL"]
    port = urlsplit(url).port
    quoted = quote(stack.secrets["redis_password"], safe="")
    wrong = quote(stack.secrets["redis_wrong_password"], safe="")
    dead = free_port()
    urls = [
        f"redis://:{quoted}@127.0.0.1:{dead}/0",  # nothing listens there
        f"redis://default:{quoted}@127.0.0.1:{dead}/0",
        f"redis://127.0.0.1:{dead}/0?password={quoted}",
        f"redis://:{wrong}@127.0.0.1:{port}/0",  # a wrong password
        f"redis://127.0.0.1:{port}/0",  # none
    ]
    (stack.folder / "bad.csv").write_bytes(b"target_id,command_id\nSER1,\xff\xfe\n")
    (stack.folder / "headless.csv").write_text("serial,command\nSER1,x\n")
    calls: list[Callable[[], tuple[int, Any]]] = []
    for u in urls:
        redis_env = {**stack.env, "COUNTERMAND_REDIS_URL": u}
        calls.append(lambda e=redis_env: (3, stack.cli("status", ids[0], env=e)))
    for name in ("bad.csv", "headless.csv"):
        args = ["submit", "applivery-apple", str(stack.folder / name), "--org", "acme"]
        calls.append(lambda a=args: (2, stack.cli(*a)))
    calls.append(lambda: (2, stack.cli("status", "0123456789abcdef")))
    calls.append(lambda: (2, stack.cli("retry", "not-a-job")))
    for i in range(0, len(calls), 4):
        for code, done in parallel(*calls[i : i + 4]):
            assert done.returncode == code, done.stderr
            assert "error:" in done.stderr


def lose_redis(stack: Stack) -> None:
    """``submit --wait`` following a job when its Redis goes away: "lost Redis at ..."."""
    args = ["submit", "applivery-apple", "-", "--org", "acme", "--wait"]
    out, err = stack.folder / "lost.out", stack.folder / "lost.err"
    with (
        contextlib.ExitStack() as on_exit,
        out.open("w") as stdout,
        err.open("w") as stderr,
        contextlib.ExitStack() as redis_server,
    ):
        url = redis_server.enter_context(private_redis(password=stack.secrets["redis_password"]))
        # --wait rides out an outage of up to REDIS_GRACE seconds, then gives up: keep it short
        env = {**stack.env, "COUNTERMAND_REDIS_URL": url, "COUNTERMAND_REDIS_GRACE": "1"}
        cmd = [*PYTHON, *args]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=stdout, stderr=stderr, env=env)
        on_exit.callback(lambda: proc.poll() is None and proc.kill())
        assert proc.stdin is not None
        proc.stdin.write(f"target_id,command_id\nSER1,{hex24()}\n".encode())
        proc.stdin.close()
        wait_for(lambda: out.read_text().strip(), 60, "the job id (no worker: it stays queued)")
        redis_server.close()  # Redis goes away while the CLI follows the job
        proc.wait(timeout=60)
    stack.record("cli", " ".join([*args, "(Redis lost) (stdout)"]), out.read_bytes())
    stack.record("cli", " ".join([*args, "(Redis lost) (stderr)"]), err.read_bytes())
    message = err.read_text()
    assert proc.returncode == 3 and "Redis at redis://:***@127.0.0.1:" in message, message


def test_the_search_finds_a_secret_in_every_encoding() -> None:
    """The search itself, on planted samples: each encoding is found, a clean text is not, and
    a broker message's body is decoded from a value and from a MONITOR line."""
    secret = "rdsPw-a/b+c%d-0123456789"
    samples = {
        "raw": f"a log line: {secret}.",
        "url-quoted": f"redis://:{quote(secret, safe='')}@h:1/0",
        "form-quoted": f"?password={quote_plus(secret)}",
        "base64url+1": base64.urlsafe_b64encode(b"q" + secret.encode()).decode(),
    }
    for shift in range(3):
        text = ("x" * shift + secret + "yz").encode()
        samples[f"base64+{shift}"] = base64.b64encode(text).decode()
    for encoding, text in samples.items():
        hits = search([Item("log", encoding, text.encode())], {"s": secret})
        assert encoding in {h.encoding for h in hits}, (encoding, text)
    almost = samples["raw"].replace("0", "1").encode()  # one character off
    assert search([Item("log", "almost", almost)], {"s": secret}) == []
    body = json.dumps(["args", secret]).encode()
    message = {"body": base64.b64encode(body).decode(), "properties": {"body_encoding": "base64"}}
    assert list(message_bodies([message, "exchange", "routing-key"])) == [body]
    line = f'+1.0 [0 127.0.0.1:1] "LPUSH" "q" {json.dumps(json.dumps(message))}'  # as MONITOR
    assert [i.data for i in monitor_messages(line.encode())] == [body]


def test_no_secret_anywhere(stack: Stack) -> None:
    env = stack.env
    plant_probes(stack)
    made = parallel(
        lambda: stack.cli("keys", "add", "sec-op", "--role", "operator"),
        lambda: stack.cli("keys", "add", "sec-view", "--role", "viewer"),
    )
    keys = {"operator": made[0].stdout.split()[-1], "viewer": made[1].stdout.split()[-1]}
    for name, key in keys.items():
        stack.secrets[f"api_{name}_key"] = key
        stack.secrets[f"api_{name}_key_secret"] = key.split("_", 2)[2]
    json_logs = {**env, "COUNTERMAND_LOG_FORMAT": "json"}  # both renderers: beat, API
    worker, beat, api = parallel(lambda: WorkerProcess(stack.folder, env),
                                 lambda: BeatProcess(stack.folder, json_logs, "secrets"),
                                 lambda: ApiProcess(stack.folder, json_logs))  # fmt: skip
    try:
        ids = run_every_kind(stack, api, keys)
        read_everything(stack, api, keys, ids)
        force_cli_errors(stack, ids)
        lose_redis(stack)
    finally:
        for process in (api, beat, worker):
            process.stop()
    stream = stack.monitor.stop()
    for headers, body in stack.hooks.received:
        signed = hmac.new(stack.secrets["webhook_secret"].encode(), body, hashlib.sha256)
        assert headers["X-Countermand-Signature"] == f"sha256={signed.hexdigest()}"
        stack.record("webhook", headers["X-Countermand-Event"], repr(headers).encode() + body)
    logs = [worker.log_path, beat.log_path, api.log_path, stack.folder / "redis.log"]
    for log in logs[:3]:
        assert DEBUG.search(log.read_bytes()), f"{log} is not at DEBUG"
    assert any(DEBUG.search(i.data) for i in stack.items if i.source == "cli"), "CLI not at DEBUG"
    items = [Item("log", str(log.name), log.read_bytes()) for log in logs]
    items += [Item("redis MONITOR", "the whole stream", stream), *monitor_messages(stream)]
    messages = [i.where for i in items if i.source == "broker message" and PROBE not in i.where]
    for write in ('"LPUSH" "countermand.chunks"', '"HSET" "unacked"'):  # queued, in flight
        assert any(write in m for m in messages), f"no message in MONITOR by {write}"
    tasks = set(MONITOR_TASK.findall(stream))
    assert {b"countermand.verify.v1", b"countermand.retry_sweep.v1"} <= tasks, tasks
    items += dump_redis(env["COUNTERMAND_REDIS_URL"]) + stack.items
    stack.secrets["redis_url"] = env["COUNTERMAND_REDIS_URL"].rsplit("/", 1)[0]
    hits = search(items, stack.secrets)
    planted = {h.source for h in hits if h.planted}
    assert planted == {"redis MONITOR", "redis dump", "broker message", "cli", "api"}
    leaks = sorted({h.describe() for h in hits if not h.planted and not h.at_home})
    assert not leaks, "\n".join(leaks)
