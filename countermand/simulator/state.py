"""The simulator's command store: records per provider, seeded deterministically.

Three providers, one record class each (``GET /_sim/commands`` returns them as dicts with these
field names; a seed file and ``POST /_sim/commands`` take the same dicts back):

* ``applivery-apple``: ``AppleCommand``, keyed by (org, target type, target id, command id);
  ``Pending`` and ``Retrying`` are cancelable.
* ``applivery-android``: ``AndroidCommand``, keyed by (org, device id, command id), grouped by
  device for the paginated list; only ``PENDING`` is cancelable.
* ``enos``: ``EnosCommand``, keyed by (org, command id), grouped by device (org, asset id). A
  device has two names, its asset id and (product key, device key): records that would make
  either name two devices are refused. ``state`` 1 (created: cached) is cancelable.

``generate`` draws everything, timestamps included, from ``random.Random(seed)`` around a fixed
base time, so one seed always gives the same records. The mix per command: 60% pending, 10%
Apple ``Retrying`` (pending on the other providers), 20% already ran, 10% failed or canceled.
A seed file's records are added after the generated ones (same key: the file's record wins).
"""

from __future__ import annotations

import dataclasses
import json
import random
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

APPLE = "applivery-apple"
ANDROID = "applivery-android"
ENOS = "enos"
PROVIDERS = (APPLE, ANDROID, ENOS)

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


Record = AppleCommand | AndroidCommand | EnosCommand
R = TypeVar("R", AppleCommand, AndroidCommand, EnosCommand)
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
        tables: dict[str, Table[Any]] = {APPLE: self.apple, ANDROID: self.android, ENOS: self.enos}
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
    for index, record in enumerate(records):
        for name, pattern in _SPECS[provider].ids:
            problem = pattern.check(getattr(record, name))
            if problem is not None:
                raise StoreError(f"{provider} record {index}: {name}: {problem}")
    return records


def load_seed_file(path: Path) -> dict[str, list[Record]]:
    """``{"applivery-apple": [...], "applivery-android": [...], "enos": [...]}``, any subset."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"seed file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise StoreError(f"seed file {path}: expected an object keyed by provider")
    return {provider: parse(provider, raw) for provider, raw in data.items()}


# --- Generation ---------------------------------------------------------------------------

BASE_MS = 1_770_724_800_000  # 2026-02-10T12:00:00Z: generated times lie in the 30 days before
_MONTH_MS = 30 * 86_400_000
_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
_ALNUM = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
_KINDS = ((0.6, 0), (0.7, 1), (0.9, 2), (1.0, 3))  # pending, retrying, ran, failed/canceled
# What a command has become, per kind (one of the tuple, drawn evenly).
_APPLE: tuple[tuple[AppleStatus, ...], ...] = (
    ("Pending",),
    ("Retrying",),
    ("Acknowledged",),
    ("Error", "Canceled"),
)
_ANDROID: tuple[tuple[AndroidStatus, ...], ...] = (
    ("PENDING",),
    ("PENDING",),
    ("DONE",),
    ("FAILED", "CANCELLED"),
)
_ENOS: tuple[tuple[EnosState, ...], ...] = ((1,), (1,), (4, 5), (2, 3, 6, 7))


def iso(ms: int) -> str:
    """Epoch milliseconds as ``2026-02-10T12:00:00.000Z``."""
    stamp = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ms % 1000:03d}Z"


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seen: set[str] = set()

    def kind(self) -> int:
        draw = self.rng.random()
        return next(kind for bound, kind in _KINDS if draw < bound)

    def unique(self, make: Callable[[], str]) -> str:
        value = make()
        while value in self.seen:
            value = make()
        self.seen.add(value)
        return value

    def hex24(self) -> str:
        return self.unique(lambda: f"{self.rng.getrandbits(96):024x}")

    def word(self, alphabet: str, size: int) -> str:
        return self.unique(lambda: "".join(self.rng.choices(alphabet, k=size)))

    def device_id(self) -> str:
        draw = self.rng.random()
        if draw < 0.5:
            return self.hex24()
        return self.word(_UPPER, 12) if draw < 0.8 else self.word("0123456789", 15)  # serial, IMEI

    def times(self, count: int) -> list[int]:
        return sorted(BASE_MS - self.rng.randrange(_MONTH_MS) for _ in range(count))

    def apple(self, org: str, count: int) -> Iterator[AppleCommand]:
        user = self.rng.random() < 0.15
        target_type: TargetType = "deviceUser" if user else "device"
        target = self.hex24() if user else self.device_id()
        for sent in self.times(count):
            status = self.rng.choice(_APPLE[self.kind()])
            tried, ran = iso(sent + 60_000), status in ("Acknowledged", "Error")
            yield AppleCommand(
                org, target_type, target, self.hex24(), status,
                request_type=self.rng.choice(["DeviceLock", "EraseDevice", "InstallProfile"]),
                sent_at=iso(sent),
                received_at=tried if ran else None,
                tried_at=tried if ran or status == "Retrying" else None,
                canceled_at=iso(sent + 120_000) if status == "Canceled" else None,
                num_tries={"Retrying": 2, "Acknowledged": 1, "Error": 1}.get(status, 0),
            )  # fmt: skip

    def android(self, org: str, count: int) -> Iterator[AndroidCommand]:
        device = self.device_id()
        for created in self.times(count):
            status = self.rng.choice(_ANDROID[self.kind()])
            updated = created if status == "PENDING" else created + 90_000
            kind = self.rng.choice(["LOCK", "REBOOT", "RESET_PASSWORD"])
            command_id = self.hex24()
            yield AndroidCommand(org, device, command_id, status, kind, iso(created), iso(updated))

    def enos(self, org: str, product_key: str, count: int) -> Iterator[EnosCommand]:
        asset, device_key = self.word(_ALNUM, 8), self.word(_ALNUM, 10)
        for created in self.times(count):
            state = self.rng.choice(_ENOS[self.kind()])
            name = self.rng.choice(["Int_value", "reboot", "set_mode"])
            command_id = self.unique(lambda: str(self.rng.randrange(10**18, 10**19)))
            value = self.rng.randrange(1000) if name == "Int_value" else None
            yield EnosCommand(
                org, asset, product_key, device_key, command_id, state, created,
                command_name=name, tsl_identifier=name, input_data=value,
            )  # fmt: skip


def generate(
    seed: int, devices: int, per_device: int, applivery_org: str, enos_org: str
) -> dict[str, list[Record]]:
    """``devices`` devices per provider with ``per_device`` commands each; same seed, same data."""
    gen = _Generator(seed)
    products = [gen.word(_ALNUM, 8) for _ in range(3)]
    result: dict[str, list[Record]] = {APPLE: [], ANDROID: [], ENOS: []}
    for index in range(devices):
        result[APPLE].extend(gen.apple(applivery_org, per_device))
        result[ANDROID].extend(gen.android(applivery_org, per_device))
        result[ENOS].extend(gen.enos(enos_org, products[index % 3], per_device))
    return result
