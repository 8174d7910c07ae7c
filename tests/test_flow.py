"""In flight follows latency (``countermand.flow``), on a fake clock and a fake vendor.

The vendor is a queue model: with ``lanes`` requests in flight it answers at
``min(lanes / base_latency, capacity)`` per second, each answer taking ``lanes / rate`` seconds
(Little's law). A vendor with room follows the lanes; a saturated one only answers later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from countermand.flow import CAP_MARGIN, TUNE_INTERVAL, Flow, Load


@dataclass(eq=False)
class FakeRun:
    lanes: int

    def resize(self, lanes: int) -> int:
        self.lanes = max(lanes, 1)
        return self.lanes


@dataclass
class FakePacer:
    share: float
    rate: float
    limit: float


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drive(flow: Flow, clock: Clock, run: FakeRun, base: float, capacity: float, seconds: float,
          target_rate: float) -> list[tuple[int, float]]:  # fmt: skip
    """Run the vendor model for ``seconds``, tuning every interval; (lanes, rate) per interval."""
    seen = []
    for _ in range(int(seconds / TUNE_INTERVAL)):
        lanes = run.lanes
        rate = min(lanes / base, capacity, target_rate)
        latency = max(base, lanes / capacity)
        answers = int(rate * TUNE_INTERVAL)
        for _ in range(answers):
            flow.sent()
            flow.answered(latency)
        clock.now += TUNE_INTERVAL
        flow.tune()
        seen.append((lanes, rate))
    return seen


def make_flow(clock: Clock, rate: float, start: int = 32) -> tuple[Flow, FakeRun]:
    store: Any = None  # tune() never calls the store
    flow = Flow(store, Load(1500), "job", FakePacer(rate, rate, rate),  # type: ignore[arg-type]
                chunk_size=10_000, start_lanes=start, clock=clock)  # fmt: skip
    run = FakeRun(start)
    flow.runs.add(run)
    return flow, run


def test_a_vendor_with_room_gets_the_lanes_littles_law_asks() -> None:
    clock = Clock()
    flow, run = make_flow(clock, rate=1000)
    seen = drive(flow, clock, run, base=1.0, capacity=1e9, seconds=8, target_rate=1000)
    lanes, rate = seen[-1]
    assert lanes >= 1000 * 1.0  # rate x latency
    assert rate == 1000
    assert flow.cap is None


def test_a_fast_vendor_needs_few_lanes() -> None:
    clock = Clock()
    flow, run = make_flow(clock, rate=1000)
    seen = drive(flow, clock, run, base=0.005, capacity=1e9, seconds=3, target_rate=1000)
    lanes, rate = seen[-1]
    assert rate == 1000
    assert lanes <= math.ceil(1000 * 0.005 * 1.5) + 1


def test_a_saturated_vendor_caps_the_lanes_near_where_rate_stopped_growing() -> None:
    """Asked for 100,000/s from a vendor that gives 3,000/s at most: without the cap the lanes
    follow the latency they cause, up to the ceiling (1,500)."""
    clock = Clock()
    flow, run = make_flow(clock, rate=100_000)
    seen = drive(flow, clock, run, base=0.004, capacity=3000, seconds=5, target_rate=100_000)
    assert flow.cap is not None
    assert flow.cap <= math.ceil(32 * CAP_MARGIN)
    assert max(lanes for lanes, _ in seen[-20:]) <= flow.cap
    assert seen[-1][1] == 3000  # the capped lanes still get all the vendor gives


def test_the_cap_is_tried_again_and_a_slower_vendor_is_followed() -> None:
    """Capped while saturated, then the vendor's latency grows 10x with room again: after the
    cap's time the lanes grow to the rate x the new latency."""
    clock = Clock()
    flow, run = make_flow(clock, rate=1000)
    drive(flow, clock, run, base=0.004, capacity=500, seconds=3, target_rate=1000)
    assert flow.cap is not None
    seen = drive(flow, clock, run, base=0.5, capacity=1e9, seconds=25, target_rate=1000)
    assert flow.cap is None
    assert seen[-1] == (seen[-1][0], 1000)
    assert seen[-1][0] >= 500


def test_before_any_answer_lanes_grow_with_the_time_waited() -> None:
    clock = Clock()
    flow, run = make_flow(clock, rate=1000, start=4)
    for _ in range(4):
        flow.sent()
    grown = []
    for _ in range(8):
        clock.now += TUNE_INTERVAL
        flow.tune()
        grown.append(run.lanes)
    assert grown == sorted(grown) and grown[-1] > 4 * 2**3  # growing, GROWTH-fold at most
    assert all(b <= 2 * a for a, b in zip([4, *grown], grown, strict=False))
