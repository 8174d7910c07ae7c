"""Simulator settings: one pydantic model, validated at start and on every runtime change.

Fault settings (latency; the rates of 503s, hangs, drops and broken answers, see ``faults``;
the rate limit and its ``Retry-After``), ``android_cancel_done_rate`` and ``cancel_stall_s`` can
be changed while the server runs (``POST /_sim/config``); everything else (seed, generated
store, credentials, token lifetime, log size) is fixed at start.

The running server reads its settings through one ``ConfigHolder``: an update validates a whole
new ``SimulatorConfig`` and swaps the reference, so a request never sees half an update.
Rates are fractions from 0 to 1; ``rate_limit`` 0 means no limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from countermand.ids import APPLIVERY_ORG, ENOS_ID

Rate = Annotated[float, Field(ge=0.0, le=1.0)]  # a fraction of requests, 0 to 1

# The rates of broken answers (``faults``' docstring: what each sends, and whether the vendor
# applied the call first).
BROKEN_FIELDS = (
    "bad_gateway_rate",
    "malformed_rate",
    "truncated_rate",
    "envelope_rate",
    "stall_rate",
    "huge_rate",
    "reset_rate",
)

# Fields that POST /_sim/config may change while the server runs.
RUNTIME_FIELDS = frozenset(
    {
        "latency_ms",
        "jitter_ms",
        "error_rate",
        "timeout_rate",
        "hang_seconds",
        "drop_rate",
        *BROKEN_FIELDS,
        "rate_limit",
        "retry_after",
        "retry_after_format",
        "android_cancel_done_rate",
        "cancel_stall_s",
    }
)


class SimulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The store
    seed: int = 1
    devices: int = Field(default=0, ge=0, description="devices generated per provider")
    commands_per_device: int = Field(default=3, ge=0)
    seed_file: Path | None = None
    applivery_org: str = "acme-corp"
    enos_org: str = "o15541858646501"
    # Credentials: one Applivery token for every org, one EnOS application
    applivery_token: str = Field(default="sim-applivery-token", min_length=1)
    enos_access_key: str = Field(default="sim-access-key", min_length=1)
    enos_secret_key: str = Field(default="sim-secret-key", min_length=1)
    enos_token_ttl: int = Field(default=7200, ge=1, description="seconds")
    # Faults (vendor routes only)
    latency_ms: float = Field(default=0.0, ge=0.0)
    jitter_ms: float = Field(default=0.0, ge=0.0, description="extra delay drawn in [0, jitter]")
    error_rate: Rate = 0.0
    timeout_rate: Rate = 0.0
    hang_seconds: float = Field(default=60.0, ge=0.0)
    drop_rate: Rate = 0.0
    bad_gateway_rate: Rate = 0.0  # a proxy's HTML 502 page: not applied
    malformed_rate: Rate = 0.0  # applied, then JSON cut short (its own Content-Length)
    truncated_rate: Rate = 0.0  # applied, then half the body of a longer Content-Length, close
    envelope_rate: Rate = 0.0  # applied, then a 2xx in a gateway's envelope, not the vendor's
    stall_rate: Rate = 0.0  # applied, then headers and a stall of hang_seconds
    huge_rate: Rate = 0.0  # applied, then the answer padded to HUGE_BODY_BYTES (50 MiB)
    reset_rate: Rate = 0.0  # applied, then half the body and a TCP reset
    rate_limit: float = Field(default=0.0, ge=0.0, description="requests/s per tenant; 0 = off")
    retry_after: float | None = Field(default=None, ge=0.0)
    retry_after_format: Literal["seconds", "http-date"] = "seconds"
    # Behaviour
    android_cancel_done_rate: Rate = 0.0
    # A race hook for tests: an accepted Applivery or EnOS cancel changes the store, then waits
    # this long before answering (a worker killed meanwhile never hears the answer).
    cancel_stall_s: float = Field(default=0.0, ge=0.0, description="seconds; 0 = off")
    log_limit: int = Field(default=2_000_000, ge=1)

    @field_validator("applivery_org")
    @classmethod
    def _applivery_org(cls, value: str) -> str:
        return _checked(APPLIVERY_ORG.check(value), value)

    @field_validator("enos_org")
    @classmethod
    def _enos_org(cls, value: str) -> str:
        return _checked(ENOS_ID.check(value), value)


def _checked(problem: str | None, value: str) -> str:
    if problem is not None:
        raise ValueError(problem)
    return value


class ConfigError(ValueError):
    """A runtime change that cannot be applied; the message says why."""


class ConfigHolder:
    """The one mutable reference to the running configuration."""

    __slots__ = ("current",)

    def __init__(self, config: SimulatorConfig) -> None:
        self.current = config

    def update(self, changes: Mapping[str, object]) -> SimulatorConfig:
        """Validate ``changes`` against the current config and swap it in, or raise."""
        fixed = sorted(set(changes) - RUNTIME_FIELDS)
        if fixed:
            allowed = ", ".join(sorted(RUNTIME_FIELDS))
            raise ConfigError(f"cannot change {', '.join(fixed)} at runtime; allowed: {allowed}")
        merged = {**self.current.model_dump(), **changes}
        try:
            new = SimulatorConfig.model_validate(merged)
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            raise ConfigError(str(exc)) from exc
        self.current = new
        return new
