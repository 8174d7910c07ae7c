"""The simulator's command store: records per provider, as ``seeding`` generates them.

Four providers, one record class each (``GET /_sim/commands`` returns them as dicts with these
field names; a seed file and ``POST /_sim/commands`` take the same dicts back):

* ``applivery-apple``: ``AppleCommand``, keyed by (org, target type, target id, command id);
  ``Pending`` and ``Retrying`` are cancelable.
* ``applivery-android``: ``AndroidCommand``, keyed by (org, device id, command id), grouped by
  device for the paginated list; only ``PENDING`` is cancelable.
* ``applivery-windows``: ``WindowsBatch``, a command batch keyed by (org, device id, command
  id), grouped by device, with its ``WindowsAction`` list (``cmd_id`` up to 128 characters and
  unique in the batch, ``status`` a SyncML status name of ``syncml.WINDOWS_STATUSES``). Read and
  polled only: Applivery documents no Windows cancel.
* ``enos``: ``EnosCommand``, keyed by (org, command id), grouped by device (org, asset id). A
  device has two names, its asset id and (product key, device key): records that would make
  either name two devices are refused. ``state`` 1 (created: cached) is cancelable.

A seed file's records are added after the generated ones (same key: the file's record wins).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import TypeAdapter, ValidationError

from countermand.ids import (
    APPLIVERY_COMMAND,
    APPLIVERY_DEVICE,
    APPLIVERY_ORG,
    APPLIVERY_TARGET,
    ENOS_ID,
    IdPattern,
)
from countermand.simulator.syncml import WINDOWS_STATUS_SET, WindowsActionName

APPLE = "applivery-apple"
ANDROID = "applivery-android"
WINDOWS = "applivery-windows"
ENOS = "enos"
PROVIDERS = (APPLE, ANDROID, WINDOWS, ENOS)

TargetType = Literal["device", "deviceUser"]
AppleStatus = Literal["Pending", "Retrying", "Acknowledged", "Error", "Canceled"]
AndroidStatus = Literal["PENDING", "DONE", "FAILED", "CANCELLED"]
EnosState = Literal[1, 2, 3, 4, 5, 6, 7]
APPLE_CANCELABLE = frozenset({"Pending", "Retrying"})
ENOS_CACHED: EnosState = 1  # "created": cached on the gateway, the only cancelable state
ENOS_CANCELED: EnosState = 2


@dataclass(slots=True)
class AppleCommand:
    org: str
    target_type: TargetType
    target_id: str
    command_id: str
    status: AppleStatus
    request_type: str = "DeviceLock"
    sent_at: str | None = None
    received_at: str | None = None
    tried_at: str | None = None
    canceled_at: str | None = None
    num_tries: int = 0


@dataclass(slots=True)
class AndroidCommand:
    org: str
    device_id: str
    command_id: str
    status: AndroidStatus
    type: str = "LOCK"
    created_at: str = "2026-02-10T12:00:00.000Z"
    updated_at: str = "2026-02-10T12:00:00.000Z"


@dataclass(slots=True)
class WindowsAction:
    cmd_id: str
    status: str  # a SyncML status name, syncml.WINDOWS_STATUSES
    path: str = "./Device/Vendor/MSFT/Policy/Config/Security/RequireDeviceEncryption"
    action: WindowsActionName = "Replace"
    value: str | None = None
    status_code: int | None = None
    sent_at: str | None = None
    received_at: str | None = None
    canceled_at: str | None = None


@dataclass(slots=True)
class WindowsBatch:
    org: str
    device_id: str
    command_id: str
    name: str = "Command batch"
    created_at: str = "2026-02-10T12:00:00.000Z"
    updated_at: str = "2026-02-10T12:00:00.000Z"
    actions: list[WindowsAction] = dataclasses.field(default_factory=list)


@dataclass(slots=True)
class EnosCommand:
    org: str
    asset_id: str
    product_key: str
    device_key: str
    command_id: str
    state: EnosState
    create_time: int = 1_770_724_800_000  # epoch milliseconds
    command_name: str = "Int_value"
    command_type: int = 1
    tsl_identifier: str = "Int_value"
    input_data: Any = None


Record = AppleCommand | AndroidCommand | WindowsBatch | EnosCommand
R = TypeVar("R", AppleCommand, AndroidCommand, WindowsBatch, EnosCommand)
Key = tuple[str, ...]


class StoreError(ValueError):
    """Records that cannot be stored; the message says which and why."""


class Table(Generic[R]):
    """Records by key, and by group (a target or a device) in insertion order."""

    def __init__(self, key: Callable[[R], Key], group: Callable[[R], Key]) -> None:
        self.key: Callable[[R], Key] = key
        self.group: Callable[[R], Key] = group
        self.by_key: dict[Key, R] = {}
        self.by_group: dict[Key, dict[Key, R]] = {}

    def put(self, record: R) -> None:
        key = self.key(record)
        old = self.by_key.get(key)
        if old is not None:
            self.by_group[self.group(old)].pop(key, None)
        self.by_key[key] = record
        self.by_group.setdefault(self.group(record), {})[key] = record

    def in_group(self, group: Key) -> list[R] | None:
        """The group's records, or None when no record ever had this group."""
        members = self.by_group.get(group)
        return None if members is None else list(members.values())

    def clear(self) -> None:
        self.by_key.clear()
        self.by_group.clear()

    def __iter__(self) -> Iterator[R]:
        return iter(self.by_key.values())


class CommandStore:
    def __init__(self) -> None:
        self.apple: Table[AppleCommand] = Table(
            lambda r: (r.org, r.target_type, r.target_id, r.command_id),
            lambda r: (r.org, r.target_type, r.target_id),
        )
        self.android: Table[AndroidCommand] = Table(
            lambda r: (r.org, r.device_id, r.command_id), lambda r: (r.org, r.device_id)
        )
        self.windows: Table[WindowsBatch] = Table(
            lambda r: (r.org, r.device_id, r.command_id), lambda r: (r.org, r.device_id)
        )
        self.enos: Table[EnosCommand] = Table(
            lambda r: (r.org, r.command_id), lambda r: (r.org, r.asset_id)
        )
        # Both names of each EnOS device, pointing at each other:
        # ("asset", org, asset id) <-> ("keys", org, product key, device key)
        self.enos_devices: dict[Key, Key] = {}

    def add(self, provider: str, records: Iterable[Record], *, replace: bool = False) -> int:
        """Store records of one provider, all or none; ``replace`` drops its others first."""
        table, batch = self.table(provider), list(records)
        if not all(isinstance(record, _SPECS[provider].record) for record in batch):
            raise StoreError(f"records of {provider} must all be {_SPECS[provider].record}")
        enos = [record for record in batch if isinstance(record, EnosCommand)]
        devices = self._enos_devices(enos, fresh=replace)  # raises before anything changes
        if replace:
            table.clear()
        for record in batch:
            table.put(record)
        if provider == ENOS:
            self.enos_devices = devices
        return len(batch)

    def table(self, provider: str) -> Table[Any]:
        tables: dict[str, Table[Any]] = {
            APPLE: self.apple,
            ANDROID: self.android,
            WINDOWS: self.windows,
            ENOS: self.enos,
        }
        if provider not in tables:
            raise StoreError(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
        return tables[provider]

    def dump(self, provider: str) -> list[dict[str, Any]]:
        return [dataclasses.asdict(record) for record in self.table(provider)]

    def enos_asset(self, org: str, product_key: str, device_key: str) -> str | None:
        found = self.enos_devices.get(("keys", org, product_key, device_key))
        return None if found is None else found[2]

    def _enos_devices(self, batch: list[EnosCommand], *, fresh: bool) -> dict[Key, Key]:
        """The device index with ``batch`` added, or StoreError when a name meets two devices."""
        index = {} if fresh else dict(self.enos_devices)
        for r in batch:
            by_asset = ("asset", r.org, r.asset_id)
            by_keys = ("keys", r.org, r.product_key, r.device_key)
            if index.setdefault(by_asset, by_keys) != by_keys or (
                index.setdefault(by_keys, by_asset) != by_asset
            ):
                raise StoreError(
                    f"EnOS command {r.command_id}: asset {r.asset_id} and device "
                    f"{r.product_key}/{r.device_key} already name different devices"
                )
        return index


# --- Parsing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    record: type[Record]
    adapter: TypeAdapter[list[Any]]
    ids: tuple[tuple[str, IdPattern], ...]  # (field name, pattern)
    check: Callable[[Any], str | None] = lambda record: None  # what else is wrong, or None


def _windows_problem(batch: WindowsBatch) -> str | None:
    """What is wrong with a Windows batch beyond its ids and types, or None."""
    if len(batch.name) > 500:
        return "name: more than 500 characters"
    seen: set[str] = set()
    for index, action in enumerate(batch.actions):
        where = f"actions[{index}]"
        if not 1 <= len(action.cmd_id) <= 128:
            return f"{where}.cmd_id: 1 to 128 characters, not {len(action.cmd_id)}"
        if action.cmd_id in seen:
            return f"{where}.cmd_id: {action.cmd_id!r} twice in the batch"
        if action.status not in WINDOWS_STATUS_SET:
            return f"{where}.status: {action.status!r} is not a SyncML status name"
        if len(action.path) > 500 or len(action.value or "") > 500:
            return f"{where}: path and value hold at most 500 characters"
        if action.status_code is not None and action.status_code < 0:
            return f"{where}.status_code: negative"
        seen.add(action.cmd_id)
    return None


_SPECS: dict[str, _Spec] = {
    APPLE: _Spec(
        AppleCommand,
        TypeAdapter(list[AppleCommand]),
        (
            ("org", APPLIVERY_ORG),
            ("target_id", APPLIVERY_TARGET),
            ("command_id", APPLIVERY_COMMAND),
        ),
    ),
    ANDROID: _Spec(
        AndroidCommand,
        TypeAdapter(list[AndroidCommand]),
        (
            ("org", APPLIVERY_ORG),
            ("device_id", APPLIVERY_DEVICE),
            ("command_id", APPLIVERY_COMMAND),
        ),
    ),
    WINDOWS: _Spec(
        WindowsBatch,
        TypeAdapter(list[WindowsBatch]),
        (
            ("org", APPLIVERY_ORG),
            ("device_id", APPLIVERY_DEVICE),
            ("command_id", APPLIVERY_COMMAND),
        ),
        _windows_problem,
    ),
    ENOS: _Spec(
        EnosCommand,
        TypeAdapter(list[EnosCommand]),
        tuple((f, ENOS_ID) for f in ("org", "asset_id", "product_key", "device_key", "command_id")),
    ),
}


def parse(provider: str, raw: object) -> list[Record]:
    """Records of ``provider`` from JSON data (a list of dicts), ids checked, or StoreError."""
    if provider not in _SPECS:
        raise StoreError(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
    try:
        records: list[Record] = _SPECS[provider].adapter.validate_python(raw)
    except ValidationError as exc:
        raise StoreError(f"{provider} records: {exc}") from exc
    spec = _SPECS[provider]
    for index, record in enumerate(records):
        for name, pattern in spec.ids:
            problem = pattern.check(getattr(record, name))
            if problem is not None:
                raise StoreError(f"{provider} record {index}: {name}: {problem}")
        problem = spec.check(record)
        if problem is not None:
            raise StoreError(f"{provider} record {index}: {problem}")
    return records


def load_seed_file(path: Path) -> dict[str, list[Record]]:
    """``{"applivery-apple": [...], "applivery-windows": [...], ...}``, any subset of providers."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"seed file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise StoreError(f"seed file {path}: expected an object keyed by provider")
    return {provider: parse(provider, raw) for provider, raw in data.items()}


def iso(ms: int) -> str:
    """Epoch milliseconds as ``2026-02-10T12:00:00.000Z``."""
    stamp = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ms % 1000:03d}Z"
