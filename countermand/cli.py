"""The ``countermand`` command. It parses and delegates: all logic lives in the core modules.

Exit codes (a contract): 0 success; 1 ``submit --wait`` ended paused or aborted; 2 usage or
configuration error; 3 Redis unreachable. Messages go to stderr; stdout carries only what a
script parses (a job id, a JSON object or array, a report).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rich.console import Console
from rich.markup import escape

from countermand import jobs
from countermand.credentials import CredentialStore
from countermand.dispatch import CeleryDispatch, celery_dispatch
from countermand.errors import CountermandError, StoreUnavailable, UsageError
from countermand.inputs import open_input, read_rows
from countermand.models import JobInfo, JobKind, JobStatus
from countermand.progress import follow, summary
from countermand.providers import ProviderSpec, get_spec
from countermand.report import write_report
from countermand.settings import get_settings, redacted_url
from countermand.simulator.cli import simulator
from countermand.store import Store

T = TypeVar("T")
app = typer.Typer(
    name="countermand",
    help="Bulk-cancel pending device-management commands, with exact per-target outcomes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, soft_wrap=True)
app.command("simulator", help="Run the bundled API simulator (Applivery and EnOS).")(simulator)


class ReportFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


def _run(body: Callable[[Store], Awaitable[T]]) -> T:
    """Run one async operation against Redis; map errors to exit codes 2 and 3."""
    settings = get_settings()

    where = redacted_url(settings.redis_url)

    async def main() -> T:
        store = Store.connect(settings.redis_url)
        try:
            await store.ping(where)
            return await body(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreUnavailable as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(3) from exc
    except (RedisConnectionError, RedisTimeoutError) as exc:
        err.print(f"[red]error:[/red] lost Redis at {where}: {escape(str(exc))}")
        raise typer.Exit(3) from exc
    except CountermandError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc


class _LateDispatch:
    """The Celery adapter, made on first use: commands that queue nothing never import Celery."""

    _adapter: CeleryDispatch | None = None

    def _get(self) -> CeleryDispatch:
        if self._adapter is None:
            self._adapter = celery_dispatch()
        return self._adapter

    def chunks(self, job_id: str, chunks: Sequence[int]) -> None:
        self._get().chunks(job_id, chunks)

    def verify(self, job_ids: Sequence[str]) -> None:
        self._get().verify(job_ids)


_dispatch = _LateDispatch()


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, sort_keys=False) + "\n")


def status_object(info: JobInfo) -> dict[str, Any]:
    return info.model_dump(mode="json")


ProviderArg = Annotated[str, typer.Argument(help="applivery-apple, applivery-android or enos")]
FileArg = Annotated[str, typer.Argument(help="CSV with header, .jsonl/.ndjson, or - for stdin")]
OrgOpt = Annotated[str, typer.Option("--org", help="organization id (Applivery) or orgId (EnOS)")]
RateOpt = Annotated[float | None, typer.Option(help="requests/s for this job")]
NameOpt = Annotated[str | None, typer.Option(help="a label for the job")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="follow the job until it settles")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the status object")]


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
) -> None:
    """Queue a poll job: reads each command's current state, changes nothing."""
    start_job(
        provider,
        file,
        wait,
        as_json,
        lambda spec: jobs.SubmitRequest(spec, org, rate=rate, name=name, kind=JobKind.POLL),
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
            job_id = await jobs.submit(store, settings, credentials, request, rows, _dispatch)
        return await announce(store, job_id, wait, as_json)

    finish(_run(body), wait, as_json)


async def announce(store: Store, job_id: str, wait: bool, as_json: bool) -> JobInfo:
    """A new job: its id on stdout (unless --json), then its status, followed with --wait."""
    if not as_json:
        sys.stdout.write(job_id + "\n")
        sys.stdout.flush()
    return await (follow(store, job_id, err) if wait else store.info(job_id))


def finish(info: JobInfo, wait: bool, as_json: bool) -> None:
    """The JSON object with --json; with --wait a summary, and exit 1 if paused or aborted."""
    if as_json:
        _print_json(status_object(info))
    if wait:
        err.print(summary(info))
        if info.status in (JobStatus.PAUSED, JobStatus.ABORTED):
            raise typer.Exit(1)


async def info_with_limiter(store: Store, job_id: str) -> JobInfo:
    """The status object plus the job's tenant: effective rate and any 429 hold."""
    info = await store.info(job_id)
    vendor = get_spec(info.provider).vendor
    state = await store.tenant_state(vendor, info.org)
    info.limiter = asdict(state)
    return info


@app.command()
def status(
    job: str, as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False
) -> None:
    """Show a job's status and counts, and its tenant's effective rate and hold."""
    info = _run(lambda store: info_with_limiter(store, job))
    if as_json:
        _print_json(status_object(info))
    else:
        Console().print(summary(info))


@app.command("jobs")
def list_jobs(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """List jobs, newest first."""
    infos = _run(lambda store: store.list_jobs())
    if as_json:
        _print_json([status_object(i) for i in infos])
        return
    out = Console()
    for info in infos:
        reason = f" ({info.reason})" if info.reason else ""
        out.print(
            f"{info.job_id}  {info.status.value}{reason}  {info.provider}  {info.org}  "
            f"{info.done}/{info.total}  {info.name or ''}"
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

    rows = _run(body)
    if output is not None:
        err.print(f"{rows} rows written to {output}")


@app.command()
def retry(
    job: str,
    as_json: Annotated[bool, typer.Option("--json", help="print the status object")] = False,
) -> None:
    """Queue exactly the failed targets again (a new round; attempts keep counting)."""

    async def body(store: Store) -> tuple[list[int], JobInfo]:
        chunks = await jobs.retry(store, job, _dispatch)
        return chunks, await store.info(job)

    chunks, info = _run(body)
    if chunks:
        err.print(f"job {job}: round {info.round}, failed targets queued ({len(chunks)} chunk(s))")
    else:
        err.print(f"job {job}: no failed targets, nothing queued")
    if as_json:
        _print_json(status_object(info))


cleanup_app = typer.Typer(help="Stale-command cleanup policies (COUNTERMAND_POLICIES_FILE).")
app.add_typer(cleanup_app, name="cleanup")


@cleanup_app.command("run")
def cleanup_run(
    policy: Annotated[str, typer.Argument(help="the policy's name in the policies file")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="find, cancel nothing")] = False,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run one policy now: find its stale commands, cancel them as an ordinary job."""
    from countermand.cleanup import policy_named, run_policy
    from countermand.runtime import Runtime

    settings = get_settings()

    async def body(store: Store) -> JobInfo:
        found = policy_named(settings.policies_file, policy)
        rt = await Runtime.open(settings)
        try:
            job_id = await run_policy(rt, found, _dispatch, dry_run=dry_run or None)
        finally:
            await rt.close()
        return await announce(store, job_id, wait, as_json)

    finish(_run(body), wait, as_json)


@cleanup_app.command("check")
def cleanup_check(
    file: Annotated[
        Path | None, typer.Argument(help="policies file (default: COUNTERMAND_POLICIES_FILE)")
    ] = None,
) -> None:
    """Validate a policies file: every problem names the file, the policy and the field."""
    from countermand.cleanup import read_policies
    from schedules import cron_problem

    path = file or get_settings().policies_file
    if path is None:
        err.print("[red]error:[/red] give FILE or set COUNTERMAND_POLICIES_FILE")
        raise typer.Exit(2)
    found = read_policies(path)
    problems = list(found.problems)
    problems += [p for policy in found.policies.values() if (p := cron_problem(policy, path))]
    for problem in problems:
        err.print(f"[red]error:[/red] {escape(problem)}")
    if problems:
        raise typer.Exit(2)
    err.print(f"{path}: {len(found.policies)} policies, no problem")


@app.command()
def pause(job: str) -> None:
    """Stop sending; targets not yet final stay remaining."""
    _run(lambda store: jobs.pause(store, job))
    err.print(f"job {job} paused")


@app.command()
def resume(job: str) -> None:
    """Continue a paused job (after fixing credentials or the base URL)."""
    chunks = _run(lambda store: jobs.resume(store, job, _dispatch))
    err.print(f"job {job} resumed ({len(chunks)} chunk(s) queued)")


@app.command()
def abort(job: str) -> None:
    """Stop for good; targets not yet tried are left untouched."""
    _run(lambda store: jobs.abort(store, job))
    err.print(f"job {job} aborted")


@app.command()
def purge(job: str) -> None:
    """Delete a job's data now (completed, paused or aborted jobs)."""
    _run(lambda store: jobs.purge(store, job))
    err.print(f"job {job} purged")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def worker(ctx: typer.Context) -> None:
    """Run a Celery worker (prefork pool); extra options go to `celery worker`."""
    from countermand.workercmd import run_worker

    try:
        run_worker(list(ctx.args))
    except UsageError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def beat(ctx: typer.Context) -> None:
    """Run Celery beat with the Redis-locked RedBeat scheduler (retry rounds); extra options go
    to `celery beat`. Several may run: one fires each entry, the others stand by."""
    from schedules import beat_schedule
    from worker.app import app as celery_app

    celery_app.conf.beat_schedule = beat_schedule(get_settings())
    celery_app.start(["beat", "--scheduler", "redbeat.RedBeatScheduler", *ctx.args])


@app.command()
def demo() -> None:
    """Run the whole path on an embedded default: private Redis, simulator, worker, jobs."""
    from countermand.demo import run_demo

    raise typer.Exit(run_demo(Console()))


def main() -> None:
    app()
