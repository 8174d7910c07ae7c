"""``countermand worker``: its arguments (the prefork pool is the only one the bridge can serve;
``--metrics-port`` is ours, the rest goes to Celery) and the start of the Celery worker."""

from __future__ import annotations

from countermand.errors import UsageError
from tasks.messages import Queue

ALLOWED_POOL = "prefork"
METRICS_PORT = "--metrics-port"


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
    # No gossip, mingle or broker heartbeat: workers share nothing through the broker (chunks
    # are claimed in Redis), and Celery's gossip fails to restart after a broker outage (an
    # AttributeError with a traceback on every Redis restart).
    argv = ["worker", "--pool", ALLOWED_POOL, "--without-gossip", "--without-mingle"]
    if not any(a.startswith(("-l", "--loglevel")) for a in extra):
        argv += ["--loglevel", "INFO"]
    if not any(a.startswith(("-Q", "--queues")) for a in extra):
        argv += ["--queues", Queue.CHUNKS.value]
    return argv + extra


def metrics_port(extra: list[str]) -> tuple[int | None, list[str]]:
    """``--metrics-port N`` (or ``=N``) taken out of the arguments: (N or None, the rest)."""
    port: str | None = None
    rest: list[str] = []
    args = iter(extra)
    for arg in args:
        if arg == METRICS_PORT:
            port = next(args, "")
        elif arg.startswith(METRICS_PORT + "="):
            port = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    if port is None:
        return None, rest
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UsageError(f"{METRICS_PORT}: expected a TCP port (1-65535), got {port!r}")
    return int(port), rest


def run_worker(extra: list[str]) -> None:
    """Start ``celery worker`` with our defaults (and, with ``--metrics-port``, the metrics
    exporter, before the pool forks); UsageError for what cannot run."""
    port, rest = metrics_port(extra)
    argv = worker_argv(rest)
    if port is not None:
        from countermand.metrics import serve_worker_metrics

        try:
            serve_worker_metrics(port)
        except OSError as exc:
            raise UsageError(f"{METRICS_PORT} {port}: cannot listen: {exc}") from exc
    from worker.app import app

    app.worker_main(celery_argv(argv))


def celery_argv(argv: list[str]) -> list[str]:
    """Logs set up before Celery starts (so its early warnings are records too); with JSON
    logs, Celery's banner (plain text on stdout) is left out: ``--quiet``."""
    from countermand.logs import configure
    from countermand.settings import get_settings

    fmt = get_settings().log_format
    configure(fmt)
    return ["--quiet", *argv] if fmt == "json" else argv
