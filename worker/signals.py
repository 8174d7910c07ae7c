"""Process wiring: the pool check, and the per-process bridge (``countermand.bridge``) opened
at ``worker_process_init`` and closed at ``worker_process_shutdown``."""

from __future__ import annotations

from typing import Any

from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.signals import worker_init, worker_process_init, worker_process_shutdown

from countermand import bridge
from countermand.dispatch import CeleryDispatch


class PoolRefused(RuntimeError):
    pass


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

    bridge.start(CeleryDispatch(app))


@worker_process_shutdown.connect
def _stop_process(**_: Any) -> None:
    bridge.stop()
