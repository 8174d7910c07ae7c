"""An in-memory provider for unit tests of the engine: no HTTP, scripted answers.

Each target names its script in the ``command_id`` column: ``ok``, ``late`` (not pending),
``missing``, ``reject``, ``flaky<N>`` (N transient errors, then ok), ``down`` (always
transient), ``refused`` (cannot connect), ``unauthorized``, ``plan``. Calls are recorded.
"""

from __future__ import annotations

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
    CallResult,
    Column,
    Provider,
    ProviderContext,
    Target,
    missing_header,
    validate_columns,
)


class FakeSpec:
    name = "fake"
    vendor = "fake"
    org_pattern: IdPattern = ENOS_ID
    columns: Sequence[Column] = (Column("device_id", ENOS_ID), Column("command_id", ENOS_ID))
    extra_columns: Sequence[str] = ()
    can_cancel = True

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.attempts: Counter[str] = Counter()

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

    async def read(self, target: Target) -> CallResult:
        self.spec.calls.append("read:" + self.spec.key(target))
        state = {"ok": Outcome.PENDING, "late": Outcome.DONE, "missing": Outcome.NOT_FOUND}
        return CallResult(state.get(target["command_id"], Outcome.ERRORED), 200)

    async def cancel(self, target: Target) -> CallResult:
        key = self.spec.key(target)
        self.spec.calls.append(key)
        self.spec.attempts[key] += 1
        script = target["command_id"]
        if script == "ok":
            return CallResult(Outcome.CANCELED, 200)
        if script == "late":
            return CallResult(Outcome.NOT_PENDING, 400, "5106", "not pending")
        if script == "missing":
            return CallResult(Outcome.NOT_FOUND, 404, "3001", "Entity not found")
        if script == "reject":
            return CallResult(Outcome.REJECTED, 400, "9999", "no")
        if script.startswith("flaky"):
            if self.spec.attempts[key] <= int(script[5:]):
                raise TransientError("503 from fake", http_status=503)
            return CallResult(Outcome.CANCELED, 200)
        if script == "down":
            raise TransientError("503 from fake", http_status=503, retry_after=0.01)
        if script == "refused":
            raise UnreachableError("connection refused")
        if script == "unauthorized":
            raise Unauthorized("bad token", http_status=401, error_code="4004")
        if script == "plan":
            raise PlanNotAllowed("plan", http_status=400, error_code="5050")
        raise AssertionError(f"unknown fake script {script!r}")
