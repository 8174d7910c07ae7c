"""The bytes of broken answers: what a proxy or a faulty vendor sends instead of a clean one.

Each function but ``bad_gateway`` takes the vendor's own answer (the handler has run: the call
was applied) and sends it broken; ``faults`` draws which, and its docstring says why each is
applied or not. Nothing here holds a large body in memory: the 50 MiB answer is streamed in
64 KiB writes (aiohttp drains between them), and every streamed answer stops quietly when the
client has gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct

from aiohttp import hdrs, web

from countermand.simulator.replies import Reply

HUGE_BODY_BYTES = 50 * 1024 * 1024
RESET_AFTER_S = 0.05  # how long half a body is on the wire before the reset
_PAD = b" " * 65536  # JSON allows trailing whitespace: the padded answer still parses
BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def bad_gateway() -> Reply:
    """nginx's own 502 page, as a reverse proxy sends it when the upstream did not answer."""
    return Reply(text=BAD_GATEWAY_PAGE, status=502, content_type="text/html")


def malformed(answer: Reply) -> Reply:
    """The answer's first half, with a Content-Length that matches it: a complete HTTP answer
    whose JSON ends mid-value (a proper prefix of a JSON object never parses)."""
    body = _body(answer)
    broken = Reply(body=body[: len(body) // 2], status=answer.status, headers=_headers(answer))
    broken.vendor_code, broken.log_key = answer.vendor_code, answer.log_key
    return broken


def gateway_envelope(answer: Reply) -> Reply:
    """A 2xx as an API gateway's Lambda-proxy integration passes it on when misconfigured: the
    vendor's answer as a string inside the gateway's own JSON envelope (valid JSON, not the
    vendor's shape)."""
    payload = {
        "statusCode": answer.status,
        "headers": {"Content-Type": answer.content_type},
        "body": _body(answer).decode("utf-8", "replace"),
        "isBase64Encoded": False,
    }
    body = json.dumps(payload, separators=(",", ":")).encode()
    broken = Reply(body=body, status=answer.status, content_type="application/json")
    broken.vendor_code, broken.log_key = answer.vendor_code, answer.log_key
    return broken


async def truncated(request: web.Request, answer: Reply) -> web.StreamResponse:
    """Headers announcing the whole body, half of it, then the connection closed (a FIN)."""
    body = _body(answer)
    response = await _begin(request, answer, len(body))
    with contextlib.suppress(ConnectionError):
        await response.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()  # flushes what was written, then closes
    return response


async def reset(request: web.Request, answer: Reply) -> web.StreamResponse:
    """Headers announcing the whole body, half of it, a moment, then a TCP reset (RST)."""
    body = _body(answer)
    response = await _begin(request, answer, len(body))
    with contextlib.suppress(ConnectionError):
        await response.write(body[: len(body) // 2])
    await asyncio.sleep(RESET_AFTER_S)
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:  # linger 0: close() sends RST instead of FIN
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.close()
    return response


async def stall(request: web.Request, answer: Reply, seconds: float) -> web.StreamResponse:
    """Status line and headers at once, then nothing for ``seconds``, then the body (to a
    client that has most likely given up)."""
    body = _body(answer)
    response = await _begin(request, answer, len(body))
    await asyncio.sleep(seconds)
    with contextlib.suppress(ConnectionError):
        await response.write(body)
    return response


async def huge(request: web.Request, answer: Reply) -> web.StreamResponse:
    """The vendor's answer padded with spaces to ``HUGE_BODY_BYTES``, Content-Length declared:
    still valid JSON, but no client should read it. Streamed until sent or the client goes."""
    body = _body(answer)[:HUGE_BODY_BYTES]
    response = await _begin(request, answer, HUGE_BODY_BYTES)
    with contextlib.suppress(ConnectionError):
        await response.write(body)
        left = HUGE_BODY_BYTES - len(body)
        while left > 0:
            part = _PAD[: min(left, len(_PAD))]
            await response.write(part)
            left -= len(part)
    return response


def _body(answer: Reply) -> bytes:
    body = answer.body
    return bytes(body) if isinstance(body, bytes | bytearray | memoryview) else b""


def _headers(answer: Reply) -> dict[str, str]:
    return {k: v for k, v in answer.headers.items() if k.lower() != "content-length"}


async def _begin(request: web.Request, answer: Reply, length: int) -> web.StreamResponse:
    """A streamed copy of the answer's status and headers, Content-Length ``length``; the
    headers leave now (a ``StreamResponse`` sends them on ``prepare``)."""
    response = web.StreamResponse(status=answer.status, headers=_headers(answer))
    response.content_length = length
    if hdrs.CONTENT_TYPE not in response.headers:
        response.content_type = answer.content_type
    await response.prepare(request)
    return response
