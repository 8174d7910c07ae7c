"""The runner: each worker process claims the chunks it works from Redis, best first.

Chunks never travel in the broker (a million targets would be two thousand messages queued in
front of the next urgent job). A job's chunks become *ready* in Redis when it is released,
resumed, retried or reclaimed, and the workers are woken on the work channel. Each pool process
runs one ``Runner`` on its event loop; it claims (``lua/claim.lua``), one script per chunk:

* only from runnable jobs holding fewer chunks than they want at once (``want``: their share
  of the rate x the vendor's latency, measured by the workers, ``countermand.flow``), and only
  this runner's part of that (``want`` / live runners, rounded up), so a job's chunks spread
  over the processes;
* the highest priority first (``urgent``, ``normal``, ``bulk``), then the job holding the
  fewest chunks for what it wants, then the oldest.

So an urgent job's first chunk is claimed the moment it is released, whatever is queued: a
runner has no fixed number of slots, the rate is shared by the limiter (``lua/limiter.lua``),
and the requests in flight by the flows. A runner claims again when woken (new ready chunks, a
job wanting more), when one of its chunks ends, and at least every ``POLL`` seconds, which also
keeps it registered as alive (``RUNNER_TTL``). A chunk whose owner dies keeps its lease until
it expires; the reclaimer then makes it ready again (``countermand.recovery``).

``drain`` is the graceful stop: no new claim, each running chunk starts no new request, records
what is in flight and is handed back, ready at once for another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections import Counter
from typing import Any

from countermand.engine import ChunkOutcome, ChunkRun, run_claimed, start_run
from countermand.flow import DEFAULT_WANT
from countermand.runtime import Runtime
from countermand.work import until

log = logging.getLogger("countermand.runner")

POLL = 1.0
RUNNER_TTL = 5.0
CLAIM_BACKOFF = 1.0  # after a failed claim (Redis away)


async def claim_one(
    rt: Runtime, runner: str, mine: dict[str, int] | None = None
) -> tuple[str, int, str] | None:
    """Claim the best chunk for ``runner`` (holding ``mine`` chunks per job): job, chunk and
    the lease's owner token; None when nothing is to be claimed now."""
    owner = f"{runner}:{secrets.token_hex(4)}"
    got = await rt.store.claim(
        owner,
        int(rt.settings.lease_ttl * 1000),
        DEFAULT_WANT,
        runner,
        int(RUNNER_TTL * 1000),
        mine or {},
    )
    return None if got is None else (got[0], got[1], owner)


async def work_through(rt: Runtime, runner: str = "in-process") -> list[ChunkOutcome]:
    """Claim and work chunks one at a time, in this process, until nothing is ready: each
    chunk's outcome (tests and benchmarks that run the engine without workers)."""
    outcomes = []
    while (got := await claim_one(rt, runner)) is not None:
        outcomes.append(await run_claimed(rt, *got))
    return outcomes


class Runner:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.runs: dict[tuple[str, int], ChunkRun] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._draining = False
        self.claimed = 0

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        self.rt.watch.on_work = self.wake
        try:
            while not self._draining:
                self._wake.clear()
                try:
                    await self.claim_all()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # Redis away: the next poll claims again
                    log.debug("claim failed: %s", exc)
                    await asyncio.sleep(CLAIM_BACKOFF)
                    continue
                await until(self._wake, POLL)
        finally:
            if self.rt.watch.on_work == self.wake:
                self.rt.watch.on_work = None

    async def claim_all(self) -> int:
        """Claim until nothing more is to be claimed now; how many were."""
        claimed = 0
        while not self._draining:
            mine = Counter(job_id for job_id, _ in self.runs)
            got = await claim_one(self.rt, self.id, dict(mine))
            if got is None:
                return claimed
            job_id, chunk, owner = got
            run = await start_run(self.rt, job_id, chunk, owner)
            if run is None:
                continue
            claimed += 1
            self.claimed += 1
            self.runs[(job_id, chunk)] = run
            task = asyncio.create_task(self._work(run), name=f"chunk-{job_id}-{chunk}")
            self._tasks.add(task)
        return claimed

    async def _work(self, run: ChunkRun) -> ChunkOutcome:
        key = (run.meta.job_id, run.ledger.chunk)
        try:
            return await run.work_chunk()
        except asyncio.CancelledError:
            raise
        except Exception:  # the lease expires and the reclaimer makes the chunk ready again
            log.exception("job %s chunk %s failed", *key)
            return ChunkOutcome.LOST
        finally:
            self.runs.pop(key, None)
            self._tasks.discard(asyncio.current_task())
            self.wake()  # a part freed: claim again

    async def drain(self, timeout: float) -> bool:
        """Stop claiming, hand every running chunk back once its requests in flight are
        recorded; True if all were handed back within ``timeout`` seconds."""
        self._draining = True
        self.wake()
        for run in list(self.runs.values()):
            run.hand_back()
        tasks = list(self._tasks)
        done = True
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            done = not pending
        with contextlib.suppress(Exception):
            await self.rt.store.leave(self.id)
        return done

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.rt.store.leave(self.id)
