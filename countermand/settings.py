"""All configuration in one place: environment variables ``COUNTERMAND_*`` and an optional ``.env``.

Secrets are ``SecretStr``: they print as ``**********`` and never enter Redis, Celery messages,
logs or reports. Numbers carry bounds so a typo is refused at start, not in the middle of a job.
Tests shorten leases and intervals through the same variables; the shipped defaults are the
production values documented in the README.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote_plus, urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from redis.connection import SSLConnection, parse_url

SENTINELS_VAR = "COUNTERMAND_REDIS_SENTINELS"
MASTER_VAR = "COUNTERMAND_REDIS_MASTER"
Address = tuple[str, int]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COUNTERMAND_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- where things are -------------------------------------------------------------
    redis_url: str = "redis://localhost:6379/0"
    # Sentinel: both set, or neither. The URL then gives only database, password and TLS.
    redis_sentinels: Annotated[tuple[Address, ...], NoDecode] = Field(
        (), description="host:port,host:port of the Redis Sentinels that find the master"
    )
    redis_master: str | None = Field(
        None, validate_default=True, description="the master's name the sentinels monitor"
    )
    applivery_url: str = "https://api.applivery.io"
    applivery_token: SecretStr | None = None
    enos_url: str | None = None
    enos_access_key: SecretStr | None = None
    enos_secret_key: SecretStr | None = None
    credentials_file: Path | None = None
    policies_file: Path | None = None

    # --- pace ---------------------------------------------------------------------------
    rate: float = Field(20.0, gt=0, le=100_000, description="default requests/s of one job")
    tenant_rate: float = Field(50.0, gt=0, le=100_000, description="default limit per tenant")
    tenant_rates: dict[str, float] = Field(
        default_factory=dict,
        description='per vendor or tenant limits: {"applivery": 100, "enos:o123": 20}',
    )
    rate_headroom: float = Field(
        0.03, ge=0, lt=0.5, description="pace this fraction under the limit to absorb jitter"
    )
    concurrency: int = Field(
        32, ge=1, le=10_000, description="lanes a chunk run starts with, before latency is known"
    )
    in_flight_ceiling: int = Field(
        1500,
        ge=1,
        le=100_000,
        description="most requests one worker process keeps in flight (lets 1,000/s run at 1 s)",
    )
    chunk_size: int = Field(500, ge=1, le=10_000)
    batch_size: int = Field(100, ge=1, le=1_000, description="targets per bookkeeping write")

    # --- retries and timeouts -----------------------------------------------------------
    retry_attempts: int = Field(5, ge=1, le=50)
    retry_total_delay: float = Field(120.0, gt=0, le=3_600)
    retry_initial_wait: float = Field(0.5, gt=0, le=60)
    retry_max_wait: float = Field(30.0, gt=0, le=600)
    retry_after_cap: float = Field(300.0, gt=0, le=3_600)
    throttle_total_delay: float = Field(
        900.0, gt=0, le=86_400, description="waiting on 429s one target may do per round"
    )
    throttle_factor: float = Field(0.5, gt=0, lt=1, description="rate kept after a 429 burst")
    throttle_cooldown: float = Field(1.0, ge=0, le=60, description="one decrease per this long")
    throttle_floor: float = Field(0.5, gt=0, le=1_000, description="lowest effective rate/s")
    rate_recovery: float = Field(
        0.05, gt=0, le=1, description="fraction of the limit regained per second"
    )
    retry_round_delay: float = Field(
        60.0, ge=0, le=86_400, description="--auto-retry: delay before round 1, doubling"
    )
    retry_sweep_interval: float = Field(30.0, ge=0.1, le=3_600)
    verify_delay: float = Field(
        30.0, ge=0, le=86_400, description="--verify: seconds between a cancel and its read"
    )
    http_timeout: float = Field(30.0, gt=0, le=600)
    max_answer_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, le=1024**3, description="vendor answers larger are not read"
    )
    cancel_time_tolerance: float = Field(
        5.0,
        ge=0,
        le=3_600,
        description="seconds of clock difference allowed between the vendor and Redis when a "
        "read decides whether this job's cancel took",
    )
    connect_timeout: float = Field(10.0, gt=0, le=120)
    token_refresh_margin: float = Field(300.0, ge=0, le=3_600)

    # --- the operator surface: HTTP API, audit, webhooks, logs ------------------------------
    api_max_upload_bytes: int = Field(
        512 * 1024 * 1024, ge=1024, description="largest input file the HTTP API accepts"
    )
    session_ttl: int = Field(12 * 3600, ge=60, le=30 * 86_400, description="dashboard session")
    metrics_auth: bool = Field(False, description="the API's /metrics needs a key too")
    audit_retention_days: float = Field(90.0, gt=0, le=3_650)
    webhook_url: str | None = Field(None, description="default --notify URL of every job")
    webhook_secret: SecretStr | None = None
    webhook_max_tries: int = Field(8, ge=1, le=50)
    webhook_timeout: float = Field(10.0, gt=0, le=120)
    log_format: Literal["text", "json"] = "text"
    task_events: bool = Field(False, description="Celery task events, for Flower")

    # --- chunk ownership and retention --------------------------------------------------
    lease_ttl: float = Field(30.0, ge=0.5, le=600)
    reclaim_interval: float = Field(10.0, ge=0.1, le=600)
    # SIGTERM: seconds a pool process waits for its requests in flight to be answered and
    # recorded before it hands its chunks back (keep it under the stop grace period, 60 s in
    # docker-compose.yml)
    drain_timeout: float = Field(20.0, ge=0, le=600)
    # seconds workers, beat, the API and the CLI's --wait ride out Redis being away
    redis_grace: float = Field(60.0, ge=0, le=3_600)
    visibility_timeout: int = Field(3_600, ge=10)
    retention_days: float = Field(30.0, gt=0, le=3_650)

    @field_validator("applivery_url", "enos_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _sentinel_list(cls, value: object) -> object:
        return parse_sentinels(value) if isinstance(value, str) else value

    @field_validator("redis_master")
    @classmethod
    def _sentinel_pair(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field validator, not a model one: a model's error would print every input, secrets
        # included. Runs on the default too (validate_default), after the two fields above.
        if value is not None and (not value or any(c.isspace() for c in value)):
            raise ValueError(f"{MASTER_VAR}: expected the master's name, got {value!r}")
        if "redis_sentinels" not in info.data:
            return value  # refused above
        if bool(info.data["redis_sentinels"]) != bool(value):
            raise ValueError(f"{SENTINELS_VAR} and {MASTER_VAR} go together: set both or neither")
        scheme = urlsplit(str(info.data.get("redis_url", ""))).scheme
        if value and scheme not in ("redis", "rediss"):
            raise ValueError(
                f"with {SENTINELS_VAR}, COUNTERMAND_REDIS_URL must be redis:// or rediss:// "
                f"(it gives the database, password and TLS), got {scheme}://"
            )
        return value

    @field_validator("tenant_rates")
    @classmethod
    def _positive_rates(cls, value: dict[str, float]) -> dict[str, float]:
        for key, rate in value.items():
            if rate <= 0:
                raise ValueError(f"tenant_rates[{key!r}] must be > 0, got {rate}")
        return value

    @property
    def redis(self) -> RedisTarget:
        """Where Redis is, for the client factory (``countermand.store.base``), Celery and
        RedBeat (``worker.app``)."""
        return RedisTarget(self.redis_url, self.redis_sentinels, self.redis_master)

    @property
    def retention_seconds(self) -> int:
        return int(self.retention_days * 86_400)

    def tenant_limit(self, vendor: str, org: str) -> float:
        """The limit of one tenant: ``vendor:org`` first, then ``vendor``, then the default."""
        return self.tenant_rates.get(
            f"{vendor}:{org}", self.tenant_rates.get(vendor, self.tenant_rate)
        )


def parse_sentinels(text: str) -> tuple[Address, ...]:
    """``host:port,host:port`` (``[v6]:port`` too) as addresses; ValueError naming the variable
    and the entry at fault."""
    found: list[Address] = []
    for entry in (part.strip() for part in text.split(",")) if text.strip() else ():
        host, sep, port = entry.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        bad_host = not host or any(c.isspace() or c in "/@[]," for c in host)
        if not sep or bad_host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(
                f"{SENTINELS_VAR}: {entry!r} is not host:port with a port 1-65535 "
                "(expected e.g. sentinel-1:26379,sentinel-2:26379)"
            )
        found.append((host, int(port)))
    return tuple(found)


@dataclass(frozen=True)
class RedisTarget:
    """Where Redis is: ``url`` alone, or the master ``master`` found through ``sentinels``, with
    the database, user, password and TLS options that ``url`` gives (read by redis-py's own
    ``parse_url``, as a plain URL is). Translated here for redis-py, Celery (kombu's Sentinel
    transport) and RedBeat, which each spell Sentinel differently."""

    url: str
    sentinels: tuple[Address, ...] = ()
    master: str | None = None

    @property
    def where(self) -> str:
        """For messages and logs: no password."""
        if not self.sentinels:
            return redacted_url(self.url)
        hosts = ",".join(_host_port(h, p) for h, p in self.sentinels)
        return f"master {self.master!r} via sentinels {hosts} (db {self.db})"

    def server_options(self) -> dict[str, Any]:
        """The URL's options beside host and port: ``db``, ``username``, ``password``, its
        query options, and ``ssl=True`` (and the ``ssl_*`` options) for ``rediss://``."""
        options: dict[str, Any] = parse_url(self.url)  # type: ignore[no-untyped-call]
        for name in ("host", "port", "path"):
            options.pop(name, None)
        if options.pop("connection_class", None) is SSLConnection:
            options["ssl"] = True
        return options

    @property
    def db(self) -> int:
        return int(self.server_options().get("db", 0))

    def tls_options(self) -> dict[str, Any] | None:
        """``ssl_*`` options of a ``rediss://`` URL (certificates required unless it says
        otherwise, redis-py's default); None for ``redis://``."""
        options = self.server_options()
        if not options.get("ssl"):
            return None
        tls = {k: v for k, v in options.items() if k.startswith("ssl_")}
        tls.setdefault("ssl_cert_reqs", "required")
        return tls

    def sentinel_options(self) -> dict[str, Any]:
        """How the sentinels themselves are asked: no password (a sentinel ``requirepass`` is
        not supported), TLS when the URL is ``rediss://``."""
        tls = self.tls_options()
        return {} if tls is None else {"ssl": True, **tls}

    def celery_broker(self) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        """Celery's ``broker_url``, the Sentinel part of ``broker_transport_options`` and
        ``broker_use_ssl``. kombu: ``sentinel://[user:password@]host:port/db`` joined by ``;``
        (credentials and database from the first), ``master_name`` and ``sentinel_kwargs`` in
        the transport options, TLS from ``broker_use_ssl``."""
        if not self.sentinels:
            return self.url, {}, None
        options = self.server_options()
        auth = ""
        if options.get("username") or options.get("password"):
            user = quote(options.get("username") or "", safe="")
            auth = f"{user}:{quote(options.get('password') or '', safe='')}@"
        url = ";".join(f"sentinel://{auth}{_host_port(h, p)}/{self.db}" for h, p in self.sentinels)
        transport: dict[str, Any] = {"master_name": self.master}
        if sentinel := self.sentinel_options():
            transport["sentinel_kwargs"] = sentinel
        return url, transport, self.tls_options()

    def redbeat(self) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        """RedBeat's ``redbeat_redis_url``, ``redbeat_redis_options`` and
        ``redbeat_redis_use_ssl``. RedBeat: a ``redis-sentinel://`` URL (its host is ignored),
        ``sentinels``, ``service_name`` (RedBeat's word for the master's name), ``db``,
        ``username``, ``password`` and ``sentinel_kwargs`` in the options, TLS from
        ``redbeat_redis_use_ssl``. ``retry_period``: RedBeat's own calls wait out a failover
        (up to 2 minutes) instead of failing."""
        if not self.sentinels:
            return self.url, {}, None
        options = self.server_options()
        host, port = self.sentinels[0]
        redbeat: dict[str, Any] = {
            "sentinels": list(self.sentinels),
            "service_name": self.master,
            "db": self.db,
            "password": options.get("password"),
            "retry_period": FAILOVER_RETRY_SECONDS,
        }
        if options.get("username"):
            redbeat["username"] = options["username"]
        if sentinel := self.sentinel_options():
            redbeat["sentinel_kwargs"] = sentinel
        url = f"redis-sentinel://{_host_port(host, port)}/{self.db}"
        return url, redbeat, self.tls_options()


FAILOVER_RETRY_SECONDS = 120


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def redacted_url(url: str) -> str:
    """A URL fit for messages and logs: every password in it replaced by ``***``, the rest as
    written. A password is the part after the user of ``scheme://user:PASSWORD@host`` (up to
    the last ``@``, so a password holding ``@``, ``/`` or ``?`` unquoted is hidden whole), and
    the value of a query parameter named like one (``?password=...``, which redis-py reads,
    ``ssl_password``, ``token``, ...). Never raises: a malformed URL is redacted as well; one
    with an ``@`` after its host (in a query value) may be shown short of it, never with more."""
    head, sep, rest = url.partition("://")
    if not sep:
        head, rest = "", url
    userinfo, at, after = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}:***@{after}"
    base, question, query = rest.partition("?")
    if question:
        query, hash_, fragment = query.partition("#")
        query = "&".join(_redacted_param(p) for p in query.split("&"))
        rest = f"{base}?{query}{hash_}{fragment}"
    return f"{head}{sep}{rest}"


_SECRET_PARAM = re.compile(r"pass|secret|token|auth|credential", re.IGNORECASE)


def _redacted_param(param: str) -> str:
    name, eq, _ = param.partition("=")
    return f"{name}=***" if eq and _SECRET_PARAM.search(unquote_plus(name)) else param


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
