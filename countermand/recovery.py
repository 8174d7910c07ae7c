"""The background loop of every worker process: reclaiming chunks of dead owners and starting
the --verify reads that are due.

Every ``reclaim_interval``, at most one process across all hosts (a fenced lock) makes the
chunks whose lease expired (their owner or its whole host died) ready to claim again (the
runners are woken) and dispatches the verify passes that are due (a verify pass whose worker
died is due again, see ``countermand.verify``).
"""

from __future__ import annotations

import asyncio
import logging

from countermand.jobs import Dispatch
from countermand.runtime import Runtime

log = logging.getLogger("countermand.worker")


async def reclaim_once(rt: Runtime, dispatch: Dispatch) -> list[tuple[str, int]]:
    """One pass, if this process has the turn; each job with the chunks it made ready again."""
    store = rt.store
    if not await store.take_reclaim_turn(rt.settings.reclaim_interval):
        return []
    reclaimed = await store.reclaim()
    for job_id, chunks in reclaimed:
        log.warning("job %s: %d chunks nobody held (owner gone), ready again", job_id, chunks)
    if due := await store.verifications_due():
        await asyncio.to_thread(dispatch.verify, due)
    return reclaimed


async def reclaim_forever(rt: Runtime, dispatch: Dispatch) -> None:
    while True:
        await asyncio.sleep(rt.settings.reclaim_interval)
        try:
            await reclaim_once(rt, dispatch)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep reclaiming after a Redis hiccup; the next pass retries
            log.exception("reclaim pass failed")
