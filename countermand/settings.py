"""All configuration in one place: environment variables ``COUNTERMAND_*`` and an optional ``.env``.

Secrets are ``SecretStr``: they print as ``**********`` and never enter Redis, Celery messages,
logs or reports. Numbers carry bounds so a typo is refused at start, not in the middle of a job.
Tests shorten leases and intervals through the same variables; the shipped defaults are the
production values documented in the README.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COUNTERMAND_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- where things are -------------------------------------------------------------
    redis_url: str = "redis://localhost:6379/0"
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
    visibility_timeout: int = Field(3_600, ge=10)
    retention_days: float = Field(30.0, gt=0, le=3_650)

    @field_validator("applivery_url", "enos_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("tenant_rates")
    @classmethod
    def _positive_rates(cls, value: dict[str, float]) -> dict[str, float]:
        for key, rate in value.items():
            if rate <= 0:
                raise ValueError(f"tenant_rates[{key!r}] must be > 0, got {rate}")
        return value

    @property
    def retention_seconds(self) -> int:
        return int(self.retention_days * 86_400)

    def tenant_limit(self, vendor: str, org: str) -> float:
        """The limit of one tenant: ``vendor:org`` first, then ``vendor``, then the default."""
        return self.tenant_rates.get(
            f"{vendor}:{org}", self.tenant_rates.get(vendor, self.tenant_rate)
        )


def redacted_url(url: str) -> str:
    """A URL fit for messages and logs: any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}***@{host}"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
