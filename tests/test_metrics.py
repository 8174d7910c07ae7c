"""Metrics: the call path counts every request it sends (labels, retries, 429s, limiter waits),
the providers name each request's kind, the API's gauges read Redis, and a real worker's
``/metrics`` (prefork pool, multiprocess files) counts exactly what the simulator received.
Both expositions pass ``promtool check metrics``."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from countermand import metrics
from countermand.calls import Caller
from countermand.errors import TransientError, Unauthorized, UnreachableError, UsageError
from countermand.localredis import free_port
from countermand.models import JobStatus, Outcome
from countermand.providers import get_spec
from countermand.providers.applivery import ListError
from countermand.providers.base import CallResult
from countermand.store import Store, keys
from countermand.store.jobs import NewJob
from countermand.store.tenants import Adaptation, Ask
from countermand.workercmd import metrics_port
from tasks.messages import Queue
from tests.callpath import caller
from tests.conftest import e2e_env, run
from tests.harness import PYTHON, SimulatorProcess, cli_json, wait_for
from tests.scenarios import apple, enos, hex24
from tests.test_providers import KEYS, TOKEN, Sim, with_sim

ROOT = Path(__file__).resolve().parent.parent
CANCELED = CallResult(Outcome.CANCELED, 200)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def vendor_caller(vendor: str, rate: float = 10_000) -> Caller:
    """The real call path over the in-memory limiter stub, with its own vendor label."""
    path, _ = caller(rate=rate)
    return Caller(path.pacer, path.policy, path.nap, path.stopped, vendor=vendor)


def promtool_problems(body: bytes) -> str:
    """What ``promtool check metrics`` says of an exposition ('' when it is clean)."""
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: tests/run.sh installs it (Debian: the prometheus package)"
    done = subprocess.run([tool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    said = (done.stdout + done.stderr).decode().strip()
    return said if said or done.returncode == 0 else f"exit {done.returncode}"


# --- the call path --------------------------------------------------------------------------


def test_a_request_is_counted_with_its_vendor_kind_outcome_and_status_class() -> None:
    async def main() -> None:
        path, _ = caller()  # vendor from the pacer's tenant: "test"
        before = sample("countermand_requests_total", vendor="test", kind="cancel",
                        outcome="canceled", status_class="2xx")  # fmt: skip
        timed = sample("countermand_request_duration_seconds_count", vendor="test", kind="cancel")

        async def send() -> CallResult:
            return CANCELED

        assert await path.target()(send) is CANCELED
        await path.flush()
        after = sample("countermand_requests_total", vendor="test", kind="cancel",
                       outcome="canceled", status_class="2xx")  # fmt: skip
        assert after - before == 1
        assert sample("countermand_request_duration_seconds_count", vendor="test",
                      kind="cancel") - timed == 1  # fmt: skip

    run(main())


def test_a_page_is_ok_and_a_retry_and_a_429_are_counted() -> None:
    async def main() -> None:
        path = vendor_caller("unit-retry")
        answers: list[Exception] = [
            TransientError("503", http_status=503),
            TransientError("429", http_status=429, throttled=True, retry_after=0.01),
        ]

        async def send() -> list[str]:
            if answers:
                raise answers.pop(0)
            return ["a page"]

        assert await path.target()(send, kind="list") == ["a page"]
        await path.flush()
        counted = {
            (s.labels["outcome"], s.labels["status_class"]): s.value
            for family in REGISTRY.collect() if family.name == "countermand_requests"
            for s in family.samples
            if s.labels.get("vendor") == "unit-retry" and s.name.endswith("_total")
        }  # fmt: skip
        assert counted == {("transient", "5xx"): 1, ("throttled", "4xx"): 1, ("ok", "2xx"): 1}
        assert sample("countermand_retries_total", vendor="unit-retry", kind="list") == 2
        assert sample("countermand_throttled_total", vendor="unit-retry") == 1

    run(main())


@pytest.mark.parametrize(
    ("error", "labels"),
    [
        (UnreachableError("refused"), ("unreachable", "none")),
        (TransientError("timed out"), ("transient", "none")),
        (TransientError("429 in the envelope", http_status=200, throttled=True),
         ("throttled", "2xx")),
        (Unauthorized("bad token", http_status=401), ("stop", "4xx")),
        (ListError(CallResult(Outcome.NOT_FOUND, 404, "3001")), ("not_found", "4xx")),
        (UsageError("a provider's own refusal"), ("error", "none")),
    ],
)  # fmt: skip
def test_errors_are_labelled_by_what_they_mean(error: Exception, labels: tuple[str, str]) -> None:
    assert metrics.error_labels(error) == labels


def test_errors_are_published_at_once_answers_by_the_end_of_the_work() -> None:
    async def main() -> None:
        path = vendor_caller("unit-publish")
        fails = [TransientError("503", http_status=503)]

        async def send() -> CallResult:
            if fails:
                raise fails.pop()
            return CANCELED

        await path.target()(send)
        labels = {"vendor": "unit-publish", "kind": "cancel"}
        assert sample("countermand_requests_total", **labels, outcome="transient",
                      status_class="5xx") == 1  # fmt: skip
        assert sample("countermand_requests_total", **labels, outcome="canceled",
                      status_class="2xx") == 0  # fmt: skip
        await path.flush()
        assert sample("countermand_requests_total", **labels, outcome="canceled",
                      status_class="2xx") == 1  # fmt: skip

    run(main())


def test_time_waiting_for_the_limiter_is_counted() -> None:
    async def main() -> None:
        path = vendor_caller("unit-wait", rate=20)  # one slot every 50 ms

        async def send() -> CallResult:
            return CANCELED

        for _ in range(3):
            await path.target()(send)
        await path.flush()
        assert sample("countermand_limiter_wait_seconds_total", vendor="unit-wait") >= 0.09

    run(main())


def test_slots_missed_by_a_stalled_loop_are_counted() -> None:
    """Callers woken 30 ms late (the loop stalls, as in a long garbage collection) drop their
    slots: the counter shows every slot the pacer dropped, for the vendor."""

    async def main() -> None:
        path = vendor_caller("unit-missed", rate=200)

        async def late_nap(seconds: float) -> None:
            await asyncio.sleep(seconds)
            time.sleep(0.03)  # noqa: ASYNC251 - the loop stalls: every sleeper wakes late

        stalled = Caller(path.pacer, path.policy, late_nap, path.stopped, vendor="unit-missed")

        async def send() -> CallResult:
            return CANCELED

        async def lane() -> None:
            for _ in range(3):
                await stalled.target()(send)

        await asyncio.gather(*[lane() for _ in range(5)])
        await stalled.flush()
        assert path.pacer.missed > 0
        assert sample("countermand_limiter_missed_slots_total", vendor="unit-missed") == (
            path.pacer.missed
        )

    run(main())


# --- the providers name each request's kind -------------------------------------------------


def kinds(vendor: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for family in REGISTRY.collect():
        for s in family.samples:
            if s.name == "countermand_requests_total" and s.labels["vendor"] == vendor:
                found[s.labels["kind"]] += int(s.value)
    return found


def test_a_windows_read_is_a_read_and_its_action_pages_are_lists() -> None:
    async def body(sim: Sim) -> None:
        device, command = hex24(), hex24()
        action = {"cmd_id": "c1", "status": "Pending"}
        batch = {"org": "acme-corp", "device_id": device, "command_id": command}
        sim.seed("applivery-windows", [{**batch, "actions": [action]}])
        made = get_spec("applivery-windows").make(sim.context("acme-corp", TOKEN))
        path = vendor_caller("unit-windows")
        call = path.target()
        result = await made.read({"device_id": device, "command_id": command}, call)
        await path.flush()
        assert result.outcome is Outcome.PENDING
        assert kinds("unit-windows") == Counter(read=1, list=1) and call.made == 2

    with_sim(body)


def test_an_enos_device_wide_cancel_is_a_search_then_cancels() -> None:
    async def body(sim: Sim) -> None:
        sc = enos("o1")
        sim.seed("enos", sc.records)
        made = get_spec("enos").make(sim.context("o1", KEYS))
        path = vendor_caller("unit-enos")
        result = await made.cancel({"asset_id": sc.rows[4][0]}, path.target())
        await path.flush()
        assert result.outcome is Outcome.CANCELED
        assert kinds("unit-enos") == Counter(list=1, cancel=2)  # the token is no vendor call

    with_sim(body)


# --- the worker's side ----------------------------------------------------------------------


def test_metrics_port_is_taken_out_of_celerys_arguments() -> None:
    assert metrics_port(["-n", "w@h", "--metrics-port", "9100"]) == (9100, ["-n", "w@h"])
    assert metrics_port(["--metrics-port=9101", "-c", "2"]) == (9101, ["-c", "2"])
    assert metrics_port(["-c", "2"]) == (None, ["-c", "2"])
    for bad in (["--metrics-port"], ["--metrics-port", "http"], ["--metrics-port=70000"]):
        with pytest.raises(UsageError, match="--metrics-port"):
            metrics_port(bad)


@pytest.mark.parametrize("given", [False, True], ids=["private", "from the environment"])
def test_the_multiprocess_directory_holds_the_counters(given: bool, tmp_path: Path) -> None:
    """A private directory goes when the process exits; one given in the environment stays."""
    script = (
        "from countermand import metrics\n"  # imports prometheus_client before the directory
        "import os\n"
        "path = metrics.use_multiprocess_dir()\n"
        "metrics.meter('sub').sent('cancel', 'canceled', '2xx', 0.01, False)\n"
        "metrics.publish()\n"
        "print(path, sorted(os.listdir(path)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != metrics.MULTIPROC_ENV}
    if given:
        env[metrics.MULTIPROC_ENV] = str(tmp_path / "metrics")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=60, check=True)  # fmt: skip
    path, files = done.stdout.split(" ", 1)
    assert "counter_" in files and "histogram_" in files, files
    assert (path == str(tmp_path / "metrics")) is given
    assert Path(path).exists() is given


# --- the API's gauges -----------------------------------------------------------------------


def test_the_broker_queue_is_the_chunks_queue() -> None:
    assert Queue.CHUNKS.value == metrics.BROKER_QUEUE


def gauges(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


async def seed_api_state(store: Store, org: str) -> None:
    """Two jobs (one queued with 3 targets, one paused with 2), a held tenant and a slowed
    one, and two chunk messages in the broker (priorities 0 and 5)."""
    for job_id, rows, status in (("mq", 3, None), ("mp", 2, JobStatus.PAUSED)):
        new = NewJob(job_id, "applivery-apple", org, 50.0, False, None, 10, ["c"], 3600)
        expire = await store.create_job(new)
        await store.write_chunk(job_id, 0, [["x"]] * rows, [], expire)
        if status is not None:
            await store.transition(job_id, status, [JobStatus.QUEUED])
        tenant = f"{org}-{job_id}"
        ask = Ask(keys.tenant_rate("applivery", tenant), keys.job_rate(job_id), keys.job(job_id),
                  keys.tenant_shares("applivery", tenant), job_id, "normal",
                  40.0, 40.0, 0.0, 1, 2.0, 100_000, 0)  # fmt: skip
        await store.reserve(ask)
        retry_after = 30_000_000 if job_id == "mq" else 0  # a hold, or a rate cut
        await store.throttle(ask.tenant_key, retry_after, 40.0, Adaptation())
    for priority in (0, 5):
        await store.redis.rpush(f"{Queue.CHUNKS.value}\x06\x163" if priority else
                                Queue.CHUNKS.value, "message")  # fmt: skip


def test_api_metrics_reads_jobs_tenants_and_the_broker(redis_url: str) -> None:
    async def main() -> tuple[bytes, str]:
        store = Store.connect(redis_url.rsplit("/", 1)[0] + "/12")
        try:
            await store.redis.flushdb()
            await seed_api_state(store, "metrics-org")
            return await metrics.api_metrics(store)
        finally:
            await store.close()

    body, content_type = run(main())
    assert content_type.startswith("text/plain; version=0.0.4")
    found = gauges(body)
    assert found[("countermand_jobs", (("status", "queued"),))] == 1
    assert found[("countermand_jobs", (("status", "paused"),))] == 1
    assert found[("countermand_jobs", (("status", "completed"),))] == 0
    assert found[("countermand_targets_remaining", ())] == 5
    assert found[("countermand_broker_messages", ())] == 2
    held = (("tenant", "applivery:metrics-org-mq"),)
    slowed = (("tenant", "applivery:metrics-org-mp"),)
    assert found[("countermand_tenant_limit", held)] == 40
    assert 25 < found[("countermand_tenant_hold_seconds", held)] <= 30
    assert found[("countermand_tenant_effective_rate", slowed)] == 20  # THROTTLE_FACTOR 0.5
    assert found[("countermand_tenant_hold_seconds", slowed)] == 0
    assert not [k for k in found if "job:" in str(k)], "a per-job limiter key became a tenant"
    assert promtool_problems(body) == ""


# --- end to end: a real worker's /metrics against the simulator's log -----------------------


class MetricsWorker:
    """``countermand worker --metrics-port`` (its own log, its own database)."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log_path = folder / f"metrics-worker-{self.port}.log"
        self.log = self.log_path.open("wb")
        # Named as docker-compose.yml names its workers (its healthcheck pings that node).
        argv = ["worker", "--concurrency", "2", "-n", "worker@%h", "--metrics-port", str(self.port)]
        self.proc = subprocess.Popen([*PYTHON, *argv], stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env)  # fmt: skip
        wait_for(self._ready, 60, "the metrics worker to be ready")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited: {self.log_path.read_text()[-3000:]}")
        return " ready." in self.log_path.read_text(errors="replace")

    def scrape(self) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            body: bytes = r.read()
            return body

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def compose_worker_check(env: dict[str, str], hostname: str) -> int:
    """docker-compose.yml's worker healthcheck, run as the container's shell would run it."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    check: str = compose["services"]["worker"]["healthcheck"]["test"][1]
    assert "--timeout 10" in check
    command = check.replace("$$", "$").replace("--timeout 10", "--timeout 3")
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(["sh", "-c", command], env={**env, "PATH": path, "HOSTNAME": hostname},
                          capture_output=True, timeout=60)  # fmt: skip
    return done.returncode


ROUTE_KINDS = {"cancel": "cancel", "get": "read", "list": "list", "actions": "list",
               "search": "list", "devices": "list"}  # fmt: skip


def simulator_counts(
    sim: SimulatorProcess, since: int, tenants: set[str]
) -> Counter[tuple[str, str]]:
    """Requests the simulator logged from index ``since`` for these tenants, by (vendor, kind);
    EnOS tokens are no call of the call path."""
    found: Counter[tuple[str, str]] = Counter()
    for record in sim.client.requests(since=since)["requests"]:
        action = record["route"].split(".", 1)[1]
        if record["tenant"] in tenants and action != "token":
            found[(record["tenant"].split(":", 1)[0], ROUTE_KINDS[action])] += 1
    return found


def worker_counts(body: bytes) -> Counter[tuple[str, str, str]]:
    found: Counter[tuple[str, str, str]] = Counter()
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == "countermand_requests_total":
                found[(s.labels["vendor"], s.labels["kind"], s.labels["outcome"])] += int(s.value)
    return found


def by_kind(counts: Counter[tuple[str, str, str]]) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for (vendor, kind, _), n in counts.items():
        found[(vendor, kind)] += n
    return +found  # without the zeros


@pytest.mark.e2e
def test_a_workers_metrics_count_what_the_simulator_received(
    redis_url: str, sim: SimulatorProcess, credentials_file: Path, e2e_dir: Path, tmp_path: Path
) -> None:
    env = e2e_env(redis_url, sim.url, credentials_file, db=13)
    cancels, device_wide = apple(f"org-m{os.getpid()}"), enos(f"om{os.getpid()}")
    for sc in (cancels, device_wide):
        sim.client.add_commands(sc.provider, sc.records)
    since = sim.client.requests(since=10**12)["total"]
    worker = MetricsWorker(e2e_dir, env)
    try:
        infos = []
        for sc, verb in ((cancels, "submit"), (device_wide, "submit"), (cancels, "poll")):
            path = tmp_path / f"{verb}-{sc.provider}.csv"
            path.write_text(sc.csv_text())
            infos.append(cli_json(env, verb, sc.provider, str(path), "--org", sc.org, "--wait",
                                  "--json", "--rate", "200"))  # fmt: skip
        assert [i["status"] for i in infos] == ["completed"] * 3
        tenants = {f"applivery:{cancels.org}", f"enos:{device_wide.org}"}
        expected = simulator_counts(sim, since, tenants)
        assert {kind for _, kind in expected} == {"cancel", "read", "list"}

        seen: list[Counter[tuple[str, str]]] = []

        def counted() -> bytes | None:
            body = worker.scrape()
            seen.append(by_kind(worker_counts(body)))
            return body if seen[-1] == expected else None

        try:
            body = wait_for(counted, 30, "the worker's counts to equal the simulator's")
        except AssertionError:
            assert seen[-1] == expected  # shows the difference
            raise
        outcomes: Counter[str] = Counter()
        for (vendor, kind, outcome), n in worker_counts(body).items():
            if (vendor, kind) == ("applivery", "cancel"):
                outcomes[outcome] += n
        assert +outcomes == Counter(e for e in cancels.expected if e != "invalid")
        assert promtool_problems(body) == ""
        assert compose_worker_check(env, socket.gethostname()) == 0
        assert compose_worker_check(env, "another-host") != 0
    finally:
        worker.stop()


def test_a_taken_metrics_port_is_a_usage_error() -> None:
    env = {**os.environ, "COUNTERMAND_APPLIVERY_TOKEN": "configured"}
    taken = free_port()
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", taken))
        holder.listen()
        done = subprocess.run([*PYTHON, "worker", "--metrics-port", str(taken)],
                              capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 2 and f"--metrics-port {taken}" in done.stderr, done.stderr
