"""Stale cleanup: policies that find old pending commands and cancel them as an ordinary job.

Policies live in a TOML file (``COUNTERMAND_POLICIES_FILE``)::

    [policy.enos-stale]
    provider = "enos"
    org = "o15541858646501"
    older_than = "72h"             # s, m, h or d
    command = "Int_value"          # optional: only commands of this name (EnOS) or type (Android)
    rate = 20                      # optional: the job's --rate
    dry_run = false
    schedule = "0 3 * * *"         # cron: minute hour day-of-month month day-of-week (UTC)

    [policy.android-stale]
    provider = "applivery-android"
    org = "acme-corp"
    older_than = "7d"
    devices_file = "devices.txt"   # optional: one device id per line; default: every device

Discovery: EnOS searches cached commands (state 1) created before the cutoff, every page;
Applivery pages the devices (the file's, or every device of the org through
``/mdm/{apple|android}/enterprise/devices``, a list inferred from the vendor's docs and parsed
tolerantly) and each device's command list, keeping pending commands older than the cutoff.
A command whose age cannot be read (no parsable timestamp) is left alone. What is found becomes
an ordinary cancel job named ``cleanup:<policy>`` (same outcomes, limits, report, retry), which
``countermand jobs`` lists.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from countermand import keys
from countermand.errors import UsageError
from countermand.inputs import InputRow
from countermand.models import JobStatus
from countermand.timeparse import parse_duration
from countermand.tomlfile import read_toml

if TYPE_CHECKING:
    from countermand.jobs import Dispatch
    from countermand.runtime import Runtime


class Policy(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    provider: Literal["applivery-apple", "applivery-android", "enos"]
    org: str = Field(min_length=1)
    older_than: str
    command: str | None = None
    rate: float | None = Field(None, gt=0)
    dry_run: bool = False
    schedule: str | None = None
    devices_file: Path | None = None
    page_size: int = Field(100, ge=1, le=1000)

    @field_validator("older_than")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a cron schedule of 5 fields (m h dom mon dow)")
        return value

    @property
    def max_age(self) -> float:
        return parse_duration(self.older_than)


def load_policies(path: Path) -> dict[str, Policy]:
    """Every policy of the file; a bad one is a usage error naming the file, policy and field."""
    data = read_toml(path, "policies file")
    table = data.get("policy", {})
    if not isinstance(table, dict):
        raise UsageError(f"policies file {path}: [policy.<name>] tables expected")
    policies = {}
    for name, entry in table.items():
        try:
            policy = Policy.model_validate({**entry, "name": name})
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise UsageError(
                f"policies file {path}: [policy.{name}] {where}: {problem['msg']}"
            ) from exc
        if policy.devices_file is not None and not policy.devices_file.is_absolute():
            policy.devices_file = path.parent / policy.devices_file
        policies[name] = policy
    return policies


def policy_named(path: Path | None, name: str) -> Policy:
    if path is None:
        raise UsageError("set COUNTERMAND_POLICIES_FILE to the policies file")
    policies = load_policies(path)
    if name not in policies:
        known = ", ".join(sorted(policies)) or "none"
        raise UsageError(f"policies file {path}: no policy {name!r} (known: {known})")
    return policies[name]


async def run_policy(
    rt: Runtime, policy: Policy, dispatch: Dispatch, dry_run: bool | None = None
) -> str:
    """Discover the policy's stale commands and submit them as one cancel job; its id."""
    from countermand.engine import provider_for
    from countermand.jobs import SubmitRequest, check_request, submit
    from countermand.providers import get_spec
    from countermand.store import JobMeta

    spec = get_spec(policy.provider)
    request = SubmitRequest(
        spec,
        policy.org,
        rate=policy.rate,
        dry_run=policy.dry_run if dry_run is None else dry_run,
        name=f"cleanup:{policy.name}",
    )
    check_request(request, rt.settings, rt.credentials)
    rate = policy.rate or rt.settings.rate
    limit = rt.settings.tenant_limit(spec.vendor, policy.org)
    pacer = rt.limiter.pacer(spec.vendor, policy.org, limit, f"cleanup:{policy.name}", rate)

    async def pace() -> None:
        await pacer.wait_turn(asyncio.sleep)

    meta = JobMeta(  # discovery only needs the provider, org and rate of the job to come
        job_id=f"cleanup:{policy.name}",
        provider=spec.name,
        org=policy.org,
        rate=rate,
        dry_run=False,
        chunk_size=1,
        chunks=0,
        total=0,
        status=JobStatus.QUEUED,
        expire_at_ms=0,
        columns=[],
        created_at=time.time(),
    )
    finder = provider_for(rt, meta, pace=pace)
    devices = read_devices(policy.devices_file) if policy.devices_file else None
    await pace()
    cutoff = time.time() - policy.max_age
    columns = [c.name for c in spec.columns]
    rows = [
        InputRow(line, {c: found.get(c) for c in columns})
        async for line, found in _numbered(
            finder.stale(cutoff, policy.command, policy.page_size, devices)  # type: ignore[attr-defined]
        )
    ]
    return await submit(rt.store, rt.settings, request, rows, dispatch)


async def run_scheduled(rt: Runtime, name: str, dispatch: Dispatch) -> str | None:
    """A beat slot: run the policy unless this slot (its minute) already ran: with several
    beat processes, or a redelivered message, a slot fires once."""
    now_s, _ = await rt.store.redis.time()
    slot = keys.cleanup_slot(name, now_s // 60)
    if not await rt.store.redis.set(slot, "1", nx=True, ex=3600):
        return None
    return await run_policy(rt, policy_named(rt.settings.policies_file, name), dispatch)


def read_devices(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"devices file {path}: cannot read: {exc}") from exc
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


async def _numbered(
    rows: AsyncIterator[dict[str, str]],
) -> AsyncIterator[tuple[int, dict[str, str]]]:
    line = 0
    async for row in rows:
        line += 1
        yield line, row
