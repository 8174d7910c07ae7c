"""Long-running processes: ``worker``, ``beat``, ``demo``."""

from __future__ import annotations

import typer
from rich.console import Console

from countermand.cli.common import app, fail
from countermand.errors import UsageError
from countermand.settings import get_settings


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def worker(ctx: typer.Context) -> None:
    """Run a Celery worker (prefork pool); extra options go to `celery worker`."""
    from countermand.cli.admin import require_a_vendor
    from countermand.workercmd import run_worker

    require_a_vendor()
    try:
        run_worker(list(ctx.args))
    except UsageError as exc:
        raise fail(str(exc)) from exc


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def beat(ctx: typer.Context) -> None:
    """Run Celery beat with the Redis-locked RedBeat scheduler (retry rounds); extra options go
    to `celery beat`. Several may run: one fires each entry, the others stand by."""
    from countermand.workercmd import celery_argv
    from schedules import beat_schedule
    from worker.app import app as celery_app

    celery_app.conf.beat_schedule = beat_schedule(get_settings())
    argv = ["beat", "--scheduler", celery_app.conf.beat_scheduler, *ctx.args]
    celery_app.start(celery_argv(argv))


@app.command()
def demo() -> None:
    """Run the whole path on an embedded default: private Redis, simulator, worker, jobs."""
    from countermand.demo import run_demo

    raise typer.Exit(run_demo(Console()))
