"""One HTTP exchange, with transport failures turned into the error tree's classes.

What a failure says about the vendor having applied the call (``TransientError.uncertain``):
a connection that could not be made (refused, DNS, TLS, a connect timeout) reached nobody; any
failure after the request may have left (a timeout while waiting for the answer, a connection
reset or closed mid-answer, a truncated or oversized body) is uncertain. Answers are read up to
``max_bytes``: one that declares a larger Content-Length is refused before its body is read, and
one without a length is read no further than the cap.

What an answer that arrived whole but is not the vendor's proves:

* a 2xx web page (HTML): a web server, not the API: the base URL is wrong (the job pauses);
* a 2xx that is not the vendor's envelope (malformed JSON, another JSON shape): nothing; it may
  come after the vendor applied the call: retried, uncertain (``Response.not_the_vendor``);
* an error status means what ``errors.verdict`` says (a proxy's HTML 502 is a 5xx: retried,
  never a pause), except a 4xx whose body claims JSON and does not parse where that body was to
  decide (``Response.unreadable``): retried, uncertain.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from countermand.errors import Misconfigured, TransientError, UnreachableError, Verdict
from countermand.models import Outcome
from countermand.providers.transport import (
    AnswerTimeout,
    ConnectFailed,
    ConnectTimeout,
    Disconnected,
    InvalidURL,
    Timeouts,
    TooLarge,
    Transport,
)

_DECODER = json.JSONDecoder()


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    retry_after: float | None
    content_type: str = ""

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (an HTML page, a proxy's text).

        Read as UTF-8 (a byte-order mark allowed), the only encoding JSON between systems may
        use (RFC 8259); a body in another is not the vendor's. Decoded here, not by
        ``json.loads`` of the bytes, which first guesses among UTF-8, -16 and -32 on every
        answer."""
        try:
            return _DECODER.decode(self.body.decode("utf-8-sig"))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return None

    def garbled(self) -> bool:
        """The body says it is JSON (``application/json``, ``+json``) and does not parse."""
        says_json = self.content_type == "application/json" or self.content_type.endswith("+json")
        return says_json and self.json() is None

    def snippet(self) -> str:
        return self.body[:120].decode("utf-8", "replace").strip()

    def not_the_vendor(self, vendor: str) -> Misconfigured | TransientError:
        """A 2xx that is not the vendor's envelope. An HTML page is a web server, not the API:
        the base URL is wrong (the job pauses). Anything else (malformed or truncated JSON, an
        unexpected envelope) may come after the vendor applied the call: uncertain, retried."""
        message = f"HTTP {self.status} is not a {vendor} answer: {self.snippet()!r}"
        if self.content_type.startswith("text/html"):
            return Misconfigured(message, http_status=self.status)
        return TransientError(message, http_status=self.status, uncertain=True)

    def unreadable(self, vendor: str, found: Verdict) -> TransientError | None:
        """A 4xx whose body claims JSON and does not parse (cut short, corrupted), where that
        body was to decide: ``found``, the verdict without it, is a per-target outcome or a
        ``misconfigured`` pause (a cut 5106 would read ``rejected``, a cut 3001 404 a wrong base
        URL). The vendor's code is lost, so the answer proves nothing: retried, uncertain (it
        may follow an applied cancel). A status that decides alone (401/403, 408/425, 429)
        keeps its verdict; None when the answer is readable or not a 4xx."""
        if not 400 <= self.status < 500 or not self.garbled():
            return None
        if not isinstance(found, Outcome) and found is not Misconfigured:
            return None
        message = f"HTTP {self.status} from {vendor}, its JSON unreadable: {self.snippet()!r}"
        return TransientError(message, http_status=self.status, uncertain=True)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def exchange(
    transport: Transport,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    timeout: Timeouts,
    data: bytes | None = None,
    max_bytes: int = 8 * 1024 * 1024,
) -> Response:
    """One request and its whole answer through the process's vendor transport
    (``countermand.providers.transport``), its failures in the error tree's classes."""
    try:
        answer = await transport.request(
            method, url, headers=headers, timeouts=timeout, data=data, max_bytes=max_bytes
        )
    except InvalidURL as exc:
        raise Misconfigured(f"invalid URL {url!r}") from exc
    except ConnectFailed as exc:
        raise UnreachableError(str(exc)) from exc
    except ConnectTimeout as exc:
        message = f"connect timed out after {timeout.connect}s"
        raise TransientError(message, uncertain=False) from exc
    except AnswerTimeout as exc:
        raise TransientError(f"timed out after {timeout.total}s") from exc
    except TooLarge as exc:
        raise TransientError(str(exc), http_status=exc.status) from exc
    except Disconnected as exc:
        raise TransientError(f"connection error: {exc}") from exc
    return Response(
        answer.status, answer.body, parse_retry_after(answer.retry_after), answer.content_type
    )
