"""The one sync-to-async bridge: one event loop thread and one Runtime per worker process.

Made when the pool process starts (``worker/signals.py`` at ``worker_process_init``) and closed
when it ends; every task of the process runs its coroutine on that loop (``run``), so the
aiohttp session, the Redis client, the stop watch and the limiter's pacers live on one loop for
the process's whole life. Never ``asyncio.run`` per task beside a long-lived session. The
process's background loops run there too: its runner, which claims and works chunks
(``countermand.runner``), the reclaimer (``countermand.recovery``), the webhook notifier
(``countermand.webhooks``) and the young garbage collections by the clock
(``countermand.collector``).
No Celery import: the task shims (``tasks/``) and the process wiring (``worker/``) both call
into this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar, cast

import uvloop

from countermand import collector
from countermand.jobs import Dispatch
from countermand.recovery import reclaim_forever
from countermand.runner import Runner
from countermand.runtime import Runtime
from countermand.settings import get_settings
from countermand.webhooks import deliver_forever

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
    dispatch: Dispatch | None = None
    runner: Runner | None = None
    background: Future[None] | None = None


def start(dispatch: Dispatch) -> None:
    """Open this process's loop and Runtime, and start its background loop."""
    if _Process.thread is not None:
        return
    thread = EventLoopThread()
    thread.start()
    _Process.thread = thread
    _Process.dispatch = dispatch
    _Process.runtime = thread.run(Runtime.open(get_settings()))
    _Process.runner = Runner(_Process.runtime)
    _Process.background = thread.submit(background(_Process.runtime, _Process.runner, dispatch))


async def background(rt: Runtime, runner: Runner, dispatch: Dispatch) -> None:
    """The process's background loops: the runner, the reclaimer, the webhook notifier, and the
    young collections by the clock (``countermand.collector``)."""
    await asyncio.gather(
        runner.run_forever(),
        reclaim_forever(rt, dispatch),
        deliver_forever(rt),
        collector.collect_forever(),
    )


def stop() -> None:
    thread, runtime = _Process.thread, _Process.runtime
    if thread is None or runtime is None:
        return
    runner = _Process.runner
    if runner is not None:
        # A redeploy is not a crash: stop starting requests, record those on the wire and
        # hand the chunks back, ready at once for the other processes (``Runner.drain``).
        timeout = runtime.settings.drain_timeout
        try:
            if not thread.run(runner.drain(timeout)):
                log.warning("requests still in flight after %.0fs; their chunks are left to "
                            "the reclaimer", timeout)  # fmt: skip
        except Exception as exc:  # Redis away: the leases expire, the reclaimer takes over
            log.warning("could not hand chunks back: %s", exc)
    if _Process.background is not None:
        _Process.background.cancel()
    if runner is not None:
        with contextlib.suppress(Exception):
            thread.run(runner.close())
    with contextlib.suppress(Exception):
        thread.run(runtime.close())
    thread.stop()
    _Process.thread = _Process.runtime = _Process.background = _Process.dispatch = None
    _Process.runner = None


def dump_tasks() -> None:
    """Log every task of this process's event loop with the stack it waits in (SIGUSR2)."""
    thread = _Process.thread
    if thread is None:
        return

    def dump() -> None:
        for task in asyncio.all_tasks(thread.loop):
            where, coro, frame = [], cast(Any, task.get_coro()), None
            while coro is not None:
                if hasattr(coro, "cr_frame"):  # a coroutine
                    frame, coro = coro.cr_frame, coro.cr_await
                elif hasattr(coro, "ag_frame"):  # an async generator (a context manager's)
                    frame, coro = coro.ag_frame, coro.ag_await
                elif frame is not None and hasattr(frame.f_locals.get("self"), "gen"):
                    coro, frame = frame.f_locals["self"].gen, None  # anext(gen) of __aexit__
                    continue
                else:
                    break
                if frame is not None:
                    where.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
            log.warning("task %s waits in %s", task.get_name(), " > ".join(where) or "?")

    thread.loop.call_soon_threadsafe(dump)


def run(coro_factory: Callable[[Runtime, Dispatch], Coroutine[Any, Any, T]]) -> T:
    """Run ``coro_factory(runtime, dispatch)`` on this process's loop and wait for its result."""
    if _Process.thread is None or _Process.runtime is None or _Process.dispatch is None:
        raise RuntimeError(
            "countermand tasks run only in prefork pool processes started by "
            "`countermand worker` (the async bridge is made at worker_process_init)"
        )
    return _Process.thread.run(coro_factory(_Process.runtime, _Process.dispatch))
