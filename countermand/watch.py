"""Stopping means stopping: each process hears at once that a job stopped.

The scripts that stop a job (``transition.lua`` for pause and abort, ``maybe_abort`` for the
abort threshold) publish ``"<job id> <status>"`` on the events channel. Every process that
works on jobs runs one ``StopWatch``: a listener that sets the stop event of every piece of
work of that job in the process (chunk runs, verify passes, discoveries), so their lanes start
no new request; only calls already on the wire finish and are recorded. Messages published
while the listener was disconnected are not lost: after every reconnect it reads the status of
each job it watches. The lease heartbeat and the limiter's status check stay as backstops.

The same listener hears the work channel: ``"<job id>"`` when chunks became ready to claim or a
job wants more at once (``lua/_lib.lua`` ``make_ready``, ``lua/want.lua``); it wakes the
process's runner (``countermand.runner``), and wakes it after every reconnect too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

from countermand.models import RUNNABLE, JobStatus
from countermand.store import Store
from countermand.store import keys as store_keys

log = logging.getLogger("countermand.watch")
RECONNECT_WAIT = 0.5


class StopWatch:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._events: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.on_work: Callable[[], None] | None = None  # the runner's wake-up

    @contextlib.contextmanager
    def watch(self, job_id: str, event: asyncio.Event) -> Iterator[None]:
        """Set ``event`` as soon as ``job_id`` stops, for the duration of the block."""
        self._events.setdefault(job_id, set()).add(event)
        try:
            yield
        finally:
            waiting = self._events.get(job_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._events[job_id]

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="countermand-stop-watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def stopped(self, job_id: str) -> None:
        for event in self._events.get(job_id, ()):
            event.set()

    async def _listen(self) -> None:
        while True:
            pubsub = self._store.stop_events()
            try:
                await pubsub.subscribe(store_keys.EVENTS, store_keys.WORK)
                self.connected.set()
                await self._catch_up()
                self._work()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        if message.get("channel") == store_keys.WORK:
                            self._work()
                        else:
                            self._on_message(str(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: listen again, then catch up
                self.connected.clear()
                log.debug("stop watch lost its connection: %s", exc)
                await asyncio.sleep(RECONNECT_WAIT)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _work(self) -> None:
        if self.on_work is not None:
            self.on_work()

    def _on_message(self, data: str) -> None:
        job_id, _, status = data.partition(" ")
        if status not in RUNNABLE:
            self.stopped(job_id)

    async def _catch_up(self) -> None:
        """Stops announced while nobody listened: read the status of every watched job."""
        watched = list(self._events)
        if not watched:
            return
        for job_id, status in (await self._store.statuses(watched)).items():
            if status is None or status not in (JobStatus.QUEUED, JobStatus.RUNNING):
                self.stopped(job_id)
