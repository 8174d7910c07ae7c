"""The garbage collector in a worker's pool process: short pauses with a thousand requests out.

A collection stops the process's event loop, and a stop longer than the limiter's ``late``
(15 ms by default) loses every slot due in it (``countermand.limiter``: a slot slept past is
dropped, never sent late). CPython's own triggers make such stops when requests live long:

* A young collection starts when tracked allocations outnumber deallocations by 700. At 1 s
  latency the objects of the answers coming back are freed as fast as those of the requests
  going out are made, so the count hardly grows: the young generation swells to tens of
  thousands of objects (the requests of the last few hundred milliseconds) before it is
  collected. Timed with ``gc.callbacks`` in ``bench/latency.py``'s 1 s run (30,000 targets at
  1,000/s, two pool processes): young collections took up to 24 ms, the middle generation's up
  to 31 ms, the oldest's 34 to 75 ms; each cluster of missed slots (262 to 856 of 30,000 in a
  run) fell in one of them.
* With the start-up objects frozen (``tune``), the oldest generation is small, and CPython
  collects it once its pending objects pass a quarter of it: in those runs, 9 and 10 of its
  collections took over 30 ms in about 35 s.

So, in each pool process (``countermand.bridge`` runs ``collect_forever`` on its loop):

1. ``tune`` at process start freezes the objects alive then (the imports and the app, about
   109,000) out of every collection: once, the oldest generation's collections of 50,000
   targets in ``bench/core.py`` went from 181 and 213 ms in all (the longest 57 and 75 ms) to 8
   and 18 ms (the longest 4 and 10 ms);
2. young collections also run by the clock, generation 0 every ``YOUNG_EVERY`` and the middle
   generation with it every ``MIDDLE_EVERY``, so each scans only the requests of the last few
   tens of milliseconds, however the counts stand;
3. the oldest generation is collected after ``OLD_AFTER`` collections of the middle one, about
   once a minute, instead of after 10.

CPython's own triggers stay on (a burst of allocations still starts a young collection).
Measured in the 1 s run above, three runs each way: 0.948, 0.943 and 0.942 of the job's rate
before, 0.967, 0.969 and 0.968 after (0.97 is the most the pacer's headroom allows), with 561,
722 and 856 missed slots before and 7, 1 and 30 after; the longest collection 60 to 73 ms before,
8 to 15 ms after. Cyclic garbage that reaches the oldest generation waits up to a minute
longer: up to 552 objects per collection in these runs.
"""

from __future__ import annotations

import asyncio
import gc

YOUNG_EVERY = 0.025  # seconds between clock-driven collections of generation 0
MIDDLE_EVERY = 0.1  # ... and of generations 0 and 1 together
OLD_AFTER = 600  # collections of the middle generation before one of the oldest


def tune() -> None:
    """Freeze the objects alive now out of every collection, and collect the oldest generation
    after ``OLD_AFTER`` middle ones (CPython's young threshold kept). Called once, when a pool
    process starts and before it serves anything."""
    gc.freeze()
    young, _middle, _old = gc.get_threshold()
    gc.set_threshold(young, 10, OLD_AFTER)


async def collect_forever(
    young_every: float = YOUNG_EVERY, middle_every: float = MIDDLE_EVERY
) -> None:
    """Collect the young generations by the clock, on the loop whose requests they hold: each
    collection then scans only what was made since the last one and still lives."""
    every_middle = max(1, round(middle_every / young_every))
    ticks = 0
    while True:
        await asyncio.sleep(young_every)
        ticks += 1
        gc.collect(1 if ticks % every_middle == 0 else 0)
