"""End to end: stale cleanup policies, discovery over several pages, dry run."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.checks import report
from tests.harness import SimulatorProcess, WorkerProcess, cli
from tests.scenarios import hex24

pytestmark = pytest.mark.e2e
OLD_MS = 1_770_724_800_000  # Feb 2026: long before "72h ago"


def with_policies(env: dict[str, str], folder: Path, text: str) -> dict[str, str]:
    path = folder / "policies.toml"
    path.write_text(text)
    return {**env, "COUNTERMAND_POLICIES_FILE": str(path)}


def enos_command(org: str, asset: str, state: int, created_ms: int) -> dict[str, object]:
    return {"org": org, "asset_id": asset, "product_key": f"pk{asset}", "device_key": f"dk{asset}",
            "command_id": str(secrets.randbelow(10**18) + 10**18), "state": state,
            "create_time": created_ms, "command_name": "Int_value"}  # fmt: skip


def test_enos_stale_discovery_over_several_pages(
    env: dict[str, str], sim: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    org = f"o{secrets.randbelow(10**12)}"
    now_ms = int(time.time() * 1000)
    stale = [enos_command(org, f"a{i % 40}", 1, OLD_MS + i) for i in range(230)]
    fresh = [enos_command(org, "a1", 1, now_ms) for _ in range(5)]
    sent = [enos_command(org, "a2", 5, OLD_MS) for _ in range(5)]
    sim.client.add_commands("enos", stale + fresh + sent)
    policy_env = with_policies(
        env,
        tmp_path,
        f"""
[policy.enos-stale]
provider = "enos"
org = "{org}"
older_than = "72h"
schedule = "0 3 * * *"
""",
    )
    sim.client.reset_requests()
    done = cli(policy_env, "cleanup", "run", "enos-stale", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["name"] == "cleanup:enos-stale" and info["status"] == "completed"
    assert info["total"] == 230 and info["counts"]["canceled"] == 230
    mine = [c for c in sim.client.requests()["requests"] if c["tenant"] == f"enos:{org}"]
    # the org's devices are listed (V2.4 Search Device, one page of 50), then each device is
    # searched with the device in the query (one page each: a device caches few commands)
    assert [c["route"] for c in mine if c["route"] == "enos.devices"] == ["enos.devices"]
    searches = sorted(c["key"] for c in mine if c["route"] == "enos.search")
    assert searches == sorted(f"a{i}" for i in range(40))
    canceled_ids = {r["canceled_command_ids"] for r in report(policy_env, info["job_id"])}
    assert canceled_ids == {c["command_id"] for c in stale}
    listed = json.loads(cli(env, "jobs", "--json").stdout)
    assert listed[0]["name"] == "cleanup:enos-stale"


def android_org(sim: SimulatorProcess, devices: int) -> tuple[str, set[tuple[str, str]]]:
    org = f"org-{secrets.token_hex(4)}"
    fresh = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    records, stale = [], set()
    for _ in range(devices):
        device = hex24()
        for i in range(7):
            status = "DONE" if i == 6 else "PENDING"
            created = fresh if i == 5 else "2026-02-10T12: 00: 00.000Z"  # the docs' odd format
            command = hex24()
            records.append({"org": org, "device_id": device, "command_id": command,
                            "status": status, "created_at": created})  # fmt: skip
            if status == "PENDING" and i != 5:
                stale.add((device, command))
    sim.client.add_commands("applivery-android", records)
    return org, stale


def test_applivery_stale_discovery_pages_devices_and_commands(
    env: dict[str, str], sim: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    org, stale = android_org(sim, devices=12)
    policy_env = with_policies(
        env,
        tmp_path,
        f"""
[policy.android-stale]
provider = "applivery-android"
org = "{org}"
older_than = "72h"
page_size = 5
""",
    )
    done = cli(policy_env, "cleanup", "run", "android-stale", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["total"] == len(stale) == 60
    assert info["counts"]["cancel_requested"] == 60
    found = {(r["device_id"], r["command_id"]) for r in report(policy_env, info["job_id"])}
    assert found == stale
    lists = [c for c in sim.client.requests()["requests"] if c["tenant"] == f"applivery:{org}"
             and c["route"] in ("android.devices", "android.list")]  # fmt: skip
    assert sum(c["route"] == "android.devices" for c in lists) == 3  # 12 devices, 5 a page
    assert sum(c["route"] == "android.list" for c in lists) == 24  # 7 commands: 2 pages each


def test_dry_run_cleanup_sends_no_cancel(
    env: dict[str, str], sim: SimulatorProcess, worker: WorkerProcess, tmp_path: Path
) -> None:
    org, stale = android_org(sim, devices=3)
    policy_env = with_policies(
        env,
        tmp_path,
        f"""
[policy.android-dry]
provider = "applivery-android"
org = "{org}"
older_than = "72h"
""",
    )
    done = cli(policy_env, "cleanup", "run", "android-dry", "--dry-run", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["dry_run"] is True and info["counts"]["would_cancel"] == len(stale) == 15
    cancels = [c for c in sim.client.requests(route="android.cancel")["requests"]
               if c["tenant"] == f"applivery:{org}"]  # fmt: skip
    assert cancels == []


def test_bad_policy_file_says_where(env: dict[str, str], tmp_path: Path) -> None:
    policy_env = with_policies(env, tmp_path, '[policy.x]\nprovider = "enos"\norg = "o1"\n'
                               'older_than = "soon"\n')  # fmt: skip
    done = cli(policy_env, "cleanup", "run", "x")
    assert done.returncode == 2
    assert "policies.toml: [policy.x] older_than" in done.stderr


def test_two_beat_processes_fire_each_slot_once(
    redis_url: str, sim: SimulatorProcess, credentials_file: Path, e2e_dir: Path, tmp_path: Path
) -> None:
    from tests.conftest import e2e_env
    from tests.harness import BeatProcess, cli_json, wait_for

    org = f"o{secrets.randbelow(10**12)}"
    sim.client.add_commands("enos", [enos_command(org, "a1", 1, OLD_MS) for _ in range(3)])
    env = with_policies(
        e2e_env(redis_url, sim.url, credentials_file, db=6),
        tmp_path,
        f"""
[policy.every-minute]
provider = "enos"
org = "{org}"
older_than = "1h"
schedule = "* * * * *"
""",
    )
    worker = WorkerProcess(e2e_dir, env)
    beats = [BeatProcess(e2e_dir, env, f"slot-{name}") for name in ("a", "b")]
    try:

        def first_run() -> list[dict[str, object]] | None:
            runs = [
                j for j in cli_json(env, "jobs", "--json") if j["name"] == "cleanup:every-minute"
            ]
            return runs or None

        runs = wait_for(first_run, 90, "the first scheduled cleanup", every=1.0)
        minute = int(runs[0]["created_at"]) // 60  # type: ignore[call-overload]
        # let both beats tick through the rest of that minute slot
        wait_for(lambda: time.time() // 60 > minute and time.time() % 60 > 5, 70,
                 "the slot to pass", every=1.0)  # fmt: skip
        runs = [j for j in cli_json(env, "jobs", "--json") if j["name"] == "cleanup:every-minute"]
        in_slot = [j for j in runs if int(j["created_at"]) // 60 == minute]
        assert len(in_slot) == 1
        assert in_slot[0]["counts"]["canceled"] == 3 or in_slot[0]["total"] == 3
    finally:
        for beat in beats:
            beat.stop()
        worker.stop()
