"""The API against its own OpenAPI document (schemathesis), live: real Redis, real workers,
the simulator. Every operation is exercised with generated requests; no answer is a 5xx and
every answer matches the document (status, content type, schema)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import NIGHTLY
from tests.harness import ApiProcess, WorkerProcess, make_key
from tests.test_e2e_api import CSV

pytestmark = pytest.mark.e2e
STATE: dict[str, str] = {}


@schemathesis.serializer("text/csv", "application/x-ndjson")
def as_text(ctx: Any, value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else str(value).encode()


@schemathesis.hook
def map_path_parameters(ctx: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Half the time, a job that exists (so the routes go past their 404)."""
    known = STATE.get("job")
    if path_parameters and "job_id" in path_parameters and known and secrets.randbelow(2):
        path_parameters["job_id"] = known
    return path_parameters


@pytest.fixture(scope="module")
def openapi_api(e2e_dir: Path, env: dict[str, str], worker: WorkerProcess) -> Iterator[ApiProcess]:
    process = ApiProcess(e2e_dir, env, api_max_upload_bytes="100000")
    key = make_key(env, f"fuzz-{secrets.token_hex(3)}", "operator")
    STATE["key"] = key
    with httpx.Client(base_url=process.url, headers={"Authorization": f"Bearer {key}"}) as http:
        job = http.post("/v1/jobs", params={"provider": "applivery-apple", "org": "acme-corp",
                                            "dry_run": True},
                        content=b"target_id,command_id\nSER1,5f8d0d55b54764421b7156c1\n",
                        headers=CSV)  # fmt: skip
        STATE["job"] = job.json()["job_id"]
    yield process
    process.stop()


def operations(api: ApiProcess) -> list[Any]:
    loaded = schemathesis.openapi.from_url(api.url + "/openapi.json")
    return [result.ok() for result in loaded.get_all_operations()]


def test_every_operation_matches_the_document(openapi_api: ApiProcess) -> None:
    """Each operation in turn, with generated requests (schemathesis' pytest plugin does not run
    on this pytest: it reaches into pytest's internals; so the strategies are driven here)."""
    found = operations(openapi_api)
    assert len(found) >= 20, [op.label for op in found]
    failed: list[str] = []
    for operation in found:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=200 if NIGHTLY else 50,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {STATE['key']}"},
                # A request valid for the document can still be refused (422): an org's pattern
                # depends on the provider, a rule the document cannot state. Every other check
                # runs: no 5xx, status, content type and schema of every answer, and
                # invalid requests refused.
                excluded_checks=[schemathesis.checks.positive_data_acceptance],
            )

        try:
            check()
        except Exception as exc:  # every operation runs; the failures are listed together
            failed.append(f"{operation.label}: {exc}"[:2000])
    assert failed == [], "\n\n".join(failed)
