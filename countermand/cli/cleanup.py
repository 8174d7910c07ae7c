"""``countermand cleanup run`` and ``countermand cleanup check``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from countermand.cli.common import ME, JsonOpt, WaitOpt, app, err, run_store
from countermand.cli.jobs import announce, finish
from countermand.models import JobInfo
from countermand.settings import get_settings
from countermand.store import Store

cleanup_app = typer.Typer(help="Stale-command cleanup policies (COUNTERMAND_POLICIES_FILE).")
app.add_typer(cleanup_app, name="cleanup")


@cleanup_app.command("run")
def cleanuprun_store(
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
            job_id = await run_policy(rt, found, actor=ME, dry_run=dry_run or None)
        finally:
            await rt.close()
        return await announce(store, job_id, wait, as_json)

    finish(run_store(body), wait, as_json)


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
