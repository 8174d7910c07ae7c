"""docker-compose.yml is valid against the official Compose schema and fits the README."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"  # the official schema (../shared/schemas)


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
    assert compose["services"]["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


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


def default_profile(compose: dict[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in compose["services"].items() if not s.get("profiles")}


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name in ("cli", "simulator"):
            continue
        check = service.get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL"), name
        if check["test"][1] == "python":  # the inline check at least compiles
            compile(check["test"][-1], f"{name} healthcheck", "exec")


def test_the_simulator_is_only_in_the_demo_profile(compose: dict[str, Any]) -> None:
    assert compose["services"]["simulator"]["profiles"] == ["demo"]
    assert compose["services"]["cli"]["profiles"] == ["cli"]
    assert {"redis", "api", "worker", "beat"} <= set(default_profile(compose))
    for name, service in default_profile(compose).items():
        assert "env_file" not in service, name
        text = json.dumps(service.get("environment") or {})
        assert "simulator" not in text and "sim-" not in text, (name, text)
        assert "simulator" not in json.dumps(service.get("depends_on") or {}), name


def test_the_demo_env_points_every_vendor_at_the_simulator(compose: dict[str, Any]) -> None:
    lines = (ROOT / "demo.env").read_text().splitlines()
    demo = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert demo["COUNTERMAND_APPLIVERY_URL"] == demo["COUNTERMAND_ENOS_URL"]
    assert demo["COUNTERMAND_APPLIVERY_URL"] == "http://simulator:8080"
    assert demo["COUNTERMAND_APPLIVERY_TOKEN"].startswith("sim-")
    command = compose["services"]["simulator"]["command"]
    assert command[command.index("--port") + 1] == "8080"
    for name in ("api", "worker", "beat", "cli"):  # each variable passed through, unset stays
        environment = compose["services"][name]["environment"]
        assert {k: environment[k] for k in demo} == dict.fromkeys(demo), name


def test_the_worker_serves_metrics_and_pings_its_own_node(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    command = worker["command"]
    assert command[command.index("--metrics-port") + 1] == "9100"
    assert command[command.index("-n") + 1] == "worker@%h"
    check = worker["healthcheck"]["test"]
    assert check[0] == "CMD-SHELL" and "celery -A worker.app inspect ping" in check[1]
    assert "-d worker@$$HOSTNAME" in check[1]  # $$: expanded in the container, not by Compose
    assert worker["stop_grace_period"]


def test_the_api_is_published_and_checked_on_readyz(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    assert api["command"] == ["api", "--host", "0.0.0.0", "--port", "8000"]
    assert "8000:8000" in api["ports"]
    assert "urllib.request.urlopen('http://127.0.0.1:8000/readyz'" in api["healthcheck"]["test"][-1]


def test_two_beats_run_behind_redbeats_lock(compose: dict[str, Any]) -> None:
    beat = compose["services"]["beat"]
    assert beat["command"] == ["beat"] and beat["deploy"]["replicas"] == 2
    assert "RedBeatConfig(app).lock_key" in beat["healthcheck"]["test"][-1]
