"""The notifier: events queued by the scripts, signed, retried, given up and audited."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from pydantic import SecretStr

from countermand import audit, jobs
from countermand.localredis import free_port
from countermand.providers.fake import FakeSpec
from countermand.settings import Settings
from countermand.webhooks import deliver_due, signature
from tests.conftest import run
from tests.test_engine import ACTOR, csv, drain, fake, open_rt, submit_csv

__all__ = ["fake"]
SECRET = "whsec-unit"


@asynccontextmanager
async def receiver(status: int) -> AsyncIterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    got: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((dict(request.headers), await request.read()))
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook", got
    finally:
        await runner.cleanup()


def test_an_event_is_signed_and_sent_once(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        with_secret = settings.model_copy(update={"webhook_secret": SecretStr(SECRET)})
        async with receiver(200) as (url, got), open_rt(with_secret) as rt:
            job_id = await submit_csv(rt, csv("ok"), notify=url)
            await drain(rt)
            assert await deliver_due(rt) == 1
            assert await deliver_due(rt) == 0  # delivered: not again
            headers, body = got[0]
            expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert headers["X-Countermand-Signature"] == f"sha256={expected}"
            assert signature(body, SECRET) == f"sha256={expected}"
            event = json.loads(body)
            assert event["event"] == "completed" and event["job"]["job_id"] == job_id

    run(main())


def test_pause_and_abort_are_events_too(settings: Settings, fake: FakeSpec) -> None:
    async def main() -> None:
        async with receiver(200) as (url, got), open_rt(settings) as rt:
            job_id = await submit_csv(rt, csv("ok", "ok"), notify=url)
            await jobs.pause(rt.store, job_id, actor=ACTOR)
            await jobs.abort(rt.store, job_id, actor=ACTOR)
            assert await deliver_due(rt) == 2
            assert sorted(json.loads(body)["event"] for _, body in got) == ["aborted", "paused"]
            assert "X-Countermand-Signature" not in got[0][0]  # no secret set: unsigned

    run(main())


def test_failures_are_retried_then_given_up_in_the_audit_log(
    settings: Settings, fake: FakeSpec
) -> None:
    async def main() -> None:
        quick = settings.model_copy(update={"webhook_max_tries": 2, "retry_initial_wait": 0.01,
                                            "retry_max_wait": 0.01})  # fmt: skip
        async with receiver(500) as (url, got), open_rt(quick) as rt:
            job_id = await submit_csv(rt, csv("ok"), notify=url)
            await drain(rt)
            assert await deliver_due(rt) == 0
            for _ in range(100):  # the retry is due 10 ms later
                if len(got) == 2:
                    break
                await deliver_due(rt)
            assert len(got) == 2 and await deliver_due(rt) == 0
            failed = [e for e in await audit.entries(rt.store, job_id=job_id)
                      if e.action == "webhook_failed"]  # fmt: skip
            assert [e.params["tries"] for e in failed] == [2, 1]
            assert (
                failed[0].params.get("gave_up") is True and failed[0].params["error"] == "HTTP 500"
            )

    run(main())
