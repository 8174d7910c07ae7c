"""Webhooks: a JSON POST when a job completes, pauses or aborts, never delaying the job.

The script that changes the job's status queues the event in Redis (the outbox, ``announce`` in
``_lib.lua``), if the job has a ``notify`` URL (``submit --notify``, or the default
``COUNTERMAND_WEBHOOK_URL``). Every worker process runs a notifier that claims due events (one
notifier per event at a time) and sends ``{"event": "completed"|"paused"|"aborted", "job":
<status object>}``, the status object as it is when sent. The body is signed with HMAC-SHA256
under ``COUNTERMAND_WEBHOOK_SECRET``, hex, in ``X-Countermand-Signature: sha256=<hex>`` (no
header when no secret is set); ``X-Countermand-Event`` carries an id unique to the event, for a
receiver to drop a repeat (delivery is at least once). A 2xx answer delivers it; anything else
is retried with exponential backoff (``RETRY_INITIAL_WAIT`` doubling, up to ``RETRY_MAX_WAIT``),
up to ``WEBHOOK_MAX_TRIES`` tries; each failed try is recorded in the audit log
(``webhook_failed``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging

import aiohttp

from countermand import audit
from countermand.audit import Actor
from countermand.errors import JobNotFound
from countermand.runtime import Runtime

log = logging.getLogger("countermand.webhooks")
NOTIFIER = Actor.system("webhooks")
EVERY = 1.0  # seconds between looks at the outbox
CLAIM_S = 60.0  # an event claimed by a notifier that died comes due again after this


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def deliver_due(rt: Runtime, batch: int = 20) -> int:
    """Send the events that are due; how many were delivered."""
    delivered = 0
    for member, job_id, event in await rt.store.claim_webhooks(batch, CLAIM_S):
        try:
            info = await rt.store.info(job_id)
            meta = await rt.store.meta(job_id)
        except JobNotFound:  # purged or expired meanwhile: nothing to tell
            await rt.store.webhook_delivered(member)
            continue
        if not meta.notify:
            await rt.store.webhook_delivered(member)
            continue
        body = json.dumps(
            {"event": event, "job": info.model_dump(mode="json")}, separators=(",", ":")
        ).encode()
        problem = await _post(rt, meta.notify, body, member)
        if problem is None:
            await rt.store.webhook_delivered(member)
            delivered += 1
        else:
            await _failed(rt, member, job_id, event, meta.notify, problem)
    return delivered


async def _post(rt: Runtime, url: str, body: bytes, event_id: str) -> str | None:
    headers = {"Content-Type": "application/json", "X-Countermand-Event": event_id}
    secret = rt.settings.webhook_secret
    if secret is not None:
        headers["X-Countermand-Signature"] = signature(body, secret.get_secret_value())
    timeout = aiohttp.ClientTimeout(total=rt.settings.webhook_timeout)
    try:
        async with rt.session.post(url, data=body, headers=headers, timeout=timeout) as resp:
            await resp.read()
            return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"


async def _failed(
    rt: Runtime, member: str, job_id: str, event: str, url: str, problem: str
) -> None:
    settings = rt.settings
    tries = await rt.store.webhook_tries(member) + 1
    delay = min(settings.retry_max_wait, settings.retry_initial_wait * 2 ** (tries - 1))
    gave_up = await rt.store.webhook_failed(member, delay, settings.webhook_max_tries)
    log.warning("webhook %s of job %s failed (%s), try %d", event, job_id, problem, tries)
    await audit.record(
        rt.store, NOTIFIER, "webhook_failed", job_id, event=event, url=audit.safe_url(url),
        error=problem, tries=tries, gave_up=gave_up or None,
    )  # fmt: skip


async def deliver_forever(rt: Runtime) -> None:
    while True:
        await asyncio.sleep(EVERY)
        try:
            await deliver_due(rt)
        except asyncio.CancelledError:
            raise
        except Exception:  # Redis away for a moment: the next look retries
            log.exception("webhook delivery pass failed")
