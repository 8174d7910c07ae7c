"""Mixed cancel scenarios per provider: simulator records, input rows and the expected outcome
of every row (the simulator's truth). Ids are random, so scenarios never collide."""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, field
from typing import Any


def hex24() -> str:
    return secrets.token_hex(12)


@dataclass
class Scenario:
    provider: str
    org: str
    header: list[str]
    records: list[dict[str, Any]] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def add(self, row: list[str], outcome: str) -> None:
        self.rows.append(row)
        self.expected.append(outcome)

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return out.getvalue()


def apple(org: str, pending: int = 6, done: int = 3, missing: int = 2) -> Scenario:
    sc = Scenario("applivery-apple", org, ["target_id", "command_id", "target_type"])
    for i in range(pending + done):
        status = "Pending" if i % 2 else "Retrying"
        target_type = "deviceUser" if i % 3 == 0 else "device"
        record = {
            "org": org,
            "target_type": target_type,
            "target_id": f"SER{secrets.token_hex(5)}",
            "command_id": hex24(),
            "status": status if i < pending else "Acknowledged",
        }
        sc.records.append(record)
        row = [record["target_id"], record["command_id"], target_type]
        sc.add(row, "canceled" if i < pending else "not_pending")
    for _ in range(missing):
        sc.add([hex24(), hex24(), ""], "not_found")
    sc.add(["DEV 1", hex24(), ""], "invalid")  # space in the target id
    sc.add(["DEV1", "xyz", ""], "invalid")  # command id not 24 hex
    sc.add(["", hex24(), ""], "invalid")  # empty cell
    sc.add(list(sc.rows[0]), "invalid")  # duplicate of row 1
    return sc


def android(org: str, pending: int = 6, done: int = 3, missing: int = 2) -> Scenario:
    sc = Scenario("applivery-android", org, ["device_id", "command_id"])
    for i in range(pending + done):
        record = {"org": org, "device_id": hex24(), "command_id": hex24(),
                  "status": "PENDING" if i < pending else "DONE"}  # fmt: skip
        sc.records.append(record)
        sc.add(
            [record["device_id"], record["command_id"]],
            "cancel_requested" if i < pending else "not_pending",
        )
    for _ in range(missing):
        sc.add([hex24(), hex24()], "not_found")
    sc.add([hex24(), "5f8d0d55b54764421b7156c1\u00e9"], "invalid")
    return sc


def _enos_record(org: str, asset: str, state: int) -> dict[str, Any]:
    return {"org": org, "asset_id": asset, "product_key": f"pk{asset}", "device_key": f"dk{asset}",
            "command_id": str(secrets.randbelow(10**18) + 10**18), "state": state}  # fmt: skip


def enos(org: str, pending: int = 4) -> Scenario:
    sc = Scenario("enos", org, ["asset_id", "product_key", "device_key", "command_id"])
    for _ in range(pending):  # one cached command each, canceled by id
        rec = _enos_record(org, f"a{secrets.token_hex(4)}", 1)
        sc.records.append(rec)
        sc.add([rec["asset_id"], "", "", rec["command_id"]], "canceled")
    asset = f"a{secrets.token_hex(4)}"  # two cached commands, canceled device-wide
    sc.records += [_enos_record(org, asset, 1), _enos_record(org, asset, 1)]
    sc.add([asset, "", "", ""], "canceled")
    rec = _enos_record(org, f"a{secrets.token_hex(4)}", 1)  # by product and device key
    sc.records.append(rec)
    sc.add(["", rec["product_key"], rec["device_key"], rec["command_id"]], "canceled")
    rec = _enos_record(org, f"a{secrets.token_hex(4)}", 5)  # already sent: nothing cached
    sc.records.append(rec)
    sc.add([rec["asset_id"], "", "", rec["command_id"]], "nothing_pending")
    # A device EnOS does not know: by command id EnOS says so (11404), and so does the search
    # of a device-wide row (it names the device in its query).
    sc.add([f"missing{secrets.token_hex(4)}", "", "", "1234567890123456789"], "not_found")
    sc.add([f"missing{secrets.token_hex(4)}", "", "", ""], "not_found")
    sc.add(["bad asset", "", "", ""], "invalid")
    sc.add(["", "pk-only", "", ""], "invalid")
    return sc


SCENARIOS = {"applivery-apple": apple, "applivery-android": android, "enos": enos}
