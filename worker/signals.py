"""Process wiring: the pool check, and the per-process bridge (``countermand.bridge``) opened
at ``worker_process_init`` and closed at ``worker_process_shutdown``, when the process's live
metrics files are also let go (``countermand.metrics``); and the logs (``countermand.logs``)."""

from __future__ import annotations

import logging
import signal
from typing import Any

from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.signals import (
    setup_logging,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
)

from countermand import bridge, collector, metrics
from countermand.dispatch import CeleryDispatch
from countermand.logs import configure
from countermand.settings import get_settings


class PoolRefused(RuntimeError):
    pass


@setup_logging.connect
def _logs(loglevel: Any = None, **_: Any) -> None:
    """Celery's processes (worker, beat) log through structlog: text, or JSON lines. Celery
    prints a few lines itself (the warm-shutdown notice) with ``safe_say``: with JSON logs they
    go through logging too, so that every line is one JSON object."""
    fmt = get_settings().log_format
    configure(fmt, loglevel or "INFO")
    if fmt == "json":
        import celery.apps.worker

        said = logging.getLogger("celery.worker")
        celery.apps.worker.safe_say = lambda msg, f=None: said.warning(msg)


@worker_init.connect
def _refuse_other_pools(sender: Any = None, **_: Any) -> None:
    pool = getattr(sender, "pool_cls", None)
    if pool is None or (isinstance(pool, type) and issubclass(pool, PreforkPool)):
        return
    raise PoolRefused(
        f"countermand needs the prefork pool (got {getattr(pool, '__name__', pool)}): each "
        "pool process runs one event loop with one HTTP session; threads, gevent, eventlet "
        "and solo pools cannot host that bridge"
    )


@worker_process_init.connect
def _start_process(**_: Any) -> None:
    from worker.app import app

    collector.tune()  # before the process serves anything
    bridge.start(CeleryDispatch(app))
    # `kill -USR2 <pool pid>`: the process logs what each task of its event loop awaits (USR1
    # is billiard's soft time limit in pool processes)
    signal.signal(signal.SIGUSR2, lambda *_: bridge.dump_tasks())


@worker_process_shutdown.connect
def _stop_process(**_: Any) -> None:
    bridge.stop()
    metrics.process_exited()
