"""Durations and vendor timestamps, parsed tolerantly (the vendors' examples are malformed)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 72h or 7d")
    return float(match[1]) * UNITS[match[2]]


def parse_time(raw: object) -> float | None:
    """Epoch seconds from epoch milliseconds or an ISO 8601 string; the vendors' examples have
    stray spaces (``2026-02-10T10: 05: 00.000Z``), which are removed. None when unreadable."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return raw / 1000 if raw > 10**11 else float(raw)
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = raw.replace(" ", "").replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def iso_utc(epoch_s: float) -> str:
    """Epoch seconds as ``2026-02-10T12:00:00Z``."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
