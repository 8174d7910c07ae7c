"""The dashboard as a person uses it, in a real headless Chromium (Playwright): log in through
the form, submit a job through the form against the simulator (dry run first, then for real)
and follow it live to ``completed`` without a reload, pause and resume a running job, download
its report, run a policy, and a viewer key that sees no controls. Screenshots of every page go
to docs/screenshots/ (overwritten on each run)."""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Route,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.harness import ApiProcess, SimulatorProcess, WorkerProcess, make_key
from tests.scenarios import apple

pytestmark = pytest.mark.e2e
SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
FLAGS = [
    *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
]
LAPTOP: ViewportSize = {"width": 1366, "height": 860}
CSV = {"Content-Type": "text/csv"}
CSP = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
POLICY = "nightly-apple"
JOB_MS = 60_000  # the longest wait for a job's status (the jobs take a few seconds)


@pytest.fixture(scope="module")
def dashboard(e2e_dir: Path, env: dict[str, str]) -> Iterator[ApiProcess]:
    policies = e2e_dir / "dashboard-policies.toml"
    policies.write_text(f"""
[policy.{POLICY}]
provider = "applivery-apple"
org = "org-policy-{secrets.token_hex(3)}"
older_than = "72h"
schedule = "0 3 * * *"
devices_file = "dashboard-devices.txt"

[policy.broken]
provider = "enos"
org = "o1"
older_than = "soon"
""")
    (e2e_dir / "dashboard-devices.txt").write_text("")
    process = ApiProcess(e2e_dir, env, policies_file=str(policies))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def keys(env: dict[str, str]) -> dict[str, str]:
    return {
        "operator": make_key(env, f"dash-op-{secrets.token_hex(3)}", "operator"),
        "viewer": make_key(env, f"dash-view-{secrets.token_hex(3)}", "viewer"),
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM, "Chromium is missing: apt-get install chromium (tests/run.sh does)"
    expect.set_options(timeout=10_000)  # a loaded CI machine; the jobs' own waits are longer
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookie). The page is served with a strict Content Security
    Policy (no inline script or style, nothing from elsewhere); any uncaught script error or
    CSP violation fails the test."""
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True)
    context.route(re.compile(r"^http://127\.0\.0\.1:\d+/$"), with_csp)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            problems.append(message.text)

    opened.on("console", console)
    yield opened
    context.close()
    assert problems == []


def with_csp(route: Route) -> None:
    answer = route.fetch()
    route.fulfill(response=answer, headers={**answer.headers, "content-security-policy": CSP})


def log_in(page: Page, api: ApiProcess, key: str) -> None:
    page.goto(api.url + "/")
    page.get_by_test_id("login-key").fill(key)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("topbar")).to_be_visible()


def start_job(api: ApiProcess, key: str, provider: str, org: str, text: str, **params: Any) -> str:
    """A job started through the API itself (a Bearer key), as a script would."""
    answer = httpx.post(
        f"{api.url}/v1/jobs",
        params={"provider": provider, "org": org, **params},
        content=text.encode(),
        headers={**CSV, "Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["job_id"])


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def throttling(sim: SimulatorProcess) -> Iterator[SimulatorProcess]:
    """The simulator answers 429 over 30 requests/s per tenant (the chart shows them)."""
    sim.client.config(rate_limit=30)
    yield sim
    sim.client.config(rate_limit=0)


def test_submit_through_the_form_and_follow_it_live(
    dashboard: ApiProcess,
    keys: dict[str, str],
    page: Page,
    throttling: SimulatorProcess,
    worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    sc = apple(f"org-{secrets.token_hex(4)}", pending=140, done=10, missing=0)
    throttling.client.add_commands(sc.provider, sc.records)
    upload = tmp_path / "pending.csv"
    upload.write_text(sc.csv_text())
    log_in(page, dashboard, keys["operator"])
    assert page.evaluate("document.cookie + JSON.stringify(localStorage)") == "{}"  # HttpOnly
    page.evaluate("window.notReloaded = true")

    page.get_by_test_id("nav-submit").click()
    page.get_by_test_id("submit-file").set_input_files(upload)
    page.get_by_test_id("submit-provider").select_option("applivery-apple")
    page.get_by_test_id("submit-org").fill(sc.org)
    page.get_by_test_id("submit-name").fill("dashboard: stuck lock commands")
    page.get_by_test_id("submit-rate").fill("40")
    page.get_by_test_id("submit-priority").select_option("urgent")
    page.get_by_test_id("submit-check").click()
    expect(page.get_by_test_id("dry-would-cancel")).to_have_text("150")
    expect(page.get_by_test_id("dry-invalid")).to_have_text(str(sc.expected.count("invalid")))
    shoot(page, "submit")

    page.get_by_test_id("submit-real").click()
    expect(page).to_have_url(re.compile(r"#/jobs/[0-9a-f]{16}$"))
    status = page.get_by_test_id("job-status")
    expect(status).to_have_text("running", timeout=JOB_MS)  # seen live, not loaded at the end
    expect(status).to_have_text("completed", timeout=JOB_MS)
    assert page.evaluate("window.notReloaded") is True
    total = len(sc.rows)
    expect(page.get_by_test_id("job-progress-text")).to_have_text(f"{total} / {total} (100%)")
    chart = page.get_by_test_id("outcome-chart")
    for outcome in ("canceled", "not_pending", "invalid"):
        expect(chart).to_contain_text(f"{outcome}: {sc.expected.count(outcome)}")
    expect(page.locator("[data-testid=rate-chart] polyline.finished")).to_have_count(1)
    throttled = re.compile(r", [1-9][\d,]* 429s in the last minute")
    expect(page.get_by_test_id("job-tenant")).to_have_text(throttled)
    expect(page.get_by_test_id("job-facts")).to_contain_text("key:dash-op-")
    expect(page.get_by_test_id("job-facts")).to_contain_text("priorityurgent")
    page.get_by_test_id("target-search").fill(sc.rows[3][0])
    page.get_by_test_id("target-search-submit").click()
    expect(page.get_by_test_id("target-row")).to_have_count(1)
    expect(page.get_by_test_id("target-row")).to_contain_text("canceled")
    shoot(page, "job")


def test_pause_resume_and_download_the_report(
    dashboard: ApiProcess,
    keys: dict[str, str],
    page: Page,
    sim: SimulatorProcess,
    worker: WorkerProcess,
) -> None:
    sc = apple(f"org-{secrets.token_hex(4)}", pending=60, done=0, missing=0)
    sim.client.add_commands(sc.provider, sc.records)
    job_id = start_job(dashboard, keys["operator"], sc.provider, sc.org, sc.csv_text(), rate=8)
    log_in(page, dashboard, keys["operator"])
    page.goto(f"{dashboard.url}/#/jobs/{job_id}")
    status = page.get_by_test_id("job-status")
    expect(status).to_have_text("running", timeout=JOB_MS)
    page.get_by_test_id("action-pause").click()
    expect(status).to_have_text("paused")
    expect(page.get_by_test_id("action-pause")).to_be_disabled()
    page.get_by_test_id("action-resume").click()
    expect(status).to_have_text(re.compile(r"^(running|completed)$"))
    with page.expect_download() as started:
        page.get_by_test_id("report-csv").click()
    download = started.value
    assert download.suggested_filename == f"{job_id}.csv"
    header = Path(download.path()).read_text().splitlines()[0]
    assert header.startswith("target_id,command_id,target_type,outcome")
    page.on("dialog", lambda dialog: dialog.accept())  # "Abort this job?"
    page.get_by_test_id("action-abort").click()
    expect(status).to_have_text(re.compile(r"^(aborted|completed)$"))


@pytest.fixture
def failing(sim: SimulatorProcess) -> Iterator[SimulatorProcess]:
    """The simulator answers 503 to 80% of requests (until the test turns it off)."""
    sim.client.config(error_rate=0.8)
    yield sim
    sim.client.config(error_rate=0.0)


def test_failed_targets_show_their_error_codes_and_retry(
    dashboard: ApiProcess,
    keys: dict[str, str],
    page: Page,
    failing: SimulatorProcess,
    worker: WorkerProcess,
) -> None:
    sc = apple(f"org-{secrets.token_hex(4)}", pending=20, done=0, missing=0)
    failing.client.add_commands(sc.provider, sc.records)
    job_id = start_job(dashboard, keys["operator"], sc.provider, sc.org, sc.csv_text(), rate=200)
    log_in(page, dashboard, keys["operator"])
    page.goto(f"{dashboard.url}/#/jobs/{job_id}")
    status = page.get_by_test_id("job-status")
    expect(status).to_have_text("completed", timeout=JOB_MS)
    expect(page.get_by_test_id("error-code").first).to_contain_text("failed")
    retry = page.get_by_test_id("action-retry")
    expect(retry).to_be_enabled()
    failing.client.config(error_rate=0.0)
    retry.click()
    expect(page.get_by_test_id("outcome-chart")).to_contain_text("canceled: 20", timeout=JOB_MS)
    expect(status).to_have_text("completed")
    expect(retry).to_be_disabled()
    expect(page.get_by_test_id("error-codes")).to_have_text("No failed or rejected targets.")


def test_jobs_tenants_and_policies(
    dashboard: ApiProcess,
    keys: dict[str, str],
    page: Page,
    sim: SimulatorProcess,
    worker: WorkerProcess,
) -> None:
    sc = apple(f"org-{secrets.token_hex(4)}", pending=2, done=0, missing=0)
    sim.client.add_commands(sc.provider, sc.records)
    start_job(dashboard, keys["operator"], sc.provider, sc.org, sc.csv_text())  # a tenant seen
    log_in(page, dashboard, keys["operator"])
    expect(page.get_by_test_id("job-row").first).to_be_visible()
    expect(page.get_by_test_id("job-actor").filter(has_text="key:dash-op-").first).to_be_visible()
    shoot(page, "jobs")

    page.get_by_test_id("nav-tenants").click()
    expect(page.get_by_test_id("tenant-row").first).to_be_visible()
    shoot(page, "tenants")

    page.get_by_test_id("nav-policies").click()
    row = page.locator(f"[data-testid=policy-row][data-policy={POLICY}]")
    expect(row.get_by_test_id("policy-next-run")).to_contain_text("in ")
    expect(page.get_by_test_id("policy-problem")).to_contain_text("broken")
    row.get_by_test_id("policy-run").click()
    expect(page.get_by_test_id("policy-run-result")).to_contain_text("Started the dry-run job")
    expect(page.get_by_test_id("policy-run-job")).to_have_text(f"cleanup:{POLICY}")
    shoot(page, "policies")


def test_a_viewer_sees_no_controls(dashboard: ApiProcess, keys: dict[str, str], page: Page) -> None:
    empty = "target_id,command_id\n"
    job_id = start_job(
        dashboard, keys["operator"], "applivery-apple", "acme-corp", empty, dry_run=True
    )
    page.goto(dashboard.url + "/")
    page.get_by_test_id("login-key").fill("cmk_not_a_key")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_have_text("invalid API key")
    shoot(page, "login")
    log_in(page, dashboard, keys["viewer"])
    expect(page.get_by_test_id("who")).to_contain_text("viewer")
    expect(page.get_by_test_id("nav-submit")).to_be_hidden()
    page.goto(f"{dashboard.url}/#/jobs/{job_id}")
    expect(page.get_by_test_id("job-status")).to_have_text("completed")
    expect(page.get_by_test_id("report-csv")).to_be_visible()
    expect(page.get_by_test_id("actions")).to_have_count(0)
    page.get_by_test_id("nav-policies").click()
    expect(page.locator(f"[data-testid=policy-row][data-policy={POLICY}]")).to_be_visible()
    expect(page.get_by_test_id("policy-run")).to_have_count(0)
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-form")).to_be_visible()
    assert page.request.get(dashboard.url + "/session").status == 401
