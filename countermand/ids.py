"""Id patterns from ../shared/apis/: every id is checked before it goes into a URL.

Patterns cover the whole value in ASCII only: ``re.fullmatch`` with ``re.ASCII`` (``re.match``
with ``$`` would let a trailing newline through, and ``\\w`` alone accepts any Unicode letter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True, slots=True)
class IdPattern:
    name: str
    regex: re.Pattern[str]
    description: str

    def check(self, value: str) -> str | None:
        """None when ``value`` is valid, else the reason it is not."""
        if self.regex.fullmatch(value):
            return None
        return f"{self.name} {value!r} is not {self.description}"


def _pattern(name: str, regex: str, description: str) -> IdPattern:
    return IdPattern(name, re.compile(regex, re.ASCII), description)


APPLIVERY_ORG = _pattern(
    "organization id",
    r"[a-fA-F0-9]{24}|[a-zA-Z0-9-]{3,}",
    "24 hex digits or a slug of 3+ [A-Za-z0-9-]",
)
APPLIVERY_TARGET = _pattern(
    "target id", r"[a-fA-F0-9]{24}|\w+", "24 hex digits or a word of [A-Za-z0-9_]"
)
APPLIVERY_DEVICE = _pattern(
    "device id", r"[a-fA-F0-9]{24}|\w+", "24 hex digits or a word of [A-Za-z0-9_]"
)
APPLIVERY_COMMAND = _pattern("command id", r"[a-fA-F0-9]{24}", "24 hex digits")
APPLIVERY_TARGET_TYPE = _pattern("target type", r"device|deviceUser", "'device' or 'deviceUser'")
# EnOS documents no id patterns: non-empty printable ASCII without spaces, up to 128 characters.
ENOS_ID = _pattern("EnOS id", r"[\x21-\x7e]{1,128}", "1-128 printable ASCII characters, no spaces")


def segment(value: str) -> str:
    """URL-encode one path segment (every reserved character, '/' included)."""
    return quote(value, safe="")
