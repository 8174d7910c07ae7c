"""Prometheus metrics: what the call path counts in the workers, and the gauges the HTTP API
reads from Redis at scrape time (Prometheus' naming guide: the ``countermand_`` prefix, base
units, ``_total`` counters, labels of small cardinality: never a job, device or org).

Worker side, counted in one place, ``countermand.calls`` (every vendor request goes through
it): ``countermand_requests_total{vendor, kind, outcome, status_class}``,
``countermand_request_duration_seconds{vendor, kind}`` (histogram),
``countermand_retries_total{vendor, kind}`` (tries after the first),
``countermand_throttled_total{vendor}`` (429s, HTTP or envelope),
``countermand_limiter_wait_seconds_total{vendor}`` and
``countermand_limiter_missed_slots_total{vendor}`` (slots dropped because the process came to
them, or woke for them, too late: its event loop was busy or stalled; rate lost, never sent
late, ``countermand.limiter``). ``kind``: ``cancel``, ``read`` or ``list``
(pages, searches, device lists). ``outcome``: the result's outcome for a ``CallResult``, ``ok``
for any other answer (a page), else ``transient``, ``throttled``, ``unreachable``, ``stop`` (a
``JobStop``), ``stopped`` or ``error`` (anything else). ``status_class``: ``2xx``-``5xx``, ``none``.

Celery's prefork pool runs the calls in several processes: ``countermand worker --metrics-port``
(``serve_worker_metrics``) gives them one ``PROMETHEUS_MULTIPROC_DIR`` before the pool forks and
serves the sum of their files. Elsewhere (tests, the CLI) the metrics live in the default
registry of the process. API side: ``api_metrics(store)`` renders a fresh registry per scrape.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from time import perf_counter

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from countermand.errors import JobStop, Stopped, TransientError, UnreachableError
from countermand.models import JobStatus
from countermand.providers.base import CallResult
from countermand.store.stats import JobTally, StatsStore, TenantGauge

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The text exposition format generate_latest writes (every Prometheus version reads 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The Celery queue of the chunks (tasks.messages.Queue.CHUNKS: the layers keep ``tasks`` out of
# this module; tests/test_metrics.py holds the two equal).
BROKER_QUEUE = "countermand.chunks"
PUBLISH_EVERY_S = 1.0
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter(
    "countermand_requests_total",
    "Requests sent to vendor APIs through the call path, by what they answered.",
    ["vendor", "kind", "outcome", "status_class"],
)
DURATION = Histogram(
    "countermand_request_duration_seconds",
    "Time from sending a vendor request to its answer (or error).",
    ["vendor", "kind"],
    buckets=BUCKETS,
)
RETRIES = Counter(
    "countermand_retries_total",
    "Vendor requests that were a retry (every try after the first of a call).",
    ["vendor", "kind"],
)
THROTTLED = Counter(
    "countermand_throttled_total", "Vendor answers that were a 429 (throttled).", ["vendor"]
)
LIMITER_WAIT = Counter(
    "countermand_limiter_wait_seconds_total",
    "Time requests spent waiting for a slot of the rate limiter.",
    ["vendor"],
)
MISSED_SLOTS = Counter(
    "countermand_limiter_missed_slots_total",
    "Limiter slots dropped because the process came to them, or woke for them, too late "
    "(a busy or stalled event loop): rate lost, never sent late.",
    ["vendor"],
)

_STATUS_CLASSES = ("none", "none", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int | None) -> str:
    if status is None or not 200 <= status < 600:
        return "none"
    return _STATUS_CLASSES[status // 100]


def error_labels(exc: BaseException) -> tuple[str, str]:
    """(outcome, status_class) of a request that raised."""
    if isinstance(exc, UnreachableError):
        return "unreachable", "none"
    if isinstance(exc, TransientError):
        return ("throttled" if exc.throttled else "transient"), status_class(exc.http_status)
    if isinstance(exc, JobStop):
        return "stop", status_class(exc.http_status)
    if isinstance(exc, Stopped):
        return "stopped", "none"
    result = getattr(exc, "result", None)  # a page that answered a per-target verdict
    if isinstance(result, CallResult):  # (providers.applivery.ListError)
        return result.outcome.value, status_class(result.http_status)
    return "error", "none"


class VendorMeter:
    """The counts of one vendor's requests in this process. Counters are added up here and
    published (``inc(n)``) by the first answer ``PUBLISH_EVERY_S`` after the last publish, by
    every error (a 429 or a 5xx is followed by a wait: its count must not wait with it) and at
    the end of each piece of work (``Caller.flush``): in a worker every ``inc`` writes a
    memory-mapped file under a lock (~1.3 µs); a dictionary increment costs a tenth of that.
    The histogram is observed per request (there is no bulk observe), its children made once."""

    __slots__ = (
        "_durations", "_missed", "_published", "_requests", "_retries", "_throttled", "_wait",
        "vendor",
    )  # fmt: skip

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        self._requests: dict[tuple[str, str, str], int] = {}  # counts not yet published
        self._retries: dict[str, int] = {}
        self._throttled = 0
        self._wait = 0.0
        self._missed = 0
        self._durations: dict[str, Histogram] = {}
        self._published = perf_counter()
        THROTTLED.labels(vendor)  # present (at 0) before the first 429
        LIMITER_WAIT.labels(vendor)
        MISSED_SLOTS.labels(vendor)

    def waited(self, seconds: float, missed: int = 0) -> None:
        """A request waited ``seconds`` for its slot, after dropping ``missed`` slots."""
        self._wait += seconds
        self._missed += missed

    def sent(self, kind: str, outcome: str, status: str, seconds: float, retry: bool) -> None:
        """One request was answered (or failed) after ``seconds``."""
        key = (kind, outcome, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        if retry:
            self._retries[kind] = self._retries.get(kind, 0) + 1
        duration = self._durations.get(kind)
        if duration is None:
            duration = self._durations[kind] = DURATION.labels(self.vendor, kind)
        duration.observe(seconds)
        if perf_counter() - self._published >= PUBLISH_EVERY_S:
            self.publish()

    def answered(self, kind: str, answer: object, seconds: float, retry: bool) -> None:
        if isinstance(answer, CallResult):
            self.sent(kind, answer.outcome.value, status_class(answer.http_status), seconds, retry)
        else:  # providers return other answers (pages) only from a 2xx in the envelope
            self.sent(kind, "ok", "2xx", seconds, retry)

    def failed(self, kind: str, exc: BaseException, seconds: float, retry: bool) -> None:
        outcome, status = error_labels(exc)
        if outcome == "throttled":
            self._throttled += 1
        self.sent(kind, outcome, status, seconds, retry)
        self.publish()

    def publish(self) -> None:
        """Add the counts kept since the last publish to the counters."""
        self._published = perf_counter()
        requests, self._requests = self._requests, {}
        retries, self._retries = self._retries, {}
        for (kind, outcome, status), n in requests.items():
            REQUESTS.labels(self.vendor, kind, outcome, status).inc(n)
        for kind, n in retries.items():
            RETRIES.labels(self.vendor, kind).inc(n)
        if self._throttled:
            THROTTLED.labels(self.vendor).inc(self._throttled)
            self._throttled = 0
        if self._wait:
            LIMITER_WAIT.labels(self.vendor).inc(self._wait)
            self._wait = 0.0
        if self._missed:
            MISSED_SLOTS.labels(self.vendor).inc(self._missed)
            self._missed = 0


_meters: dict[str, VendorMeter] = {}


def meter(vendor: str) -> VendorMeter:
    """The process's meter of ``vendor``."""
    found = _meters.get(vendor)
    if found is None:
        found = _meters[vendor] = VendorMeter(vendor)
    return found


def publish() -> None:
    """Publish every meter's counts now (a test's check, a process's end)."""
    for one in _meters.values():
        one.publish()


# --- the worker's exporter ------------------------------------------------------------------


def use_multiprocess_dir() -> str:
    """Give this process and the pool it will fork one metrics directory: the one in
    ``PROMETHEUS_MULTIPROC_DIR``, else a private one removed when this process exits."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        path = tempfile.mkdtemp(prefix="countermand-metrics-")
        atexit.register(_remove_dir, path, os.getpid())
        os.environ[MULTIPROC_ENV] = path
    os.makedirs(path, exist_ok=True)
    # prometheus_client picks its value class when it is imported: pick it again, now that the
    # directory is set. Every metric here has labels, so no value was made before this point.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path


def _remove_dir(path: str, owner: int) -> None:
    if os.getpid() == owner:  # not in a forked pool process that inherited the handler
        shutil.rmtree(path, ignore_errors=True)


def serve_worker_metrics(port: int, addr: str = "0.0.0.0") -> str:
    """In the worker's main process, before the pool forks: the shared directory, and
    ``/metrics`` on ``port`` summing every pool process's files. Returns the directory."""
    path = use_multiprocess_dir()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    start_http_server(port, addr=addr, registry=registry)
    return path


def process_exited() -> None:
    """A pool process ends: publish its last counts, drop its live gauge files (its counters
    stay in the sum)."""
    publish()
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        with contextlib.suppress(OSError):
            mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]


# --- the API's gauges, read from Redis at scrape time ---------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    jobs: JobTally
    broker_messages: int
    tenants: list[TenantGauge]


class SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        jobs = self.snapshot.jobs
        by_status = GaugeMetricFamily(
            "countermand_jobs", "Jobs known (newest first, bounded), by status.", labels=["status"]
        )
        for status in JobStatus:
            by_status.add_metric([status.value], jobs.statuses.get(status, 0))
        yield by_status
        yield GaugeMetricFamily(
            "countermand_targets_remaining",
            "Targets not yet final in queued, running and paused jobs.",
            value=jobs.remaining,
        )
        yield GaugeMetricFamily(
            "countermand_broker_messages",
            "Task messages waiting in the Celery queue (every priority; chunks never are).",
            value=self.snapshot.broker_messages,
        )
        yield from self._tenants()

    def _tenants(self) -> Iterator[Metric]:
        limit = GaugeMetricFamily(
            "countermand_tenant_limit",
            "Requests/s limit of a tenant, as the workers last applied it.",
            labels=["tenant"],
        )
        rate = GaugeMetricFamily(
            "countermand_tenant_effective_rate",
            "Requests/s a tenant is paced at now (lower after 429s).",
            labels=["tenant"],
        )
        hold = GaugeMetricFamily(
            "countermand_tenant_hold_seconds",
            "Seconds until a tenant's 429 hold ends (0: none).",
            labels=["tenant"],
        )
        for tenant in self.snapshot.tenants:
            if tenant.limit is not None:
                limit.add_metric([tenant.tenant], tenant.limit)
            if tenant.effective_rate is not None:
                rate.add_metric([tenant.tenant], tenant.effective_rate)
            hold.add_metric([tenant.tenant], tenant.hold_s)
        yield from (limit, rate, hold)


async def snapshot(store: StatsStore) -> Snapshot:
    return Snapshot(
        jobs=await store.job_tally(),
        broker_messages=await store.queue_length(BROKER_QUEUE),
        tenants=await store.tenant_gauges(),
    )


async def api_metrics(store: StatsStore) -> tuple[bytes, str]:
    """The body and content type of the HTTP API's ``GET /metrics``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(await snapshot(store)))
    return generate_latest(registry), CONTENT_TYPE
