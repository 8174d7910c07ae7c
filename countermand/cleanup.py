"""Stale cleanup: policies that find old pending commands and cancel them as an ordinary job.

Policies live in a TOML file (``COUNTERMAND_POLICIES_FILE``)::

    [policy.enos-stale]
    provider = "enos"
    org = "o15541858646501"
    older_than = "72h"             # s, m, h or d
    command = "Int_value"          # optional: only commands of this name (EnOS) or type (Android)
    rate = 20                      # optional: the job's --rate
    priority = "bulk"              # optional: urgent, normal or bulk (default: bulk)
    dry_run = false
    schedule = "0 3 * * *"         # cron: minute hour day-of-month month day-of-week (UTC)

    [policy.android-stale]
    provider = "applivery-android"
    org = "acme-corp"
    older_than = "7d"
    devices_file = "devices.txt"   # optional: one device id per line; default: every device

A bad file never stops a worker or a submit: ``read_policies`` keeps every good policy and
says, for each bad one, the file, the policy and the field; ``countermand cleanup check``
prints them (exit 2), beat logs them and skips those policies. Cron schedules are checked by the
scheduler's own parser (``schedules.cron_problem``), where Celery lives.

Discovery streams into the job: the job is created first (queued, loading), the provider's
discovery (``providers.base.Discovery``) yields rows page by page through the one call path
(the job's own pace and tenant), and the rows are staged as they come; the chunks are
released once discovery is complete, as for any submit. Cleanup jobs are ``bulk`` unless the
policy says otherwise: they give way to the jobs people submit. A scheduled slot runs once (a fenced
lock per policy and minute, held while discovery runs and then left as "done"); a slot is
skipped while the policy's previous cleanup job (scheduled or run by hand) still runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from countermand import audit
from countermand.audit import Actor
from countermand.errors import PolicyNotFound, UsageError
from countermand.inputs import InputRow
from countermand.jobs import SubmitRequest, open_job
from countermand.models import RUNNABLE, Priority
from countermand.providers import StaleQuery, discovery_for, get_spec
from countermand.runtime import Runtime
from countermand.store import FencedLock
from countermand.timeparse import parse_duration
from countermand.tomlfile import read_toml
from countermand.work import JobWork

log = logging.getLogger("countermand.cleanup")
BEAT = Actor.system("beat")
SLOT_DONE_TTL = 3600.0


class Policy(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    provider: Literal["applivery-apple", "applivery-android", "enos"]
    org: str = Field(min_length=1)
    older_than: str
    command: str | None = None
    rate: float | None = Field(None, gt=0)
    priority: Priority = Priority.BULK
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


@dataclass
class PolicyFile:
    path: Path
    policies: dict[str, Policy] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # "file: [policy.x] field: what"


def read_policies(path: Path) -> PolicyFile:
    """Every good policy of the file, and what is wrong with each bad one (never raises for a
    bad policy; an unreadable or malformed file is one problem)."""
    found = PolicyFile(path)
    try:
        data = read_toml(path, "policies file")
    except UsageError as exc:
        found.problems.append(str(exc))
        return found
    table = data.get("policy", {})
    if not isinstance(table, dict):
        found.problems.append(f"policies file {path}: [policy.<name>] tables expected")
        return found
    for name, entry in table.items():
        if not isinstance(entry, dict):
            found.problems.append(f"policies file {path}: [policy.{name}] must be a table")
            continue
        try:
            policy = Policy.model_validate({**entry, "name": name})
        except ValidationError as exc:
            for problem in exc.errors():
                where = ".".join(str(p) for p in problem["loc"]) or "policy"
                found.problems.append(
                    f"policies file {path}: [policy.{name}] {where}: {problem['msg']}"
                )
            continue
        if policy.devices_file is not None and not policy.devices_file.is_absolute():
            policy.devices_file = path.parent / policy.devices_file
        found.policies[name] = policy
    return found


def load_policies(path: Path) -> dict[str, Policy]:
    """Every policy of the file; the first bad one is a usage error naming file, policy and
    field."""
    found = read_policies(path)
    if found.problems:
        raise UsageError(found.problems[0])
    return found.policies


def policy_named(path: Path | None, name: str) -> Policy:
    if path is None:
        raise PolicyNotFound(f"no policy {name!r}: COUNTERMAND_POLICIES_FILE is not set")
    found = read_policies(path)
    if name in found.policies:
        return found.policies[name]
    mine = [p for p in found.problems if f"[policy.{name}]" in p or "[policy." not in p]
    if mine:
        raise UsageError(mine[0])
    known = ", ".join(sorted(found.policies)) or "none"
    raise PolicyNotFound(f"policies file {path}: no policy {name!r} (known: {known})")


async def run_policy(
    rt: Runtime,
    policy: Policy,
    *,
    actor: Actor,
    dry_run: bool | None = None,
) -> str:
    """Discover the policy's stale commands, streaming them into one cancel job; its id."""
    spec = get_spec(policy.provider)
    request = SubmitRequest(
        spec,
        policy.org,
        rate=policy.rate,
        dry_run=policy.dry_run if dry_run is None else dry_run,
        name=f"cleanup:{policy.name}",
        priority=policy.priority,
    )
    finder = discovery_for(spec, policy.org, rt.wiring)  # no job when it cannot be made
    job = await open_job(rt.store, rt.settings, rt.credentials, request, actor)
    await rt.store.set_last_cleanup_job(policy.name, job.job_id, rt.settings.retention_seconds)
    await audit.record(rt.store, actor, "policy_run", job.job_id, policy=policy.name,
                       dry_run=request.dry_run or None)  # fmt: skip
    rate = policy.rate or rt.settings.rate
    work = JobWork(rt, job.job_id, spec.name, policy.org, rate, policy.priority)
    query = StaleQuery(
        cutoff=time.time() - policy.max_age,
        command=policy.command,
        page_size=policy.page_size,
        devices=read_devices(policy.devices_file) if policy.devices_file else None,
    )
    columns = [c.name for c in spec.columns]
    async with work.running():
        found = finder.stale(query, work.caller.target())
        await job.load(_numbered(found, columns))
    await job.release()
    return job.job_id


async def run_scheduled(rt: Runtime, name: str) -> str | None:
    """A beat slot: run the policy once per slot (its minute), however many beats fire it or a
    message is redelivered; skip it while the policy's previous cleanup job still runs."""
    store = rt.store
    policy = policy_named(rt.settings.policies_file, name)
    slot = store.cleanup_slot_lock(name, await store.redis_minute(), rt.settings.lease_ttl)
    if not await slot.take():
        return None
    try:
        previous = await store.last_cleanup_job(name)
        if previous and await store.status(previous) in RUNNABLE:
            log.warning("cleanup %s: previous job %s still runs; slot skipped", name, previous)
            await slot.replace("skipped", SLOT_DONE_TTL)
            return None
        job_id = await _run_holding(rt, policy, slot)
        await slot.replace(f"done:{job_id}", SLOT_DONE_TTL)
        return job_id
    except BaseException:
        await slot.release()  # a redelivered message may run the slot again
        raise


async def _run_holding(rt: Runtime, policy: Policy, slot: FencedLock) -> str:
    """Run the policy while renewing the slot's lock (discovery can outlast one lease)."""

    async def keep() -> None:
        while True:
            await asyncio.sleep(rt.settings.lease_ttl / 3)
            await slot.renew()

    keeper = asyncio.create_task(keep())
    try:
        return await run_policy(rt, policy, actor=BEAT)
    finally:
        keeper.cancel()


def read_devices(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"devices file {path}: cannot read: {exc}") from exc
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


async def _numbered(
    rows: AsyncIterator[dict[str, str]], columns: list[str]
) -> AsyncIterator[InputRow]:
    line = 0
    async for row in rows:
        line += 1
        yield InputRow(line, {c: row.get(c) for c in columns})
