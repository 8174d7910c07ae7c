"""Job commands: submit, poll, status, jobs, report, retry, pause, resume, abort, purge."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from countermand import jobs
from countermand.cli.common import (
    ME,
    FileArg,
    JsonOpt,
    NameOpt,
    NotifyOpt,
    OrgOpt,
    PriorityOpt,
    ProviderArg,
    RateOpt,
    ReportFormat,
    WaitOpt,
    app,
    err,
    print_json,
    run_store,
    status_object,
)
from countermand.credentials import CredentialStore
from countermand.errors import CountermandError, UsageError
from countermand.inputs import open_input, read_rows
from countermand.models import JobInfo, JobKind, JobStatus, Priority
from countermand.progress import follow, summary
from countermand.providers import ProviderSpec, get_spec
from countermand.report import write_report
from countermand.settings import get_settings
from countermand.store import Store


@app.command()
def submit(
    provider: ProviderArg,
    file: FileArg,
    org: OrgOpt,
    rate: RateOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate, send nothing")] = False,
    name: NameOpt = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
    auto_retry: Annotated[
        int, typer.Option("--auto-retry", help="retry failed targets up to N more rounds")
    ] = 0,
    abort_at: Annotated[
        float | None,
        typer.Option("--abort-at", help="abort when more than PCT% failed or were rejected"),
    ] = None,
    abort_min: Annotated[
        int, typer.Option("--abort-min", help="answers needed before --abort-at applies")
    ] = 1,
    verify: Annotated[
        bool, typer.Option("--verify", help="read canceled commands back after a short delay")
    ] = False,
    priority: PriorityOpt = Priority.NORMAL,
    notify: NotifyOpt = None,
) -> None:
    """Queue a cancel job: prints the job id (or, with --json, the status object)."""
    start_job(
        provider,
        file,
        wait,
        as_json,
        lambda spec: jobs.SubmitRequest(
            spec,
            org,
            rate=rate,
            dry_run=dry_run,
            name=name,
            auto_retry=auto_retry,
            abort_at=abort_at,
            abort_min=abort_min,
            verify=verify,
            priority=priority,
            notify=notify,
        ),
    )


@app.command()
def poll(
    provider: Annotated[
        str, typer.Argument(help="applivery-apple, applivery-android, applivery-windows or enos")
    ],
    file: FileArg,
    org: OrgOpt,
    rate: RateOpt = None,
    name: NameOpt = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
    priority: PriorityOpt = Priority.NORMAL,
    notify: NotifyOpt = None,
) -> None:
    """Queue a poll job: reads each command's current state, changes nothing."""
    start_job(
        provider,
        file,
        wait,
        as_json,
        lambda spec: jobs.SubmitRequest(
            spec, org, rate=rate, name=name, kind=JobKind.POLL, priority=priority, notify=notify
        ),
    )


def start_job(
    provider: str,
    file: str,
    wait: bool,
    as_json: bool,
    make_request: Callable[[ProviderSpec], jobs.SubmitRequest],
) -> None:
    """submit and poll: check, stream the file in, then print the id or follow the job."""
    settings = get_settings()
    credentials = CredentialStore(settings)
    try:
        spec = get_spec(provider)
        request = make_request(spec)
        jobs.check_request(request, settings, credentials)
        stream = open_input(file)
    except CountermandError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc

    async def body(store: Store) -> JobInfo:
        with stream:
            rows = read_rows(
                file, stream, spec, lambda m: err.print(f"[yellow]warning:[/] {escape(m)}")
            )
            job_id = await jobs.submit(store, settings, credentials, request, rows, ME)
        return await announce(store, job_id, wait, as_json)

    finish(run_store(body), wait, as_json)


async def announce(store: Store, job_id: str, wait: bool, as_json: bool) -> JobInfo:
    """A new job: its id on stdout (unless --json), then its status, followed with --wait."""
    if not as_json:
        sys.stdout.write(job_id + "\n")
        sys.stdout.flush()
    if not wait:
        return await store.info(job_id)
    # --wait rides out a Redis outage of up to redis_grace seconds (then exit 3)
    settings = get_settings()
    patient = Store.connect(settings.redis, settings.redis_grace)
    try:
        return await follow(patient, job_id, err)
    finally:
        await patient.close()


def finish(info: JobInfo, wait: bool, as_json: bool) -> None:
    """The JSON object with --json; with --wait a summary, and exit 1 if paused or aborted."""
    if as_json:
        print_json(status_object(info))
    if wait:
        err.print(summary(info))
        if info.status in (JobStatus.PAUSED, JobStatus.ABORTED):
            raise typer.Exit(1)


@app.command()
def status(
    job: str, as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False
) -> None:
    """Show a job's status and counts, and its tenant's effective rate and hold."""
    info = run_store(lambda store: jobs.status(store, job))
    if as_json:
        print_json(status_object(info))
    else:
        Console().print(summary(info))


@app.command("jobs")
def list_jobs(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """List jobs, newest first."""
    infos = run_store(jobs.listed)
    if as_json:
        print_json([status_object(i) for i in infos])
        return
    out = Console()
    for info in infos:
        reason = f" ({info.reason})" if info.reason else ""
        share = f"  {info.share:g}/s" if info.share is not None else ""
        out.print(
            f"{info.job_id}  {info.status.value}{reason}  {info.priority.value}  {info.provider}  "
            f"{info.org}  {info.done}/{info.total}{share}  {info.name or ''}"
        )


@app.command()
def report(
    job: str,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="csv or jsonl")] = ReportFormat.csv,
    output: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
) -> None:
    """Write one row per target, in input order."""

    async def body(store: Store) -> int:
        await store.meta(job)  # unknown job: exit 2 before creating the output file
        if output is None:
            return await write_report(store, job, sys.stdout, fmt.value)
        try:
            with output.open("w", encoding="utf-8", newline="") as out:
                return await write_report(store, job, out, fmt.value)
        except OSError as exc:
            raise UsageError(f"--output {output}: {exc.strerror or exc}") from exc

    rows = run_store(body)
    if output is not None:
        err.print(f"{rows} rows written to {output}")


@app.command()
def retry(
    job: str,
    as_json: Annotated[bool, typer.Option("--json", help="print the status object")] = False,
) -> None:
    """Queue exactly the failed targets again (a new round; attempts keep counting)."""

    async def body(store: Store) -> tuple[list[int], JobInfo]:
        chunks = await jobs.retry(store, job, actor=ME)
        return chunks, await store.info(job)

    chunks, info = run_store(body)
    if chunks:
        err.print(f"job {job}: round {info.round}, failed targets queued ({len(chunks)} chunk(s))")
    else:
        err.print(f"job {job}: no failed targets, nothing queued")
    if as_json:
        print_json(status_object(info))


@app.command()
def pause(job: str) -> None:
    """Stop sending; targets not yet final stay remaining."""
    held = run_store(lambda store: jobs.pause(store, job, actor=ME))
    err.print(f"job {job} paused{still_stopping(held)}")


@app.command()
def resume(job: str) -> None:
    """Continue a paused job (after fixing credentials or the base URL)."""
    chunks = run_store(lambda store: jobs.resume(store, job, actor=ME))
    err.print(f"job {job} resumed ({chunks} chunk(s) ready)")


@app.command()
def abort(job: str) -> None:
    """Stop for good; targets not yet tried are left untouched."""
    held = run_store(lambda store: jobs.abort(store, job, actor=ME))
    err.print(f"job {job} aborted{still_stopping(held)}")


def still_stopping(held: int) -> str:
    """Said when workers still held chunks of the job once ``jobs.STOP_WAIT`` had passed."""
    if not held:
        return ""
    return (
        f"; {held} chunk(s) still held after {jobs.STOP_WAIT:g}s: their calls on the wire are "
        "not answered yet, or a worker died with its lease"
    )


@app.command()
def purge(job: str) -> None:
    """Delete a job's data now (completed, paused or aborted jobs)."""
    run_store(lambda store: jobs.purge(store, job, actor=ME))
    err.print(f"job {job} purged")
