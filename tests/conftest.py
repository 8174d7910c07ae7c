"""Shared fixtures: a private Redis server for the session (never the user's data), settings
with short leases and retries, and helpers to run coroutines."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from countermand.localredis import private_redis
from countermand.settings import Settings

T = TypeVar("T")

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
}


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


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return fast_settings(redis_url)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
