"""Id patterns from ../shared/apis/: every id is checked before it goes into a URL.

Patterns cover the whole value in ASCII only: ``re.fullmatch`` with ``re.ASCII`` (``re.match``
with ``$`` would let a trailing newline through, and ``\\w`` alone accepts any Unicode letter).

Every pattern has a length cap, so an over-long id is refused here (the row is ``invalid`` at
submit, never sent) rather than answered 400 by the vendor:

======================  =====================================================================
Applivery organization  24 hex digits, or a slug of 3-128 ``[A-Za-z0-9-]``
Applivery target/device 24 hex digits, or a word of 1-128 ``[A-Za-z0-9_]``
Applivery command       exactly 24 hex digits
EnOS ids                1-128 printable ASCII characters (``!`` to ``~``), no spaces
======================  =====================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

MAX_ID_LENGTH = 128  # characters; the cap of every variable-length id below
_SHOWN = 40  # characters of a refused value quoted in its reason (the report keeps it short)


@dataclass(frozen=True, slots=True)
class IdPattern:
    name: str
    regex: re.Pattern[str]
    description: str

    def check(self, value: str) -> str | None:
        """None when ``value`` is valid, else the reason it is not."""
        if self.regex.fullmatch(value):
            return None
        return f"{self.name} {_shown(value)} is not {self.description}"


def _shown(value: str) -> str:
    if len(value) <= _SHOWN:
        return repr(value)
    return f"{value[:_SHOWN]!r}... ({len(value)} characters)"


def _pattern(name: str, regex: str, description: str) -> IdPattern:
    return IdPattern(name, re.compile(regex, re.ASCII), description)


_CAP = MAX_ID_LENGTH
APPLIVERY_ORG = _pattern(
    "organization id",
    rf"[a-fA-F0-9]{{24}}|[a-zA-Z0-9-]{{3,{_CAP}}}",
    f"24 hex digits or a slug of 3-{_CAP} [A-Za-z0-9-]",
)
APPLIVERY_TARGET = _pattern(
    "target id",
    rf"[a-fA-F0-9]{{24}}|\w{{1,{_CAP}}}",
    f"24 hex digits or a word of 1-{_CAP} [A-Za-z0-9_]",
)
APPLIVERY_DEVICE = _pattern(
    "device id",
    rf"[a-fA-F0-9]{{24}}|\w{{1,{_CAP}}}",
    f"24 hex digits or a word of 1-{_CAP} [A-Za-z0-9_]",
)
APPLIVERY_COMMAND = _pattern("command id", r"[a-fA-F0-9]{24}", "24 hex digits")
APPLIVERY_TARGET_TYPE = _pattern("target type", r"device|deviceUser", "'device' or 'deviceUser'")
# EnOS documents no id patterns: non-empty printable ASCII without spaces, up to 128 characters.
ENOS_ID = _pattern(
    "EnOS id",
    rf"[\x21-\x7e]{{1,{_CAP}}}",
    f"1-{_CAP} printable ASCII characters, no spaces",
)


# What ``quote`` never encodes (RFC 3986 unreserved): a value of these alone is its own encoding.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*", re.ASCII)


def segment(value: str) -> str:
    """URL-encode one path segment (every reserved character, '/' included). Ids that passed
    their pattern are almost always unreserved already: those are returned as they are, without
    ``quote``'s work (three segments per request)."""
    if _UNRESERVED.fullmatch(value):
        return value
    return quote(value, safe="")
