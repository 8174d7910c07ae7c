"""An in-memory provider for unit tests of the engine: no HTTP, scripted answers, every request
through the call path it is handed (so the engine's pacing and token count are exercised).

Each target names its script in the ``command_id`` column: ``ok``, ``late`` (not pending),
``missing``, ``reject``, ``flaky<N>`` (N transient errors, then ok), ``down`` (always
transient), ``refused`` (cannot connect), ``unauthorized``, ``plan``, ``lost<N>`` (N uncertain
errors: the first one applied the cancel; then "too late"), ``ours`` (too late, and a read
says canceled by this job), ``theirs`` (too late; a read says canceled long before). Calls
are recorded. While ``gate`` is set to an unset ``asyncio.Event``, every cancel waits on it
before it answers, as if the vendor were slow (``held``: how many wait now).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from countermand.errors import (
    PlanNotAllowed,
    TransientError,
    Unauthorized,
    UnreachableError,
)
from countermand.ids import ENOS_ID, IdPattern
from countermand.models import Outcome
from countermand.providers.base import (
    Call,
    CallResult,
    Column,
    Provider,
    ProviderContext,
    Target,
    missing_header,
    validate_columns,
)

CANCELED_LONG_AGO = "2020-01-01T00:00:00.000Z"


class FakeSpec:
    name = "fake"
    vendor = "fake"
    org_pattern: IdPattern = ENOS_ID
    columns: Sequence[Column] = (Column("device_id", ENOS_ID), Column("command_id", ENOS_ID))
    extra_columns: Sequence[str] = ()
    can_cancel = True
    can_discover = False

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.attempts: Counter[str] = Counter()
        self.canceled_at: dict[str, str] = {}  # when a "lost" cancel was applied (ISO)
        self.gate: asyncio.Event | None = None
        self.held = 0

    def base_url(self, settings: Any) -> str | None:
        return "fake://"

    def header_problem(self, header: Sequence[str]) -> str | None:
        return missing_header(self.columns, header)

    def validate(self, row: Mapping[str, str | None]) -> Target:
        return validate_columns(self.columns, row)

    def key(self, target: Target) -> str:
        return f"{target['device_id']}/{target['command_id']}"

    def report_extra(self, extra: Mapping[str, Any]) -> list[str]:
        return []

    def make(self, context: ProviderContext) -> Provider:
        return FakeProvider(self)


class FakeProvider:
    def __init__(self, spec: FakeSpec) -> None:
        self.spec = spec

    async def read(self, target: Target, call: Call) -> CallResult:
        async def send() -> CallResult:
            key = self.spec.key(target)
            self.spec.calls.append("read:" + key)
            script = target["command_id"]
            if key in self.spec.canceled_at or script == "ours":
                stamp = self.spec.canceled_at.get(key, "2999-01-01T00:00:00.000Z")
                return CallResult(Outcome.CANCELED, 200, extra={"status": "Canceled"},
                                  state_time=stamp)  # fmt: skip
            if script == "theirs":
                return CallResult(Outcome.CANCELED, 200, extra={"status": "Canceled"},
                                  state_time=CANCELED_LONG_AGO)  # fmt: skip
            state = {"ok": Outcome.PENDING, "late": Outcome.DONE, "missing": Outcome.NOT_FOUND}
            return CallResult(state.get(script, Outcome.ERRORED), 200)

        return await call(send, kind="read")

    async def cancel(self, target: Target, call: Call) -> CallResult:
        async def send() -> CallResult:
            key = self.spec.key(target)
            self.spec.calls.append(key)
            self.spec.attempts[key] += 1
            if self.spec.gate is not None:
                self.spec.held += 1
                try:
                    await self.spec.gate.wait()
                finally:
                    self.spec.held -= 1
            return self._answer(key, target["command_id"])

        return await call(send, kind="cancel")

    def _answer(self, key: str, script: str) -> CallResult:
        tries = self.spec.attempts[key]
        fixed = {
            "ok": CallResult(Outcome.CANCELED, 200),
            "late": CallResult(Outcome.NOT_PENDING, 400, "5106", "not pending"),
            "ours": CallResult(Outcome.NOT_PENDING, 400, "5106", "not pending"),
            "theirs": CallResult(Outcome.NOT_PENDING, 400, "5106", "not pending"),
            "missing": CallResult(Outcome.NOT_FOUND, 404, "3001", "Entity not found"),
            "reject": CallResult(Outcome.REJECTED, 400, "9999", "no"),
        }
        if script in fixed:
            return fixed[script]
        if script.startswith("flaky"):
            if tries <= int(script[5:]):
                raise TransientError("503 from fake", http_status=503)
            return CallResult(Outcome.CANCELED, 200)
        if script.startswith("lost"):
            if tries == 1:
                self.spec.canceled_at[key] = "2999-01-01T00:00:00.000Z"
            if tries <= int(script[4:]):
                raise TransientError("timed out", uncertain=True)
            return CallResult(Outcome.NOT_PENDING, 400, "5106", "not pending")
        return self._fatal(script)

    @staticmethod
    def _fatal(script: str) -> CallResult:
        if script == "down":
            raise TransientError("503 from fake", http_status=503, retry_after=0.01)
        if script == "refused":
            raise UnreachableError("connection refused")
        if script == "unauthorized":
            raise Unauthorized("bad token", http_status=401, error_code="4004")
        if script == "plan":
            raise PlanNotAllowed("plan", http_status=400, error_code="5050")
        raise AssertionError(f"unknown fake script {script!r}")
