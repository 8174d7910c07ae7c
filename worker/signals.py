"""Process wiring: the pool check, and the per-process bridge (``countermand.bridge``) opened
at ``worker_process_init`` and closed at ``worker_process_shutdown``, when the process's live
metrics files are also let go (``countermand.metrics``); and the logs (``countermand.logs``)."""

from __future__ import annotations

import gc
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

from countermand import bridge, metrics
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


def tune_gc() -> None:
    """Freeze the objects alive when a pool process starts (the imports and the app, about
    109,000) out of every garbage collection, before the process serves anything.

    Each collection of the oldest generation scanned them all while requests waited: in
    ``bench/core.py`` (50,000 targets, two pool processes, each collection timed with
    ``gc.callbacks``) the four such collections of each process took 181 and 213 ms, the longest
    57 and 75 ms. Frozen: 8 and 18 ms, the longest 4 and 10 ms. A stall that long loses every
    slot due in it (``countermand.limiter``). Young collections are left at CPython's defaults:
    a young threshold of 3,000 instead of 700 made them rarer but each longer, at no less time
    in all."""
    gc.freeze()


@worker_process_init.connect
def _start_process(**_: Any) -> None:
    from worker.app import app

    tune_gc()
    bridge.start(CeleryDispatch(app))
    # `kill -USR2 <pool pid>`: the process logs what each task of its event loop awaits (USR1
    # is billiard's soft time limit in pool processes)
    signal.signal(signal.SIGUSR2, lambda *_: bridge.dump_tasks())


@worker_process_shutdown.connect
def _stop_process(**_: Any) -> None:
    bridge.stop()
    metrics.process_exited()
