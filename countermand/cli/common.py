"""What every ``countermand`` command shares: the Typer app, stderr, running one async operation
against Redis with the exit codes of the contract, and the actor the audit log names (the
operating-system user). No command sends a Celery message: jobs are claimed from Redis by the
workers' runners."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rich.console import Console
from rich.markup import escape

from countermand.audit import Actor
from countermand.errors import CountermandError, StoreUnavailable
from countermand.models import JobInfo, Priority
from countermand.settings import get_settings
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
# No highlighting: messages quote input files, and rich's highlighter regexes take minutes over a
# name megabytes long (found by tests/test_e2e_inputs.py).
err = Console(stderr=True, soft_wrap=True, highlight=False)
app.command("simulator", help="Run the bundled API simulator (Applivery and EnOS).")(simulator)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr; the exit to raise."""
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


class ReportFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


def run_store(body: Callable[[Store], Awaitable[T]]) -> T:
    """Run one async operation against Redis; map errors to exit codes 2 and 3."""
    settings = get_settings()

    where = settings.redis.where

    async def main() -> T:
        store = Store.connect(settings.redis)
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


ME = Actor.os_user()  # who the audit log names for what this CLI does


def print_json(value: Any) -> None:
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
NotifyOpt = Annotated[
    str | None,
    typer.Option(
        "--notify",
        help="webhook URL for completed, paused, aborted (default COUNTERMAND_WEBHOOK_URL)",
    ),
]
PriorityOpt = Annotated[
    Priority,
    typer.Option(
        "--priority",
        help="urgent, normal or bulk: how the tenant's rate is shared with its other jobs",
        case_sensitive=False,
    ),
]
