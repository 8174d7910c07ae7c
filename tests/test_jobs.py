"""The one way to prepare and submit a job: checks first, rows staged, nothing dispatched until
the whole input was read; the job controls."""

from __future__ import annotations

import io
import re

import pytest
from pydantic import SecretStr

from countermand import jobs
from countermand.audit import check_entry_id
from countermand.credentials import CredentialStore
from countermand.errors import InputError, JobNotFound, UsageError
from countermand.inputs import read_rows
from countermand.jobs import check_notify
from countermand.models import JobKind, JobStatus
from countermand.providers import SPECS, get_spec
from countermand.providers.fake import FakeSpec
from countermand.settings import Settings
from countermand.store import keys
from tests.conftest import run
from tests.test_engine import ACTOR, claim, csv, fake, open_rt

__all__ = ["fake"]


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        (jobs.SubmitRequest(get_spec("applivery-windows"), "acme-corp"), "has no cancel"),
        (jobs.SubmitRequest(get_spec("enos"), "o1", kind=JobKind.POLL, dry_run=True), "--dry-run"),
        (jobs.SubmitRequest(get_spec("enos"), "o1", verify=True, dry_run=True), "--verify"),
        (jobs.SubmitRequest(get_spec("applivery-apple"), "a b"), "--org"),
        (jobs.SubmitRequest(get_spec("applivery-apple"), "acme", rate=0), "--rate"),
        (jobs.SubmitRequest(get_spec("applivery-apple"), "acme", abort_at=100), "--abort-at"),
        (jobs.SubmitRequest(get_spec("enos"), "o1"), "COUNTERMAND_ENOS_URL"),
        (jobs.SubmitRequest(get_spec("applivery-apple"), "acme"), "no applivery credential"),
    ],
)
def test_what_is_refused_before_a_job_exists(
    settings: Settings, request_: jobs.SubmitRequest, says: str
) -> None:
    with pytest.raises(UsageError, match=says):
        jobs.check_request(request_, settings, CredentialStore(settings))


def test_a_dry_run_needs_no_credential_or_url(settings: Settings) -> None:
    request = jobs.SubmitRequest(get_spec("enos"), "o1", dry_run=True)
    jobs.check_request(request, settings, CredentialStore(settings))


def test_rows_are_staged_and_released_once_all_are_in(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job = await jobs.open_job(
                rt.store, rt.settings, rt.credentials, jobs.SubmitRequest(SPECS["fake"], "o"), ACTOR
            )
            text = csv(*["ok"] * 120).encode()
            await job.load(read_rows("t.csv", io.BytesIO(text), SPECS["fake"], print))
            assert await claim(rt) is None  # loaded, not released
            info = await rt.store.info(job.job_id)
            assert (info.loaded, info.total, info.status) == (True, 120, JobStatus.QUEUED)
            assert await job.release() == 3
            claimed = [await claim(rt) for _ in range(3)]
            assert [c[:2] for c in claimed if c] == [(job.job_id, 0), (job.job_id, 1)]  # want 2

    run(main())


def test_a_bad_file_leaves_nothing(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job = await jobs.open_job(
                rt.store, rt.settings, rt.credentials, jobs.SubmitRequest(SPECS["fake"], "o"), ACTOR
            )
            text = csv(*["ok"] * 60).encode() + b"\x00\n"
            with pytest.raises(InputError, match="line 62"):
                await job.load(read_rows("t.csv", io.BytesIO(text), SPECS["fake"], print))
            with pytest.raises(JobNotFound):
                await rt.store.info(job.job_id)
            assert [k async for k in rt.store.redis.scan_iter(match=f"*{job.job_id}*")] == []
            assert await rt.store.redis.zscore(keys.JOBS, job.job_id) is None

    run(main())


def test_controls_refuse_what_the_status_does_not_allow(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with open_rt(settings) as rt:
            job_id = await jobs.submit(
                rt.store, rt.settings, rt.credentials, jobs.SubmitRequest(SPECS["fake"], "o"),
                read_rows("t.csv", io.BytesIO(csv("ok").encode()), SPECS["fake"], print), ACTOR,
            )  # fmt: skip
            with pytest.raises(UsageError, match="cannot make it running"):
                await jobs.resume(rt.store, job_id, actor=ACTOR)  # queued, not paused
            with pytest.raises(UsageError, match="abort or pause it before purge"):
                await jobs.purge(rt.store, job_id, actor=ACTOR)
            await jobs.abort(rt.store, job_id, actor=ACTOR)
            with pytest.raises(UsageError, match="only a completed or running job retries"):
                await jobs.retry(rt.store, job_id, actor=ACTOR)
            await jobs.purge(rt.store, job_id, actor=ACTOR)
            with pytest.raises(JobNotFound):
                await jobs.pause(rt.store, job_id, actor=ACTOR)

    run(main())


def test_credentials_from_the_environment_are_enough(settings: Settings) -> None:
    with_token = settings.model_copy(update={"applivery_token": SecretStr("t")})
    request = jobs.SubmitRequest(get_spec("applivery-apple"), "acme")
    jobs.check_request(request, with_token, CredentialStore(with_token))


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://h:x/", "'http://h:?/' has a port that is not a number"),
        ("http://user:hunter2@h:99999/", "'http://h:?/' has a port that is not a number"),
        ("ftp://h/", "'ftp://h/' is not an http(s) URL"),
        ("http:///path", "is not an http(s) URL"),
    ],
)
def test_a_bad_notify_url_is_a_usage_error_that_shows_no_secret(url: str, says: str) -> None:
    with pytest.raises(UsageError, match=re.escape(says)) as raised:
        check_notify(url)
    assert "hunter2" not in str(raised.value) and "user" not in str(raised.value)


def test_a_good_notify_url_passes() -> None:
    check_notify("https://hooks.example.com:8443/countermand?token=abc")


@pytest.mark.parametrize("value", ["3441462936490035781319599-3196885", "1-", "-1", "a-1", "1-2-3"])
def test_an_audit_cursor_redis_cannot_hold_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError, match="is not an audit entry id"):
        check_entry_id(value)


def test_an_audit_cursor_at_the_edge_passes() -> None:
    check_entry_id(f"{2**64 - 1}-{2**64 - 1}")
