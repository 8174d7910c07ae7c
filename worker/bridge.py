"""The one sync-to-async bridge: one event loop thread and one Runtime per worker process.

Made when the pool process starts (``worker_process_init``) and closed when it ends; every task
of the process runs its coroutine on that loop (``run``), so the aiohttp session, the Redis
client and the limiter's pacers live on one loop for the process's whole life. Never
``asyncio.run`` per task beside a long-lived session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import uvloop

from countermand.ledger import reclaim_expired, take_reclaim_turn
from countermand.runtime import Runtime
from countermand.settings import get_settings
from countermand.verify import verifications_due

T = TypeVar("T")
log = logging.getLogger("countermand.worker")


class EventLoopThread:
    def __init__(self) -> None:
        # uvloop: the same aiohttp calls at less CPU (bench/core.py: ~200 -> ~160 µs of worker
        # CPU per request); the benchmark's bare loop runs on uvloop too, for a fair ratio.
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="countermand-loop", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


class _Process:
    thread: EventLoopThread | None = None
    runtime: Runtime | None = None
    background: Future[None] | None = None


def start(
    dispatch: Callable[[str, Sequence[int]], None],
    dispatch_verify: Callable[[Sequence[str]], None],
) -> None:
    """Open this process's loop and Runtime, and start its reclaimer."""
    if _Process.thread is not None:
        return
    thread = EventLoopThread()
    thread.start()
    _Process.thread = thread
    _Process.runtime = thread.run(Runtime.open(get_settings()))
    _Process.background = thread.submit(
        _reclaim_forever(_Process.runtime, dispatch, dispatch_verify)
    )


def stop() -> None:
    thread, runtime = _Process.thread, _Process.runtime
    if thread is None or runtime is None:
        return
    if _Process.background is not None:
        _Process.background.cancel()
    with contextlib.suppress(Exception):
        thread.run(runtime.close())
    thread.stop()
    _Process.thread = _Process.runtime = _Process.background = None


def run(coro_factory: Callable[[Runtime], Coroutine[Any, Any, T]]) -> T:
    """Run ``coro_factory(runtime)`` on this process's loop and wait for its result."""
    if _Process.thread is None or _Process.runtime is None:
        raise RuntimeError(
            "countermand tasks run only in prefork pool processes started by "
            "`countermand worker` (the async bridge is made at worker_process_init)"
        )
    return _Process.thread.run(coro_factory(_Process.runtime))


async def _reclaim_forever(
    rt: Runtime,
    dispatch: Callable[[str, Sequence[int]], None],
    dispatch_verify: Callable[[Sequence[str]], None],
) -> None:
    """Every ``reclaim_interval``: at most one process across all hosts re-dispatches chunks
    whose lease expired (their owner or its whole host died), and starts the --verify reads
    that are due (a verify task whose worker died is due again, see countermand.verify)."""
    interval = rt.settings.reclaim_interval
    while True:
        await asyncio.sleep(interval)
        try:
            if not await take_reclaim_turn(rt.store, interval):
                continue
            for job_id, chunk in await reclaim_expired(rt.store):
                log.warning("job %s chunk %s: lease expired, dispatching again", job_id, chunk)
                await asyncio.to_thread(dispatch, job_id, [chunk])
            if due := await verifications_due(rt):
                await asyncio.to_thread(dispatch_verify, due)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep reclaiming after a Redis hiccup; the next pass retries
            log.exception("reclaim pass failed")
