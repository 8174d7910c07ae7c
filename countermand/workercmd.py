"""``countermand worker``: its arguments (the prefork pool is the only one the bridge can serve)
and the start of the Celery worker."""

from __future__ import annotations

from countermand.errors import UsageError
from tasks.messages import Queue

ALLOWED_POOL = "prefork"


def worker_argv(extra: list[str]) -> list[str]:
    """``celery worker`` argv with our defaults; refuses any pool but prefork."""
    for i, arg in enumerate(extra):
        pool = None
        if arg in ("-P", "--pool") and i + 1 < len(extra):
            pool = extra[i + 1]
        elif arg.startswith("--pool="):
            pool = arg.split("=", 1)[1]
        elif arg.startswith("-P") and len(arg) > 2:
            pool = arg[2:]
        if pool is not None and pool != ALLOWED_POOL:
            raise UsageError(
                f"pool {pool!r} is not supported: countermand runs one event loop and one HTTP "
                "session per prefork process (use the default prefork pool and set "
                "--concurrency for parallelism)"
            )
    argv = ["worker", "--pool", ALLOWED_POOL]
    if not any(a.startswith(("-l", "--loglevel")) for a in extra):
        argv += ["--loglevel", "INFO"]
    if not any(a.startswith(("-Q", "--queues")) for a in extra):
        argv += ["--queues", Queue.CHUNKS.value]
    return argv + extra


def run_worker(extra: list[str]) -> None:
    """Start ``celery worker`` with our defaults; UsageError for what cannot run."""
    argv = worker_argv(extra)
    from worker.app import app

    app.worker_main(argv)
