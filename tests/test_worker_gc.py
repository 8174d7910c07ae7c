"""A pool process's collector is tuned before it serves (``worker.signals.tune_gc``): the
objects alive at start-up are frozen out of every collection. Run in a fresh interpreter, as a
pool process starts."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json
from worker.signals import tune_gc
before = gc.get_freeze_count()
tune_gc()
print(json.dumps([before, gc.get_freeze_count()]))
"""


def test_start_up_objects_are_frozen_out_of_collections() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    before, after = json.loads(out)
    assert before == 0
    assert after > 20_000  # the imports: celery, aiohttp, the app
