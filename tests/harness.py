"""Real parts for end-to-end tests: the simulator and Celery workers as separate processes,
and the CLI run as a user runs it. Waits are on conditions with deadlines, never blind sleeps."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil

from countermand.localredis import free_port, stop_process
from countermand.simulator import SimulatorClient

T = TypeVar("T")
PYTHON = [sys.executable, "-m", "countermand"]


def wait_for(check: Callable[[], T | None], deadline: float, what: str, every: float = 0.1) -> T:
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline}s waiting for {what}")
        time.sleep(every)


class SimulatorProcess:
    def __init__(self, folder: Path, *options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (folder / f"simulator-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(
            [*PYTHON, "simulator", "--port", str(self.port), *options],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.client = SimulatorClient(self.url)
        self.client.wait_ready(30)

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)  # type: ignore[arg-type]
        self.log.close()


class WorkerProcess:
    """``countermand worker`` with its own log; ready once Celery says so."""

    count = 0

    def __init__(self, folder: Path, env: dict[str, str], concurrency: int = 2) -> None:
        WorkerProcess.count += 1
        self.name = f"w{WorkerProcess.count}-{os.getpid()}@localhost"
        self.log_path = folder / f"worker-{WorkerProcess.count}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [*PYTHON, "worker", "--concurrency", str(concurrency), "-n", self.name],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_for(self._ready, 60, f"worker {self.name} to be ready")
        wait_for(lambda: len(self.pool_pids()) >= concurrency, 30, "pool processes")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited: {self.log_path.read_text()[-3000:]}")
        return " ready." in self.log_path.read_text(errors="replace")

    def pool_pids(self) -> list[int]:
        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill_pool_process(self, pid: int) -> None:
        assert pid in self.pool_pids(), f"{pid} is not a pool process of {self.name}"
        os.kill(pid, signal.SIGKILL)

    def kill_all(self) -> None:
        pids = [*self.pool_pids(), self.proc.pid]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill_all()
                return
        self.log.close()


class BeatProcess:
    """``countermand beat`` (RedBeat): several may run, one holds the lock."""

    def __init__(self, folder: Path, env: dict[str, str], name: str) -> None:
        self.log_path = folder / f"beat-{name}.log"
        self.log = self.log_path.open("wb")
        schedule = folder / f"beat-{name}.schedule"
        self.proc = subprocess.Popen(
            [*PYTHON, "beat", "--loglevel", "DEBUG", "--schedule", str(schedule)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_for(lambda: "beat: Starting" in self.log_path.read_text(errors="replace"), 60,
                 f"beat {name} to start")  # fmt: skip

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)  # type: ignore[arg-type]
        self.log.close()


def cli(env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 120) -> Any:
    """Run ``countermand ARGS`` as a user would; returns the CompletedProcess."""
    return subprocess.run(
        [*PYTHON, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def cli_json(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    done = cli(env, *args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class ApiProcess:
    """``countermand api`` on a free port; ready once ``/readyz`` answers."""

    def __init__(self, folder: Path, env: dict[str, str], **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"api-{self.port}.log"
        self.log = self.log_path.open("wb")
        env = {**env, **{f"COUNTERMAND_{k.upper()}": v for k, v in settings.items()}}
        self.proc = subprocess.Popen(
            [*PYTHON, "api", "--port", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_for(self._ready, 60, "the API to be ready")

    def _ready(self) -> bool:
        import urllib.request

        if self.proc.poll() is not None:
            raise AssertionError(f"api exited: {self.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)  # type: ignore[arg-type]
        self.log.close()


def make_key(env: dict[str, str], name: str, role: str, orgs: str | None = None) -> str:
    args = ["keys", "add", name, "--role", role] + (["--orgs", orgs] if orgs else [])
    done = cli(env, *args)
    assert done.returncode == 0, done.stderr
    return str(done.stdout.strip().splitlines()[-1])
