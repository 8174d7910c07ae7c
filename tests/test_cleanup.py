"""Policies that never stop a worker: lenient reading, cron by Celery's own parser, beat skips a
bad policy, ``cleanup check``; a scheduled slot runs once, never over a running cleanup."""

from __future__ import annotations

import logging
import secrets
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from countermand.cleanup import read_policies, run_scheduled
from countermand.runtime import Runtime
from countermand.settings import Settings
from schedules import beat_schedule, cron_problem, parse_cron
from tests.conftest import fast_settings, run, unit_db
from tests.harness import SimulatorProcess, cli
from tests.test_e2e_cleanup import OLD_MS, enos_command

GOOD = """
[policy.nightly]
provider = "enos"
org = "o1"
older_than = "72h"
schedule = "0 3 * * *"
"""
BAD_CRON = """
[policy.typo]
provider = "enos"
org = "o1"
older_than = "1h"
schedule = "99 * * * *"
"""
BAD_FIELD = """
[policy.broken]
provider = "windows"
org = "o1"
older_than = "soon"
"""


def policies(tmp_path: Path, *parts: str) -> Path:
    path = tmp_path / "policies.toml"
    path.write_text("\n".join(parts))
    return path


def test_one_bad_policy_does_not_hide_the_good_ones(tmp_path: Path) -> None:
    found = read_policies(policies(tmp_path, GOOD, BAD_FIELD))
    assert list(found.policies) == ["nightly"]
    assert any("[policy.broken] provider" in p for p in found.problems)
    assert any("[policy.broken] older_than" in p for p in found.problems)
    assert all(str(tmp_path / "policies.toml") in p for p in found.problems)


def test_cron_is_parsed_by_celerys_own_parser(tmp_path: Path) -> None:
    found = read_policies(policies(tmp_path, BAD_CRON))
    problem = cron_problem(found.policies["typo"], "p.toml")
    assert problem is not None and "[policy.typo] schedule" in problem and "minute '99'" in problem
    assert parse_cron("*/5 2-4 * * mon-fri") is not None
    with pytest.raises(ValueError, match="5 fields"):
        parse_cron("0 3 * *")


def test_beat_skips_and_logs_a_bad_policy(
    tmp_path: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    path = policies(tmp_path, GOOD, BAD_CRON, BAD_FIELD)
    with caplog.at_level(logging.ERROR, logger="countermand.beat"):
        entries = beat_schedule(settings.model_copy(update={"policies_file": path}))
    assert set(entries) == {"retry-sweep", "cleanup:nightly"}
    logged = caplog.text
    assert "[policy.typo] schedule" in logged and "[policy.broken]" in logged


def test_a_malformed_file_still_gives_beat_its_retry_sweep(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "policies.toml"
    path.write_text("[policy.x\n")
    entries = beat_schedule(settings.model_copy(update={"policies_file": path}))
    assert list(entries) == ["retry-sweep"]


def test_the_worker_app_imports_with_a_bad_policies_file(tmp_path: Path) -> None:
    path = policies(tmp_path, BAD_CRON, "[policy.x\n")
    done = subprocess.run(
        [sys.executable, "-c", "import worker.app; print('ok')"],
        env={"COUNTERMAND_POLICIES_FILE": str(path), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize(
    ("parts", "code", "says"),
    [
        ((GOOD,), 0, "1 policies, no problem"),
        ((GOOD, BAD_CRON), 2, "[policy.typo] schedule"),
        ((BAD_FIELD,), 2, "[policy.broken] older_than"),
    ],
)
def test_cleanup_check(
    tmp_path: Path, env: dict[str, str], parts: Sequence[str], code: int, says: str
) -> None:
    path = policies(tmp_path, *parts)
    done = cli(env, "cleanup", "check", str(path))
    assert done.returncode == code, done.stderr
    assert says in done.stderr and str(path) in done.stderr


def test_a_slot_runs_once_and_never_over_a_running_cleanup(
    redis_url: str, sim: SimulatorProcess, tmp_path: Path
) -> None:
    org = f"o{secrets.randbelow(10**12)}"
    sim.client.add_commands("enos", [enos_command(org, "a1", 1, OLD_MS) for _ in range(3)])
    path = policies(tmp_path, GOOD.replace('"o1"', f'"{org}"'))
    settings = fast_settings(
        unit_db(redis_url), policies_file=path, enos_url=sim.url, enos_access_key="sim-access-key",
        enos_secret_key="sim-secret-key",
    )  # fmt: skip

    async def main() -> None:
        rt = await Runtime.open(settings)
        try:
            await rt.store.redis.flushdb()
            first = await run_scheduled(rt, "nightly")
            assert first is not None
            assert await rt.store.claim("o", 1000, 2, "r", 1000, {}) == (first, 0)  # released
            assert await run_scheduled(rt, "nightly") is None  # the same slot: once
            await rt.store.redis.delete(*[k async for k in rt.store.redis.scan_iter(
                match="cm:cleanup:nightly:[0-9]*")])  # fmt: skip
            assert await run_scheduled(rt, "nightly") is None  # the first still runs
            info = await rt.store.info(first)
            assert info.status.value == "queued" and info.name == "cleanup:nightly"
            assert info.priority == "bulk"  # cleanup jobs give way by default
        finally:
            await rt.close()

    run(main())
