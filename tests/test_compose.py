"""docker-compose.yml is valid against the official Compose schema and fits the README."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_valid_against_the_compose_schema(compose: dict[str, Any]) -> None:
    if not SCHEMA.exists():
        pytest.fail(f"the Compose schema is expected at {SCHEMA}")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator(schema).validate(compose)  # the schema declares draft-07


def test_redis_is_durable_and_never_evicts(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    pairs = dict(zip(command[1::2], command[2::2], strict=False))
    assert pairs["--appendonly"] == "yes"
    assert pairs["--appendfsync"] == "everysec"
    assert pairs["--maxmemory-policy"] == "noeviction"


def test_worker_scales(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"][0] == "worker"
    assert worker["environment"]["COUNTERMAND_REDIS_URL"] == "redis://redis:6379/0"


def test_services_match_the_readme(compose: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text()
    for service in ("redis", "worker", "simulator"):
        assert service in compose["services"]
    assert "docker compose up -d --scale worker=" in readme
