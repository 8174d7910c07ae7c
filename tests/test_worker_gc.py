"""A pool process's garbage collector (``countermand.collector``): the objects alive at start-up
are frozen out of every collection and the oldest generation waits for ``OLD_AFTER`` middle
collections (run in a fresh interpreter, as a pool process starts); the young generations are
also collected by the clock, so that each collection scans only a few tens of milliseconds of
requests."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
from typing import Any

from countermand import collector

PROBE = """
import gc, json
from countermand import collector
import worker.signals  # the pool process's imports, frozen with the rest
before = gc.get_freeze_count(), gc.get_threshold()
collector.tune()
print(json.dumps([before, (gc.get_freeze_count(), gc.get_threshold())]))
"""


def test_start_up_objects_are_frozen_and_the_oldest_generation_waits() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    (frozen_before, thresholds_before), (frozen_after, thresholds_after) = json.loads(out)
    assert frozen_before == 0
    assert frozen_after > 20_000  # the imports: celery, aiohttp, the app
    assert thresholds_after == [thresholds_before[0], 10, collector.OLD_AFTER]


def test_young_generations_are_collected_by_the_clock() -> None:
    """CPython's own triggers off (only the clock's collections are seen): the young generation
    at every tick, the middle one with it at every fourth, the oldest never."""
    seen: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    async def run() -> None:
        ticker = asyncio.create_task(collector.collect_forever(0.01, 0.04))
        deadline = time.monotonic() + 10
        while seen.count(1) < 3:
            assert time.monotonic() < deadline, f"collections seen: {seen}"
            await asyncio.sleep(0.005)
        ticker.cancel()

    gc.callbacks.append(note)
    gc.disable()
    try:
        asyncio.run(run())
    finally:
        gc.enable()
        gc.callbacks.remove(note)
    assert seen[:12] == [0, 0, 0, 1] * 3
