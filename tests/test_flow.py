"""In flight follows latency (``countermand.flow``), on a fake clock and a simulated vendor.

``simulate`` runs one chunk run's lanes against a vendor, request by request, in ticks of
10 ms: the pacer hands out ``rate`` slots a second, a free lane takes a slot and sends, and the
vendor answers after a latency that the case chooses: fixed (a vendor with room), growing with
the requests in flight past a capacity (a saturated vendor: it answers later, not more), or
now and then 3 s (a vendor that stalls). The flow is tuned every ``TUNE_INTERVAL``.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from countermand.flow import (
    BUSY_CPU,
    CAP_MARGIN,
    CPU_WINDOW,
    GROWTH,
    ROUND_GROWTH,
    TUNE_INTERVAL,
    Flow,
    Load,
)

TICK = 0.01


@dataclass(eq=False)
class FakeRun:
    lanes: int
    demand: int = 10**9
    unsent: int = 10**9

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


@dataclass
class Sim:
    clock: Clock = field(default_factory=Clock)
    answered: list[float] = field(default_factory=list)  # when each answer came
    lanes: list[int] = field(default_factory=list)  # per tick
    busy: list[tuple[float, float]] = field(default_factory=list)  # (answer at, latency)

    def rate(self, last: float) -> float:
        """Answers per second over the last ``last`` seconds."""
        return sum(1 for t in self.answered if t > self.clock.now - last) / last


def simulate(
    flow: Flow,
    run: FakeRun,
    sim: Sim,
    seconds: float,
    rate: float,
    latency: Callable[[int], float],
    backoff: Callable[[], float] = lambda: 0.0,
) -> Sim:
    """``latency(in_flight)``: the vendor's answer time for a request sent now; ``backoff()``:
    when not 0, the request fails at once and its lane sleeps that long before the next try
    (answered 10 ms after it is sent)."""
    clock = sim.clock
    slots = 0.0
    for step in range(round(seconds / TICK)):
        clock.now += TICK
        for until, took in [b for b in sim.busy if b[0] <= clock.now]:
            if took < 0:  # a lane's backoff ends: the retry goes out
                flow.holding(-1)
                flow.sent()
                sim.busy.append((clock.now + TICK, TICK))
                continue
            flow.answered(took)
            sim.answered.append(until)
        sim.busy = [b for b in sim.busy if b[0] > clock.now]
        slots = min(slots + rate * TICK, rate * TICK)
        while slots >= 1 and len(sim.busy) < run.lanes:
            slots -= 1
            if pause := backoff():
                flow.sent()
                flow.answered(0.0)  # failed at once; the lane sleeps
                flow.holding(+1)
                sim.busy.append((clock.now + pause, -1.0))
                continue
            took = latency(len(sim.busy) + 1)
            flow.sent()
            sim.busy.append((clock.now + took, took))
        if step % round(TUNE_INTERVAL / TICK) == 0:
            flow.tune()
        sim.lanes.append(run.lanes)
    return sim


def make_flow(clock: Clock, rate: float, start: int = 32) -> tuple[Flow, FakeRun]:
    store: Any = None  # tune() never calls the store
    # a chunk of 1,500 targets: no run has more lanes, as under the default ceiling
    flow = Flow(store, Load(1500), "job", FakePacer(rate, rate, rate),  # type: ignore[arg-type]
                chunk_size=1500, start_lanes=start, clock=clock)  # fmt: skip
    run = FakeRun(start)
    flow.runs.add(run)
    return flow, run


def fixed(seconds: float) -> Callable[[int], float]:
    return lambda _in_flight: seconds


def saturated(base: float, capacity: float) -> Callable[[int], float]:
    """Answers ``capacity`` a second at most: past that, a request waits for those before it."""
    return lambda in_flight: max(base, in_flight / capacity)


def test_a_vendor_with_room_gets_the_lanes_littles_law_asks() -> None:
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=1000)
    simulate(flow, run, sim, 10, 1000, fixed(1.0))
    assert run.lanes >= 1000 * 1.0  # rate x latency
    assert sim.rate(last=3) >= 950
    assert flow.cap is None


def test_a_fast_vendor_needs_few_lanes() -> None:
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=1000)
    simulate(flow, run, sim, 3, 1000, fixed(0.02))  # (answers come on the 10 ms ticks)
    assert sim.rate(last=1) >= 950
    assert 1000 * 0.02 <= run.lanes <= math.ceil(1000 * 0.02 * 1.5) + 2


def test_a_saturated_vendor_caps_the_lanes_near_where_rate_stopped_growing() -> None:
    """Asked for 100,000/s from a vendor that gives 3,000/s at most: without the cap the lanes
    follow the latency they cause, up to the ceiling (1,500)."""
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=100_000)
    simulate(flow, run, sim, 5, 100_000, saturated(0.004, 3000))
    assert flow.cap is not None
    assert flow.cap <= math.ceil(32 * CAP_MARGIN)
    assert max(sim.lanes[-100:]) <= flow.cap  # the last second
    assert sim.rate(last=1) >= 0.95 * 3000  # the capped lanes still get all the vendor gives


def test_a_saturated_vendor_never_sees_the_ceiling() -> None:
    """Growth that does not pay is seen at a few times the lanes that gave the rate: over 30 s
    (the cap tried again twice) the lanes never pass ROUND_GROWTH^2 x the cap (and the lane
    per run that Little's law adds), where they used to jump to the ceiling (1,500) each time:
    a burst of new connections to the vendor."""
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=100_000)
    simulate(flow, run, sim, 30, 100_000, saturated(0.004, 3000))
    assert flow.cap is not None
    assert max(sim.lanes) <= ROUND_GROWTH**2 * (math.ceil(32 * CAP_MARGIN) + 1)
    assert sim.rate(last=2) >= 0.95 * 3000


def test_a_vendor_that_slows_mid_job_is_followed() -> None:
    """The job ran at its rate with a few lanes (5 ms), then the vendor answers in 0.5 s: the
    rounds at few lanes give far less than the best one did, which says the vendor changed,
    not that more lanes buy nothing; the lanes double per round up to what the rate needs."""
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=1000)
    simulate(flow, run, sim, 5, 1000, fixed(0.005))
    assert run.lanes < 50
    simulate(flow, run, sim, 15, 1000, fixed(0.5))
    assert flow.cap is None
    assert sim.rate(last=3) >= 950
    assert run.lanes >= 500


def test_the_cap_is_tried_again_and_a_slower_vendor_is_followed() -> None:
    """Capped while saturated, then the vendor's latency grows 100x with room again: after the
    cap's time the lanes grow to the rate x the new latency."""
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=1000)
    simulate(flow, run, sim, 3, 1000, saturated(0.004, 500))
    assert flow.cap is not None
    simulate(flow, run, sim, 25, 1000, fixed(0.4))
    assert flow.cap is None
    assert sim.rate(last=3) >= 950
    assert run.lanes >= 400


def test_before_any_answer_lanes_grow_with_the_time_waited() -> None:
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=1000, start=4)
    simulate(flow, run, sim, 0.8, 1000, fixed(5.0))
    grown = sim.lanes[:: round(TUNE_INTERVAL / TICK)]
    assert grown == sorted(grown) and grown[-1] > 4 * 2**3  # growing, GROWTH-fold at most
    assert all(b <= GROWTH * a for a, b in itertools.pairwise(grown))


def test_before_any_answer_the_lanes_keep_up_with_the_rate() -> None:
    """A vendor answering in 1 s, lanes starting at 32: after the first interval (32 lanes for
    100 slots) the slots of the first second find a lane (the rate x the time waited is the in
    flight needed)."""
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=1000)
    simulate(flow, run, sim, 1.0, 1000, fixed(1.0))
    assert len(sim.busy) >= 1000 - (100 - 32) - 20  # sent in the first second, none answered


def test_a_vendor_that_stalls_now_and_then_is_not_capped() -> None:
    """5% of answers take 3 s (a timeout), the rest 5 ms: more lanes buy rate linearly, but a
    round's rate is noisy and the stalled requests answer late. The job keeps its rate."""
    rng = random.Random(7)
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=1000)
    simulate(flow, run, sim, 20, 1000, lambda _: 3.0 if rng.random() < 0.05 else 0.005)
    assert sim.rate(last=5) >= 900, (sim.rate(last=5), run.lanes, flow.cap)
    assert flow.cap is None or flow.cap >= 1000 * 0.155  # rate x the mean latency


def test_lanes_asleep_between_tries_count_as_taken() -> None:
    """5% of requests fail at once and their lane waits 0.5 s before the retry (the retry
    policy's backoff): the lanes grow to cover the sleepers and the job keeps its rate."""
    rng = random.Random(11)
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=1000)
    simulate(
        flow, run, sim, 15, 1000, fixed(0.02), backoff=lambda: 0.5 if rng.random() < 0.05 else 0
    )
    assert sim.rate(last=5) >= 900, (sim.rate(last=5), run.lanes, flow.cap)


def test_a_run_at_its_chunks_tail_gives_its_lanes_to_the_others() -> None:
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=1000)
    tail, other = FakeRun(1, demand=3), FakeRun(1)
    flow.runs = {run, tail, other}
    flow.allowed = 300
    shares = flow.shares()
    assert shares[tail] == 3
    assert shares[run] + shares[other] == 297
    assert abs(shares[run] - shares[other]) <= 1


def test_the_ramp_before_the_first_answer_is_not_taken_for_latency() -> None:
    """A vendor answering in 1 s: a round over the first second (requests going out, none
    answered) would take Little's law's in flight over answers per second for several seconds
    of latency, and the job would claim many times the chunks it needs."""
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=1000)
    most_want, most_latency = 0, 0.0
    for _ in range(40):  # 4 s, looking every 0.1 s
        simulate(flow, run, sim, 0.1, 1000, fixed(1.0))
        most_want, most_latency = max(most_want, flow.want), max(most_latency, flow.latency() or 0)
    assert most_latency <= 1.25
    assert most_want <= math.ceil(1000 * 1.25 * 1.5 / (1500 / 2)) + 1
    assert sim.rate(last=2) >= 950


def test_between_rounds_the_lanes_follow_the_chunks_the_job_holds() -> None:
    """Another process's chunk ended: this process's part of the job's lanes grows at the next
    tune, not at the end of the round (the job was short meanwhile)."""
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=1000)
    flow.held = 2
    simulate(flow, run, sim, 3, 1000, fixed(0.2))
    before = run.lanes
    assert before <= math.ceil(1000 * 0.25 * 1.5 / 2) + 1
    flow._round = (sim.clock.now, flow.answers, flow._area, before, before)  # a round just began
    flow.held = 1
    flow.tune()
    assert run.lanes >= 2 * before - 2


def test_the_growth_limit_is_the_jobs_so_this_process_takes_over_at_once() -> None:
    """The job held 4 chunks, one here: the other processes' 3 ended, so this process's part
    is 4x its lanes at once. The limit on growth per round is on the job's lanes (what a
    saturated vendor answers later for), not on this process's part of them."""
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=1000)
    flow.held = 4
    simulate(flow, run, sim, 3, 1000, fixed(0.2))
    before = run.lanes
    flow._round = (sim.clock.now, flow.answers, flow._area, before, before)  # a round just began
    flow.held = 1
    flow.tune()
    assert run.lanes >= 4 * (before - 1) - 1  # (each part carries one lane per run)


def test_runs_at_their_tails_let_the_job_hold_more_chunks() -> None:
    """Every chunk run here has few targets left: the job wants one more chunk for each
    chunk's worth of lanes they cannot keep busy, or all it holds could be tails at once."""
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=1000)
    simulate(flow, run, sim, 3, 1000, fixed(1.0))
    busy = flow.want
    run.demand = run.unsent = 5
    flow.tune()
    assert flow.want == busy + math.ceil((flow.allowed - 5) / flow.chunk_size)
    assert flow.want > busy


def test_a_tail_with_requests_in_flight_and_none_to_send_wants_the_next_chunk() -> None:
    """The run's last targets are all on the wire: it keeps its lanes until they answer, a
    latency from now, but has nothing more to send, so the job wants its next chunk now, not
    when those answers come."""
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=1000)
    simulate(flow, run, sim, 3, 1000, fixed(0.2))
    busy = flow.want
    run.demand, run.unsent = run.lanes, 0  # every lane has a request out, no target queued
    flow.tune()
    assert flow.want == busy + math.ceil(flow.allowed / flow.chunk_size)


def test_each_run_with_nothing_left_to_send_lets_the_job_hold_one_more_chunk() -> None:
    """Two runs here have sent every target and wait on stalled requests (each holds its chunk
    for the HTTP timeout and the retries): the job wants a chunk more for each, not one for
    both, else the chunks left wait for the stalls to end (seen: 23 s in bench/hostile.py)."""
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=500)
    simulate(flow, run, sim, 3, 500, fixed(0.01))
    busy = flow.want
    other = FakeRun(run.lanes)
    flow.runs.add(other)
    run.demand = run.unsent = other.demand = other.unsent = 0
    flow.tune()
    assert math.ceil(flow.allowed / flow.chunk_size) == 1  # the lanes alone ask for one
    assert flow.want == busy + 2


def test_a_loop_starved_of_cpu_by_other_processes_counts_as_busy() -> None:
    """This thread and a spinning process share one CPU: the thread's own CPU time is about
    half the wall time, yet it wanted the CPU all along; more lanes would add latency, not
    rate (``Load.busy``)."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(spinner.pid, {cpu})
        os.sched_setaffinity(0, {cpu})
        load = Load(100)
        own, started = time.thread_time(), time.monotonic()
        while time.monotonic() < started + 2 * CPU_WINDOW:  # sample() looks after one window
            pass
        own_share = (time.thread_time() - own) / (time.monotonic() - started)
        load.sample()
    finally:
        os.sched_setaffinity(0, before)
        spinner.kill()
        spinner.wait()
    assert own_share < BUSY_CPU  # by its own CPU time alone it would not look saturated
    assert load.busy


def test_a_round_after_one_without_lanes_is_still_judged() -> None:
    """A round can end with no lanes (a run whose pass had not made them yet): the next round
    is judged against it without dividing by its zero lanes."""
    sim = Sim()
    flow, run = make_flow(sim.clock, rate=100_000)
    simulate(flow, run, sim, 3, 100_000, saturated(0.004, 3000))
    flow._round_lanes = 0  # the last round judged had no lanes
    simulate(flow, run, sim, 2, 100_000, saturated(0.004, 3000))
    assert sim.rate(last=1) >= 0.9 * 3000
