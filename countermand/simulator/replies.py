"""A vendor answer as the simulator's handlers make it (re-exported by ``faults``, which also
breaks answers on purpose through ``broken``)."""

from __future__ import annotations

import json

from aiohttp import web


class Reply(web.Response):
    """A vendor answer that tells the log its vendor code and, when it knows better, its key."""

    vendor_code: int | None = None
    log_key: str | None = None


def reply(status: int, payload: object, code: int | None = None) -> Reply:
    body = json.dumps(payload, separators=(",", ":")).encode()
    response = Reply(body=body, status=status, content_type="application/json")
    response.vendor_code = code
    return response


def text_reply(status: int, text: str) -> Reply:
    return Reply(text=text, status=status)
