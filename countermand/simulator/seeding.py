"""Deterministic generation of the simulator's store (``--devices``): one seed, the same records.

``generate`` draws everything, timestamps included, from ``random.Random(seed)`` around a fixed
base time. The mix per command: 60% pending, 10% Apple ``Retrying`` (pending on the other
providers), 20% already ran, 10% failed or canceled.

Windows batches are drawn after every other record, so adding them left the Apple, Android
and EnOS records of a seed as they were. A batch's kind (the same mix) sets the weights its
actions' statuses are drawn with (``_WINDOWS``); a batch holds 1 to 60 actions, half of the
batches up to 5, a fifth more than 20 (more than one page at the default limit of 10).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator

from countermand.simulator.state import (
    ANDROID,
    APPLE,
    ENOS,
    WINDOWS,
    AndroidCommand,
    AndroidStatus,
    AppleCommand,
    AppleStatus,
    EnosCommand,
    EnosState,
    Record,
    TargetType,
    WindowsAction,
    WindowsBatch,
    iso,
)
from countermand.simulator.syncml import CANCELED_STATUSES, STATUS_CODES, WindowsActionName

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
# Windows: per batch kind, its actions' statuses and their weights.
_WINDOWS: tuple[dict[str, int], ...] = (
    {"Pending": 6, "Awaiting": 2, "Acknowledged": 2},
    {"RequestFailRetryAfterSomeTime": 5, "Pending": 3, "Acknowledged": 2},
    {"Acknowledged": 17, "CommandNotFound": 1, "NotSupported": 1, "CommandFormatError": 1},
    {
        "OperationCanceled": 4,
        "CommandNotExecutedUserCanceled": 2,
        "FailedByRecipientUnderstoodTheCommand": 2,
        "UnexpectedError": 1,
        "Acknowledged": 1,
    },
)
_WINDOWS_SIZES = ((0.5, 1, 5), (0.8, 6, 20), (1.0, 21, 60))  # (draw below, fewest, most)
_WINDOWS_NAMES = ("Security Policy Update", "Device Restart", "Wi-Fi Profiles", "Remote Lock")
_WINDOWS_CONFIGS: tuple[tuple[str, WindowsActionName, str | None], ...] = (
    ("./Device/Vendor/MSFT/Policy/Config/Security/RequireDeviceEncryption", "Replace", "1"),
    ("./Device/Vendor/MSFT/Policy/Config/DeviceLock/DevicePasswordEnabled", "Replace", "0"),
    ("./Device/Vendor/MSFT/Policy/Config/Update/AllowAutoUpdate", "Replace", "3"),
    ("./Device/Vendor/MSFT/WiFi/Profile/Office/WlanXml", "Add", "<WLANProfile/>"),
    ("./Device/Vendor/MSFT/WiFi/Profile/Guest", "Delete", None),
    ("./Device/Vendor/MSFT/DeviceStatus/Compliance/EncryptionCompliance", "Get", None),
    ("./Device/Vendor/MSFT/Reboot/RebootNow", "Exec", None),
    ("./Device/Vendor/MSFT/RemoteWipe/doWipe", "Exec", None),
)


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

    def windows(self, org: str, count: int) -> Iterator[WindowsBatch]:
        device = self.device_id()
        for created in self.times(count):
            weights = _WINDOWS[self.kind()]
            draw = self.rng.random()
            low, high = next((low, high) for bound, low, high in _WINDOWS_SIZES if draw < bound)
            drawn = [self.action(created, weights) for _ in range(self.rng.randint(low, high))]
            updated = max(last for _, last in drawn)
            name = self.rng.choice(_WINDOWS_NAMES)
            actions = [action for action, _ in drawn]
            yield WindowsBatch(org, device, self.hex24(), name, iso(created), iso(updated), actions)

    def action(self, created: int, weights: dict[str, int]) -> tuple[WindowsAction, int]:
        """One action of a batch created at ``created``, and the time it last changed."""
        status = self.rng.choices(list(weights), list(weights.values()))[0]
        path, action, value = self.rng.choice(_WINDOWS_CONFIGS)
        cmd_id = self.unique(lambda: f"cmd-{uuid.UUID(int=self.rng.getrandbits(128), version=4)}")
        sent = created + self.rng.randrange(1_000, 60_000)
        received = sent + self.rng.randrange(1_000, 30_000)
        answered = status not in ("Pending", "Awaiting")
        canceled = status in CANCELED_STATUSES
        last = received if answered else sent if status == "Awaiting" else created
        return WindowsAction(
            cmd_id, status, path, action, value,
            status_code=STATUS_CODES.get(status),
            sent_at=iso(sent) if status != "Pending" else None,
            received_at=iso(received) if answered else None,
            canceled_at=iso(received) if canceled else None,
        ), last  # fmt: skip


def generate(
    seed: int, devices: int, per_device: int, applivery_org: str, enos_org: str
) -> dict[str, list[Record]]:
    """``devices`` devices per provider with ``per_device`` commands (Windows: batches) each."""
    gen = _Generator(seed)
    products = [gen.word(_ALNUM, 8) for _ in range(3)]
    result: dict[str, list[Record]] = {APPLE: [], ANDROID: [], WINDOWS: [], ENOS: []}
    for index in range(devices):
        result[APPLE].extend(gen.apple(applivery_org, per_device))
        result[ANDROID].extend(gen.android(applivery_org, per_device))
        result[ENOS].extend(gen.enos(enos_org, products[index % 3], per_device))
    for _ in range(devices):  # after the others: their records stay what they were
        result[WINDOWS].extend(gen.windows(applivery_org, per_device))
    return result
