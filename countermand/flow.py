"""In flight follows latency: how many requests each process keeps on the wire for each job.

Little's law: requests in flight = rate x latency. A job granted 1,000 requests/s against a
vendor answering in 1 s needs 1,000 requests in flight; answering in 5 ms, it needs 5. Nothing
is tuned by hand: for each job it runs, a process keeps one ``Flow`` that watches the vendor's
latency on every request (``countermand.calls`` reports each send and answer) and, every
``TUNE_INTERVAL``:

* sizes the lanes of each of the job's chunk runs in this process at
  ``share x latency x HEADROOM / chunks the job holds`` (all processes together keep the job's
  share in flight), and never grows them while this process or its host is saturated
  (``Load``: more requests in flight then add latency, not rate);
* tells Redis how many chunks the job should hold at once, ``want``: enough that each holds at
  most half a chunk in flight, plus one, so a chunk finishing never leaves the job short, plus
  one for each chunk's worth of lanes this process's runs have no target left to send for
  (their chunks' tails, requests in flight not counted: else every chunk held could be at its
  tail at once), and at least one for each of those runs (a tail whose requests stall sends
  nothing for as long) (``lua/want.lua``; the runners claim more when it grows).

Latency is measured by Little's law itself over each *round* (below): the mean requests in
flight over the answers per second, so requests still out (a stalled one, answered seconds
later, if at all) count at once; before the first round, the mean of the answers' times. The
rounds start at the first answer: one over the ramp before it would take the requests going
out for latency (seen: 6x at 1 s). It is never less than the time since the last answer while
requests are out: at the first requests, before any answer, in flight grows with the time
waited (at most ``GROWTH``-fold per interval), so a job starts at its rate whatever the
latency. The lanes follow the latency judged at the end of each round; between rounds they
follow the job's share and the chunks it holds at that latency (a chunk claimed or ended here
or in another process changes this process's part at once).

**Growth must pay.** Little's law holds for a vendor whose latency does not depend on us. A
vendor (or a simulator) that is saturated answers later the more we send: latency grows with
the requests in flight, which would grow the lanes, which would grow the latency, up to the
ceiling, with no more rate (seen in ``bench/core.py``: 0.33 of the bare loop's rate with 1,500
requests in flight, 0.60 with 64). So, once answers come, lanes follow a new latency only at
the end of a *round* (``ROUND_MIN`` seconds or the latency, whichever is longer, and
``ROUND_ANSWERS`` answers or as many as there were lanes), towards what Little's law asks but
at most ``ROUND_GROWTH`` x the job's lanes in the last round or in the best one
(``growth_limit``), so growth that does not pay is seen at a few times the lanes that gave the
rate, not at the ceiling; and at each round's end the flow compares what this process delivered
for the job (answers per second) with the lanes it had, and keeps the best round (with the
lanes its rate needed at the previous best round's rate per lane: 30x the lanes for 1.2x the
rate count as 1.2x). When the lanes grew to ``PLATEAU_LANES`` x those of the best round and the
rate did not grow by ``PAYS``, while still short of this process's part of the job's rate, for
``STRIKES`` rounds in a row (a vendor that stalls now and then makes one round's rate noisy),
more lanes bought nothing: they are capped at ``CAP_MARGIN`` x those of the best round for
``CAP_SECONDS``; then growth is tried again (a vendor that got slower is followed, since its
rate grows with the lanes; a saturated one is capped again at the same lanes, since the best
round is kept). A round short of the best one whose added lanes bought at least half their
worth of rate over the last round becomes the best: the vendor got slower since (a saturated
one gives the same rate whatever the lanes), and the lanes grow from there.
Lanes asleep between the tries of a request (the retry policy's backoff) count as in flight:
they can take no other target meanwhile. A round in which the lanes
shrank is not judged: requests draining from the wire make its rate look better than its
lanes can give.

The process's ``Load`` caps the lanes of all its chunk runs at ``in_flight_ceiling``
(COUNTERMAND_IN_FLIGHT_CEILING). When the ceiling binds, the job's status says
``limited_by: in_flight_ceiling`` with the rate it allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from countermand.limiter import Pacer
    from countermand.store import Store

log = logging.getLogger("countermand.flow")

TUNE_INTERVAL = 0.1
WANT_INTERVAL = 0.3  # at most this often, the job's want and its chunks held are exchanged
HEADROOM = 1.5  # lanes per (rate x latency): jitter, chunk tails, the limiter's batching
# Lanes grow at most this much per interval before the first answer. At 2x, a job at 1 s latency
# sent 818 of its first second's 1,000 slots (tests/test_flow.py); at 4x, 918. The start lanes
# alone cover the first 0.1 s.
GROWTH = 4.0
MIN_LANES = 2
ROUND_GROWTH = 2.0  # once answers come, the job's lanes at most double per round
DEFAULT_WANT = 2  # chunks a job holds at once before any worker measured it
MAX_WANT = 256
EWMA = 0.1  # weight of each answer in the mean latency
BUSY_CPU = 0.9  # the loop thread's share of wall time running or waiting for a CPU: saturated
CPU_WINDOW = 0.25
HOST_IDLE = 0.05  # the host's idle CPU share under which the process counts as saturated
ROUND_MIN = 0.5  # seconds: a round of "growth must pay" (or the latency)
ROUND_ANSWERS = 100  # a round lasts until it has this many answers (one rate is a mean)
STRIKES = 2  # rounds in a row that more lanes bought nothing, before they are capped
PAYS = 1.1  # a round's rate over the best one's that counts as more
PLATEAU_LANES = 1.5  # lanes over the best round's past which no gain caps them
CAP_MARGIN = 1.25
CAP_SECONDS = 10.0
FLOW_IDLE = 60.0  # seconds a job's flow is kept in a process with no chunk run of it
SHORT = 0.9  # a rate under this fraction of the process's part of the job's rate is short


class Lanes(Protocol):
    """What a flow resizes: the lanes of one chunk run (``countermand.engine``)."""

    @property
    def lanes(self) -> int: ...

    @property
    def demand(self) -> int:
        """Lanes the run can keep busy now (its targets not settled yet)."""
        ...

    @property
    def unsent(self) -> int:
        """Targets of the run no lane has taken yet: what it can still send (its requests in
        flight are not)."""
        ...

    def resize(self, lanes: int) -> int:
        """Grow (within the process's ``Load``) or shrink; the lanes it has now."""
        ...


def wanted_cpu() -> float:
    """Seconds the calling thread ran or waited to run: Linux's ``schedstat`` counts the time
    it was runnable but the CPU was taken (by other processes of the host), which is saturation
    too; elsewhere the thread's CPU time alone."""
    try:
        ran, waited, _ = Path("/proc/thread-self/schedstat").read_text().split()
    except (OSError, ValueError):
        return time.thread_time()
    return (int(ran) + int(waited)) / 1e9


def host_idle() -> tuple[int, int] | None:
    """The host's idle and total CPU time so far, in ticks (Linux's ``/proc/stat``); None
    elsewhere."""
    try:
        with open("/proc/stat", "rb") as stat:
            fields = [int(n) for n in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; all but guest time


class Load:
    """The process's budget of lanes across all its chunk runs, and whether it is saturated:
    its loop thread ran or waited for a CPU (``wanted_cpu``) ``BUSY_CPU`` of the wall time, or
    the host's CPUs were idle less than ``HOST_IDLE`` of it. Either way more requests in flight
    add latency, not rate: on a host whose CPUs are all taken, a process that grows its lanes
    only takes CPU from the others, however idle its thread looks while it waits for answers
    (seen in ``bench/core.py``: two pool processes, Redis and the simulator on two cores; a
    process grew to 1,430 lanes, by rounds that paid because the other process was capped)."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.lanes = 0
        self.busy = False
        self._cpu = wanted_cpu()
        self._host = host_idle()
        self._wall = time.monotonic()

    def grant(self, more: int) -> int:
        """How many of ``more`` new lanes fit under the ceiling (they are counted as taken)."""
        granted = max(0, min(more, self.ceiling - self.lanes))
        self.lanes += granted
        return granted

    def give_back(self, lanes: int = 1) -> None:
        self.lanes -= lanes

    def sample(self) -> None:
        """Called from the loop thread: update ``busy`` once per ``CPU_WINDOW``."""
        wall = time.monotonic()
        if wall - self._wall < CPU_WINDOW:
            return
        cpu, host = wanted_cpu(), host_idle()
        self.busy = (cpu - self._cpu) / (wall - self._wall) >= BUSY_CPU
        if host is not None and self._host is not None and host[1] > self._host[1]:
            idle = (host[0] - self._host[0]) / (host[1] - self._host[1])
            self.busy = self.busy or idle < HOST_IDLE
        self._cpu, self._host, self._wall = cpu, host, wall


class Flow:
    """One job's requests in this process: the latency they see, and the lanes and chunks the
    job's rate calls for."""

    def __init__(
        self,
        store: Store,
        load: Load,
        job_id: str,
        pacer: Pacer,
        chunk_size: int,
        start_lanes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.store = store
        self.load = load
        self.job_id = job_id
        self.pacer = pacer
        self.chunk_size = chunk_size
        self.start_lanes = start_lanes
        self.runs: set[Lanes] = set()
        self.in_flight = 0
        self.mean: float | None = None  # seconds
        self._out_since = 0.0  # monotonic: since when requests are out without an answer
        self.held = 1  # chunks the job holds across all processes
        self.allowed = start_lanes  # lanes this process gives the job, over its runs here
        self.want = DEFAULT_WANT
        self.limited_rate: float | None = None  # the rate the ceiling allows, when it binds
        self.idle_since = clock()
        self.answers = 0  # answers this process had for the job
        # the round: since when, answers then, in-flight area then, lanes then, most lanes since
        self._round = (clock(), 0, 0.0, 0, 0)
        self._holding = 0  # lanes waiting between tries (a retry's backoff)
        self._area = 0.0  # requests in flight x seconds, since the flow began
        self._area_at = clock()
        self._little: float | None = None  # the last round's in flight / answers per second
        self._judged: float | None = None  # the latency the lanes follow between rounds
        self._best = (0.0, 0)  # the best round: its rate and its lanes
        self._last_rate = 0.0  # the rate of the last round judged
        self._round_lanes = start_lanes  # the most lanes of the last round judged
        self._round_need = float(start_lanes)  # the same, job-wide (``job_lanes``)
        self.cap: int | None = None  # lanes (per process) past which growth did not pay
        self._strikes = 0
        self._cap_until = 0.0
        self._task: asyncio.Task[None] | None = None

    # --- the call path reports each request (``countermand.calls``) -------------------------

    def _account(self, now: float) -> None:
        self._area += (self.in_flight + self._holding) * (now - self._area_at)
        self._area_at = now

    def holding(self, change: int) -> None:
        """A lane starts (+1) or ends (-1) a wait between tries of a request: in flight for
        Little's law, since the lane can take no other target meanwhile."""
        self._account(self.clock())
        self._holding += change

    def sent(self) -> None:
        now = self.clock()
        self._account(now)
        if self.in_flight == 0:
            self._out_since = now
        self.in_flight += 1

    def answered(self, seconds: float) -> None:
        now = self.clock()
        self._account(now)
        self.in_flight -= 1
        self.answers += 1
        self._out_since = now
        if self.mean is None:
            # the first answer: the rounds start here. A round over the ramp before it (requests
            # going out, none answered) would take Little's law's in flight over answers per
            # second far above the latency (seen: 6x at 1 s, which claimed 50 chunks at once)
            lanes = self.lanes_here()
            self._round = (now, self.answers, self._area, lanes, lanes)
            self._round_lanes = lanes
            self._round_need = self.job_lanes(lanes)
        mean = self.mean
        self.mean = seconds if mean is None else mean + EWMA * (seconds - mean)

    # --- sizing --------------------------------------------------------------------------------

    def latency(self) -> float | None:
        """The time a request spends in flight: Little's law over the last round (its mean
        requests in flight over its answers per second: requests still out, a stalled one
        included, count), before a round the mean answer time; never less than the time since
        the last answer while requests are out."""
        waited = self.clock() - self._out_since if self.in_flight else 0.0
        measured = self._little if self._little is not None else self.mean
        if measured is None:
            return waited or None
        return max(measured, waited)

    def rate(self) -> float:
        """The requests/s the job may use now: its share, or its own rate before any answer."""
        return self.pacer.share or min(self.pacer.rate, self.pacer.limit)

    def needed(self) -> float | None:
        """Requests the job should have in flight across all processes."""
        return self.needed_at(self.latency())

    def needed_at(self, latency: float | None) -> float | None:
        """The same at ``latency`` (None: not known yet)."""
        return None if latency is None else self.rate() * latency * HEADROOM

    def lanes_per_run(self) -> int:
        """A chunk run's part of the lanes this process gives the job (``allowed``): a new run
        shares them, it does not add to them."""
        return max(1, math.ceil(self.allowed / max(len(self.runs), 1)))

    def shares(self) -> dict[Lanes, int]:
        """``allowed`` over the job's runs here: even, except that a run at its chunk's tail
        (fewer targets left than its part) keeps only what it can use, and the others share
        the rest; at least one lane each, at most a chunk."""
        runs = sorted(self.runs, key=lambda run: run.demand)
        shares: dict[Lanes, int] = {}
        left = self.allowed
        for n, run in enumerate(runs):
            even = math.ceil(left / (len(runs) - n))
            shares[run] = max(1, min(even, run.demand, self.chunk_size))
            left -= shares[run]
        return shares

    def target(self, latency: float | None) -> int:
        """The lanes Little's law asks of this process for the job (its part of the job's
        chunks) at ``latency``, within the cap; the lanes it has while no latency is known."""
        needed = self.needed_at(latency)
        runs = max(len(self.runs), 1)
        if needed is None:
            return self.allowed
        if self.mean is not None:
            needed = min(needed, self.growth_limit())
        lanes = math.ceil(needed * runs / max(self.held, runs)) + runs
        if self.cap is not None:
            lanes = min(lanes, self.cap)
        return max(MIN_LANES, lanes)

    def job_lanes(self, lanes: int) -> float:
        """The job's lanes across all processes, had each as many per chunk held as this one
        with ``lanes``."""
        runs = max(len(self.runs), 1)
        return lanes * max(self.held, runs) / runs

    def growth_limit(self) -> float:
        """Once answers come, the most requests the job may have in flight before the next
        round is judged: ``ROUND_GROWTH`` x its lanes in the last round or in the best one,
        whichever is more, job-wide. So growth that does not pay is seen at a few times the
        lanes that gave the rate, not at the ceiling: a saturated vendor sees no burst of new
        connections every ``CAP_SECONDS`` (seen: 1,500 lanes a process against 48 that gave
        more), lanes that had paid (a job whose share comes back) are taken back at once, and
        this process's part follows the chunks the job holds at once (one ended elsewhere)."""
        best = self.job_lanes(self._best[1])
        return ROUND_GROWTH * max(self._round_need, best, MIN_LANES)

    def lanes_here(self) -> int:
        return sum(run.lanes for run in self.runs)

    def judge_round(self) -> bool:
        """At the end of each round: did the lanes added since the best round buy rate? A round
        in which the lanes shrank is not judged (the requests draining from the wire make its
        rate look better than its lanes can give)."""
        now, lanes = self.clock(), self.lanes_here()
        self._account(now)
        started, answers_then, area_then, first, most = self._round
        if lanes < first:
            self._round = (now, self.answers, self._area, lanes, lanes)
            return True
        most = max(most, lanes)
        if now - started < max(ROUND_MIN, self.mean or 0.0) or self.answers - answers_then < min(
            ROUND_ANSWERS, max(first, 1)
        ):
            self._round = (started, answers_then, area_then, first, most)
            return False
        self._round = (now, self.answers, self._area, lanes, lanes)
        last_lanes, self._round_lanes = self._round_lanes, most
        self._round_need = self.job_lanes(most)
        last_rate = self._last_rate
        if self.cap is not None and now >= self._cap_until:
            self.cap = None  # try growing again; the best round is kept
        delivered = (self.answers - answers_then) / (now - started)
        self._little = (self._area - area_then) / (now - started) / delivered
        self._last_rate = delivered
        best_rate, best_lanes = self._best
        if delivered >= best_rate * PAYS or not best_lanes:
            # the lanes this rate needed, had each lane given what it gave in the best round:
            # 30x the lanes for 1.2x the rate bought 1.2x the lanes' worth, not 30x
            useful = (
                most if not best_lanes else min(most, math.ceil(best_lanes * delivered / best_rate))
            )
            self._best, self._strikes = (delivered, max(useful, MIN_LANES)), 0
            return True
        if 0 < last_lanes < most and delivered >= last_rate * (1 + (most / last_lanes - 1) / 2):
            # short of the best round, but the lanes added since the last round bought at least
            # half their worth of rate: the vendor got slower since the best round (a saturated
            # one gives the same rate, whatever the lanes). That round says nothing now: the
            # lanes grow from this one
            self._best, self._strikes = (delivered, max(most, MIN_LANES)), 0
            return True
        part = self.rate() * len(self.runs) / max(self.held, len(self.runs), 1)
        if most < best_lanes * PLATEAU_LANES or delivered >= part * SHORT:
            self._strikes = 0
            return True
        self._strikes += 1
        if self._strikes >= STRIKES:
            cap = max(MIN_LANES, math.ceil(best_lanes * CAP_MARGIN))
            if cap != self.cap:
                log.info(
                    "job %s: %d lanes gave %.0f/s, %d gave %.0f/s: capped at %d for %.0fs",
                    self.job_id, most, delivered, best_lanes, best_rate, cap, CAP_SECONDS,
                )  # fmt: skip
            self.cap, self._cap_until = cap, now + CAP_SECONDS
        return True

    def tune(self) -> None:
        """Resize every run of the job in this process (grown within the process's ``Load``)."""
        self.load.sample()
        # The latency is followed at the end of a round (to what the round measured), and
        # before the first answer (with the time waited, at most GROWTH-fold per interval).
        # Between rounds the lanes follow the job's share and its chunks (one claimed or ended
        # here or in another process) at the latency last judged: holding them until the round
        # ended left the job short after every claim (the other processes' part shrank at once).
        if self.judge_round() or self.mean is None:
            self._judged = self.latency()
        latency = self._judged
        target = self.target(latency)
        if self.mean is None:
            target = min(target, max(math.ceil(self.allowed * GROWTH), MIN_LANES))
        if target > self.allowed and self.load.busy:
            target = self.allowed
        self.allowed = target
        wanted = got = 0
        for run, lanes in self.shares().items():
            got += run.resize(lanes)
            wanted += lanes
        self.limited_rate = self.rate() * got / wanted if got < wanted else None
        if (needed := self.needed()) is not None:
            # chunks enough that each holds at most half a chunk in flight, for the lanes the
            # job has: what this process allows, as if every process allowed as much
            job_lanes = min(needed, self.job_lanes(self.allowed))
            chunks = math.ceil(job_lanes / max(self.chunk_size / 2, 1)) + 1
            # and one more chunk per chunk's worth of lanes this process's runs have no target
            # left to send for (their chunks' tails): else every chunk held can be at its tail
            # at once, the job holding all it wants with little left to send (seen: 211
            # requests in a second of a job at 1,000/s, at 1 s latency). Targets in flight do
            # not count: counted, the next chunk came only when a tail's last answers did, a
            # latency late (seen at 200 ms: 696/s for a quarter second at each such tail)
            short = self.allowed - sum(run.unsent for run in self.runs)
            extra = math.ceil(short / self.chunk_size) if short > 0 else 0
            # and at least one more for each run here with nothing left to send: a tail whose
            # requests stall holds its chunk for HTTP_TIMEOUT and its retries, sending nothing
            # (seen in bench/hostile.py's stall fault: three chunks of four held so for 20 s
            # while the job wanted three, and the fourth's first request went out after 23 s)
            tails = sum(1 for run in self.runs if run.unsent == 0)
            self.want = min(MAX_WANT, max(DEFAULT_WANT, chunks + max(extra, tails)))

    async def _tune_forever(self) -> None:
        last_want = 0.0
        while True:
            await asyncio.sleep(TUNE_INTERVAL)
            self.tune()
            if self.clock() - last_want >= WANT_INTERVAL:
                last_want = self.clock()
                try:
                    held = await self.store.want(self.job_id, self.want, self.limited_rate)
                except Exception as exc:  # Redis away: keep the lanes as they are
                    log.debug("job %s: want not exchanged: %s", self.job_id, exc)
                    continue
                if held is not None:
                    self.held = max(held, len(self.runs), 1)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._tune_forever(), name=f"flow-{self.job_id}")

    def halt(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class Flows:
    """The process's flows, one per job it runs, and its ``Load``."""

    def __init__(self, store: Store, ceiling: int, start_lanes: int) -> None:
        self.store = store
        self.load = Load(ceiling)
        self.start_lanes = start_lanes
        self._flows: dict[str, Flow] = {}

    def of(self, job_id: str, pacer: Pacer, chunk_size: int) -> Flow:
        """The job's flow: kept while the job has no chunk run here for up to ``FLOW_IDLE``
        seconds, so that what it learned (latency, the best round, a cap) carries over from
        one chunk to the next."""
        now = time.monotonic()
        for other_id, other in list(self._flows.items()):
            if not other.runs and now - other.idle_since > FLOW_IDLE:
                del self._flows[other_id]
        flow = self._flows.get(job_id)
        if flow is None:
            flow = Flow(self.store, self.load, job_id, pacer, chunk_size, self.start_lanes)
            self._flows[job_id] = flow
        flow.pacer = pacer
        return flow

    @contextlib.contextmanager
    def joined(self, flow: Flow, run: Lanes) -> Iterator[None]:
        """``run`` is sized by ``flow`` while the block runs."""
        flow.runs.add(run)
        flow.start()
        try:
            yield
        finally:
            flow.runs.discard(run)
            if not flow.runs:
                flow.idle_since = time.monotonic()
                flow.halt()

    async def close(self) -> None:
        for flow in list(self._flows.values()):
            await flow.stop()
        self._flows.clear()
