"""Who may do what, over every route of the OpenAPI document: no key and a wrong key are 401,
a viewer key may read and nothing else (403), a key limited to orgs sees and acts on those
orgs' jobs only (403 otherwise), an operator key may do everything; the open routes stay open;
no key ever appears in a log, a report or a Redis value."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.harness import ApiProcess, WorkerProcess, make_key
from tests.test_e2e_api import CSV

pytestmark = pytest.mark.e2e
MINE, THEIRS = "org-mine-" + secrets.token_hex(3), "org-theirs-" + secrets.token_hex(3)


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "policies.toml"
    path.write_text(f"""
[policy.theirs]
provider = "applivery-android"
org = "{THEIRS}"
older_than = "72h"
dry_run = true
devices_file = "devices.txt"
""")
    (path.parent / "devices.txt").write_text("")
    return path


@pytest.fixture(scope="module")
def auth_api(e2e_dir: Path, env: dict[str, str], policies: Path) -> Iterator[ApiProcess]:
    process = ApiProcess(e2e_dir, env, policies_file=str(policies))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def keys(env: dict[str, str]) -> dict[str, str]:
    return {
        "operator": make_key(env, f"op-{secrets.token_hex(3)}", "operator"),
        "viewer": make_key(env, f"vw-{secrets.token_hex(3)}", "viewer"),
        "limited": make_key(env, f"lm-{secrets.token_hex(3)}", "operator", MINE),
    }


def new_job(api: ApiProcess, key: str, org: str) -> str:
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {key}"}) as http:
        answer = http.post("/v1/jobs", params={"provider": "applivery-apple", "org": org,
                                               "dry_run": True},
                           content=b"target_id,command_id\n", headers=CSV)  # fmt: skip
        assert answer.status_code == 201, answer.text
        return str(answer.json()["job_id"])


def routes(api: ApiProcess) -> list[tuple[str, str]]:
    doc = httpx.get(api.url + "/openapi.json").json()
    return [(m.upper(), p) for p, ops in doc["paths"].items() for m in ops if p.startswith("/v1")]


def call(api: ApiProcess, key: str | None, method: str, path: str, org: str) -> int:
    params: dict[str, Any] = {}
    content = None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if path in ("/v1/jobs", "/v1/polls") and method == "POST":
        params = {"provider": "applivery-apple", "org": org, "dry_run": True}
        if path == "/v1/polls":
            params.pop("dry_run")
        content, headers = b"target_id,command_id\n", {**headers, **CSV}
    with httpx.Client(base_url=api.url, timeout=30) as http:
        answer = http.request(method, path, params=params, content=content, headers=headers)
        return answer.status_code


def fill(path: str, job_id: str) -> str:
    return path.replace("{job_id}", job_id).replace("{name}", "theirs")


def test_every_route_for_every_kind_of_caller(
    auth_api: ApiProcess, keys: dict[str, str], worker: WorkerProcess
) -> None:
    table = routes(auth_api)
    assert len(table) >= 15
    refused: list[tuple[str, str, str, int]] = []
    for method, path in table:
        job = new_job(auth_api, keys["operator"], THEIRS)
        for who, key in (("nobody", None), ("wrong", "cmk_" + "0" * 16 + "_" + "x" * 43)):
            if (got := call(auth_api, key, method, fill(path, job), THEIRS)) != 401:
                refused.append((who, method, path, got))
        viewer = call(auth_api, keys["viewer"], method, fill(path, job), THEIRS)
        if (method == "GET") != (viewer not in (401, 403)):
            refused.append(("viewer", method, path, viewer))
        limited = call(auth_api, keys["limited"], method, fill(path, job), THEIRS)
        about_a_job = "{job_id}" in path or "{name}" in path or method == "POST"
        if about_a_job and limited != 403:
            refused.append(("limited, another org", method, path, limited))
        if not about_a_job and limited in (401, 403):
            refused.append(("limited, a list", method, path, limited))
        operator = call(auth_api, keys["operator"], method, fill(path, job), THEIRS)
        if operator in (401, 403) or operator >= 500:
            refused.append(("operator", method, path, operator))
    assert refused == []


def test_a_limited_key_works_within_its_orgs(auth_api: ApiProcess, keys: dict[str, str]) -> None:
    mine = new_job(auth_api, keys["limited"], MINE)
    theirs = new_job(auth_api, keys["operator"], THEIRS)
    auth = {"Authorization": f"Bearer {keys['limited']}"}
    with httpx.Client(base_url=auth_api.url, headers=auth) as http:
        assert http.get(f"/v1/jobs/{mine}").status_code == 200
        assert http.get(f"/v1/jobs/{theirs}").status_code == 403
        listed = {j["job_id"] for j in http.get("/v1/jobs", params={"limit": 500}).json()["jobs"]}
        assert mine in listed and theirs not in listed
        assert http.get("/v1/policies").json()["policies"] == []  # the policy is THEIRS's
        assert http.delete(f"/v1/jobs/{mine}").status_code == 204


def test_open_routes_need_no_key(auth_api: ApiProcess) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs", "/", "/metrics"):
        assert httpx.get(auth_api.url + path).status_code == 200, path
    assert httpx.post(auth_api.url + "/session", json={"key": "x"}).status_code == 401


def test_no_key_in_any_log_or_redis_value(
    auth_api: ApiProcess, keys: dict[str, str], redis_url: str, e2e_dir: Path
) -> None:
    # cmk_<id>_<secret>: the secret itself may hold "_", so split from the left
    secrets_ = [k.split("_", 2)[2] for k in keys.values()] + list(keys.values())
    client = redis.Redis.from_url(redis_url)
    try:
        for name in client.scan_iter(count=1000):
            dump = repr(client.dump(name))
            assert not [s for s in secrets_ if s in dump], name
    finally:
        client.close()
    for log in e2e_dir.glob("*.log"):
        text = log.read_text(errors="replace")
        assert not [s for s in secrets_ if s in text], log
