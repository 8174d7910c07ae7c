"""What redis-py, kombu and RedBeat build from the Sentinel settings (no I/O: the clients
connect on their first command). The failover itself: ``tests/test_e2e_sentinel.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio.sentinel
import redis.sentinel
from celery import Celery
from kombu import Connection
from redbeat.schedulers import get_redis

from countermand.settings import RedisTarget, Settings, get_settings
from countermand.store.base import check_epoch, redis_client, sync_client

SENTINELS = (("s1", 26379), ("s2", 26380))
TARGET = RedisTarget("redis://app:p%40ss@ignored:1/3", SENTINELS, "mymaster")
SENTINEL_ENV = {
    "COUNTERMAND_REDIS_SENTINELS": "s1:26379,s2:26380",
    "COUNTERMAND_REDIS_MASTER": "mymaster",
    "COUNTERMAND_REDIS_URL": "redis://app:p%40ss@ignored:1/3",
}


def addresses(manager: Any) -> list[tuple[str, int]]:
    return [(c.connection_pool.connection_kwargs["host"],
             c.connection_pool.connection_kwargs["port"]) for c in manager.sentinels]  # fmt: skip


def test_the_store_client_finds_the_master_through_the_sentinels() -> None:
    client = redis_client(TARGET)
    pool = client.connection_pool
    assert isinstance(pool, redis.asyncio.sentinel.SentinelConnectionPool)
    assert pool.service_name == "mymaster" and pool.is_master
    assert addresses(pool.sentinel_manager) == list(SENTINELS)
    kwargs = pool.connection_kwargs
    assert (kwargs["db"], kwargs["username"], kwargs["password"]) == (3, "app", "p@ss")
    assert kwargs["redis_connect_func"] is check_epoch
    assert kwargs["health_check_interval"] == 30 and kwargs["decode_responses"] is True
    assert pool.connection_class is redis.asyncio.sentinel.SentinelManagedConnection
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
    assert sentinel["password"] is None and sentinel["socket_timeout"] == 5.0


def test_the_store_client_over_tls() -> None:
    client = redis_client(RedisTarget("rediss://:pw@ignored/0", SENTINELS, "mymaster"))
    pool = client.connection_pool
    assert pool.connection_class is redis.asyncio.sentinel.SentinelManagedSSLConnection
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool
    assert sentinel.connection_class is redis.asyncio.SSLConnection


def test_a_plain_url_is_read_as_before() -> None:
    client = redis_client("redis://:pw@h:6390/2")
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == (
        "h",
        6390,
        2,
        "pw",
    )
    assert kwargs["redis_connect_func"] is check_epoch


def test_the_sync_client_too() -> None:
    client = sync_client(TARGET, decode_responses=True)
    pool = client.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert addresses(pool.sentinel_manager) == list(SENTINELS)
    assert pool.connection_kwargs["db"] == 3 and pool.connection_kwargs["password"] == "p@ss"
    client.close()
    assert sync_client("redis://h:1/0").connection_pool.connection_kwargs["host"] == "h"


def test_kombu_reads_the_broker_url_as_sentinels() -> None:
    url, transport, _ = TARGET.celery_broker()
    conn = Connection(url, transport_options=transport)
    assert conn.transport_cls == "sentinel"
    assert [Connection(alt).port for alt in conn.alt] == [26379, 26380]
    assert (conn.userid, conn.password, conn.virtual_host) == ("app", "p@ss", "3")
    assert conn.transport_options["master_name"] == "mymaster"


@pytest.fixture
def sentinel_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name, value in SENTINEL_ENV.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_the_celery_app_uses_the_sentinel_transport_and_redbeat(
    sentinel_settings: Settings,
) -> None:
    from worker.app import app as shipped
    from worker.app import make_app

    app: Celery = make_app()
    shipped.set_current()  # a new Celery app makes itself the current one
    assert app.conf.broker_url.startswith("sentinel://app:p%40ss@s1:26379/3;")
    options = app.conf.broker_transport_options
    assert options["master_name"] == "mymaster"
    assert options["visibility_timeout"] == sentinel_settings.visibility_timeout
    assert app.conf.redbeat_redis_url.startswith("redis-sentinel://")
    redbeat = get_redis(app)  # RedBeat's own client: a Sentinel master, retrying
    master = redbeat.wrapped_connection
    assert isinstance(master.connection_pool, redis.sentinel.SentinelConnectionPool)
    assert master.connection_pool.service_name == "mymaster"
    assert addresses(master.connection_pool.sentinel_manager) == list(SENTINELS)
    kwargs = master.connection_pool.connection_kwargs
    assert kwargs["db"] == 3 and kwargs["password"] == "p@ss" and kwargs["username"] == "app"
