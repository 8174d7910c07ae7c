"""Settings: the Sentinel variables, their checks at start, and how they are translated for
redis-py, Celery (kombu) and RedBeat. What the three libraries build from these translations
is in ``tests/test_settings_sentinel_clients.py``; a real failover in
``tests/test_e2e_sentinel.py``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from countermand.settings import RedisTarget, Settings, parse_sentinels

SENTINELS = (("s1", 26379), ("s2", 26380))


def from_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(f"COUNTERMAND_{name}", value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_sentinel_variables_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = from_env(
        monkeypatch,
        REDIS_SENTINELS="s1:26379, s2:26380,[::1]:26381",
        REDIS_MASTER="mymaster",
        REDIS_URL="redis://:pw@ignored:6379/4",
    )
    assert settings.redis == RedisTarget(
        "redis://:pw@ignored:6379/4", (*SENTINELS, ("::1", 26381)), "mymaster"
    )


def test_no_sentinel_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = from_env(monkeypatch, REDIS_SENTINELS="")
    assert settings.redis == RedisTarget("redis://localhost:6379/0")
    assert settings.redis.celery_broker() == ("redis://localhost:6379/0", {}, None)
    assert settings.redis.redbeat() == ("redis://localhost:6379/0", {}, None)


@pytest.mark.parametrize(
    "bad",
    ["s1", "s1:", ":26379", "s1:0", "s1:65536", "s1:port", "s 1:26379", "s1:26379,,s2:1",
     "user@s1:26379", "s1/0:26379", "[::1]"],
)  # fmt: skip
def test_a_bad_address_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        from_env(monkeypatch, REDIS_SENTINELS=bad, REDIS_MASTER="mymaster")
    message = str(caught.value)
    assert "COUNTERMAND_REDIS_SENTINELS" in message and "is not host:port" in message


def test_parse_sentinels_names_the_entry_at_fault() -> None:
    with pytest.raises(ValueError, match=r"'s2:x' is not host:port"):
        parse_sentinels("s1:26379,s2:x")
    assert parse_sentinels(" s1:26379 ,s2:26380 ") == SENTINELS


@pytest.mark.parametrize(
    "env",
    [{"REDIS_SENTINELS": "s1:26379"}, {"REDIS_MASTER": "mymaster"}],
    ids=["sentinels alone", "master alone"],
)
def test_sentinels_and_master_go_together(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    with pytest.raises(ValidationError, match="go together: set both or neither"):
        from_env(monkeypatch, **env)


def test_a_master_name_with_spaces_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="COUNTERMAND_REDIS_MASTER: expected"):
        from_env(monkeypatch, REDIS_SENTINELS="s1:26379", REDIS_MASTER="my master")


def test_sentinel_needs_a_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match=r"must be redis:// or rediss:// .*got unix://"):
        from_env(
            monkeypatch,
            REDIS_SENTINELS="s1:26379",
            REDIS_MASTER="mymaster",
            REDIS_URL="unix:///run/redis.sock",
        )


def test_a_refusal_prints_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as caught:
        from_env(
            monkeypatch,
            REDIS_SENTINELS="s1:26379",
            REDIS_URL="redis://:url-secret@h/0",
            APPLIVERY_TOKEN="token-secret",
        )
    assert "secret" not in str(caught.value)


def test_server_options_are_the_urls_own() -> None:
    target = RedisTarget("rediss://app:p%40ss@ignored:1/3?ssl_ca_certs=/ca.pem", SENTINELS, "m")
    assert target.server_options() == {
        "username": "app", "password": "p@ss", "db": 3, "ssl": True, "ssl_ca_certs": "/ca.pem",
    }  # fmt: skip
    assert target.tls_options() == {"ssl_ca_certs": "/ca.pem", "ssl_cert_reqs": "required"}
    assert target.sentinel_options() == {"ssl": True, **(target.tls_options() or {})}
    assert RedisTarget("redis://h/0", SENTINELS, "m").sentinel_options() == {}


def test_where_tells_no_password() -> None:
    target = RedisTarget("redis://:pw@ignored:1/3", SENTINELS, "mymaster")
    assert target.where == "master 'mymaster' via sentinels s1:26379,s2:26380 (db 3)"
    assert "pw" not in RedisTarget("redis://:pw@h:1/3").where


def test_celery_broker_is_kombus_sentinel_transport() -> None:
    url, transport, tls = RedisTarget(
        "redis://:p%40ss@ignored/2", SENTINELS, "mymaster"
    ).celery_broker()
    assert url == "sentinel://:p%40ss@s1:26379/2;sentinel://:p%40ss@s2:26380/2"
    assert transport == {"master_name": "mymaster"}
    assert tls is None


def test_celery_broker_over_tls() -> None:
    target = RedisTarget("rediss://u:pw@ignored/0?ssl_cert_reqs=optional", (("::1", 26379),), "m")
    url, transport, tls = target.celery_broker()
    assert url == "sentinel://u:pw@[::1]:26379/0"
    assert tls == {"ssl_cert_reqs": "optional"}
    assert transport == {"master_name": "m", "sentinel_kwargs": {"ssl": True, **tls}}


def test_redbeat_options() -> None:
    url, options, tls = RedisTarget("redis://:pw@ignored/6", SENTINELS, "mymaster").redbeat()
    assert url == "redis-sentinel://s1:26379/6"
    assert options == {
        "sentinels": list(SENTINELS), "service_name": "mymaster", "db": 6, "password": "pw",
        "retry_period": 120,
    }  # fmt: skip
    assert tls is None
    _, options, tls = RedisTarget("rediss://u:pw@ignored/0", SENTINELS, "m").redbeat()
    assert options["username"] == "u" and tls == {"ssl_cert_reqs": "required"}
    assert options["sentinel_kwargs"] == {"ssl": True, "ssl_cert_reqs": "required"}
