"""Shared fixtures: a private Redis server for the session (never the user's data), settings
with short leases and retries, and helpers to run coroutines."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from hypothesis import HealthCheck, settings

from countermand.localredis import private_redis
from countermand.settings import Settings
from tests.harness import SimulatorProcess, WorkerProcess

T = TypeVar("T")

# Hypothesis: "ci" by default (tests/test_fuzz_inputs.py runs 2,550 examples in process, the
# CLI fuzz 20 subprocesses), "nightly" (HYPOTHESIS_PROFILE=nightly) ten times as many.
FUZZ_EXAMPLES = 150
settings.register_profile(
    "ci",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("nightly", settings.get_profile("ci"), max_examples=10 * FUZZ_EXAMPLES)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
NIGHTLY = os.environ.get("HYPOTHESIS_PROFILE") == "nightly"

# Shortened for speed; the shipped defaults are in the README ("Configuration").
FAST = {
    "LEASE_TTL": "2",
    "RECLAIM_INTERVAL": "0.5",
    "RETRY_ATTEMPTS": "3",
    "RETRY_INITIAL_WAIT": "0.02",
    "RETRY_MAX_WAIT": "0.1",
    "RETRY_TOTAL_DELAY": "5",
    "HTTP_TIMEOUT": "3",
    "CONNECT_TIMEOUT": "1",
    "CHUNK_SIZE": "50",
    "BATCH_SIZE": "20",
    "RETRY_SWEEP_INTERVAL": "0.5",
    "RETRY_ROUND_DELAY": "0.3",
    "VERIFY_DELAY": "0.3",
    "WEBHOOK_MAX_TRIES": "3",
}
WEBHOOK_SECRET = "test-webhook-secret-7f3a"


@pytest.fixture(scope="session", autouse=True)
def _isolated_env() -> Iterator[None]:
    """Keep the developer's own COUNTERMAND_* variables and .env out of the tests."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("COUNTERMAND_")}
    for key in saved:
        del os.environ[key]
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with private_redis() as url:
        yield url


def fast_settings(redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {k.lower(): v for k, v in FAST.items()}
    values.update(redis_url=redis_url, _env_file=None)
    values.update(overrides)
    return Settings(**values)


# In-process tests work on their own database: the session's worker (database 0) claims every
# ready chunk of its database, and must never run a unit test's job.
UNIT_DB = 15


def unit_db(redis_url: str) -> str:
    return redis_url.rsplit("/", 1)[0] + f"/{UNIT_DB}"


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """Settings over a database emptied for this test (its drains claim only its own jobs)."""
    url = unit_db(redis_url)
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
    return fast_settings(url)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def until(check: Callable[[], object], deadline: float, every: float = 0.01) -> None:
    """Wait, inside a test's event loop, until ``check()`` is true; fail after ``deadline``."""
    for _ in range(max(1, int(deadline / every))):
        if check():
            return
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {deadline}s")


def e2e_env(redis_url: str, sim_url: str, credentials_file: Path, db: int = 0) -> dict[str, str]:
    """Environment of the CLI and worker processes of an end-to-end test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERMAND_")}
    env.update({f"COUNTERMAND_{k}": v for k, v in FAST.items()})
    env.update(
        COUNTERMAND_REDIS_URL=redis_url.rsplit("/", 1)[0] + f"/{db}",
        COUNTERMAND_APPLIVERY_URL=sim_url,
        COUNTERMAND_APPLIVERY_TOKEN="sim-applivery-token",
        COUNTERMAND_ENOS_URL=sim_url,
        COUNTERMAND_ENOS_ACCESS_KEY="sim-access-key",
        COUNTERMAND_ENOS_SECRET_KEY="sim-secret-key",
        COUNTERMAND_CREDENTIALS_FILE=str(credentials_file),
        COUNTERMAND_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    return env


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def sim(e2e_dir: Path) -> Iterator[SimulatorProcess]:
    process = SimulatorProcess(e2e_dir)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def credentials_file(e2e_dir: Path) -> Path:
    path = e2e_dir / "credentials.toml"
    path.write_text("# per-org credentials; tests add tables here\n")
    return path


@pytest.fixture(scope="session")
def env(redis_url: str, sim: SimulatorProcess, credentials_file: Path) -> dict[str, str]:
    return e2e_env(redis_url, sim.url, credentials_file)


@pytest.fixture(scope="session")
def worker(e2e_dir: Path, env: dict[str, str]) -> Iterator[WorkerProcess]:
    """One worker (two pool processes) serving database 0 for the whole session."""
    process = WorkerProcess(e2e_dir, env)
    yield process
    process.stop()


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    """Worker processes a test starts for itself (on its own database); stopped after it."""
    started: list[WorkerProcess] = []
    yield started
    for process in started:
        process.stop()
