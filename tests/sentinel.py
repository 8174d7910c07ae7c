"""A Redis Sentinel deployment on this machine: a primary, a replica and three sentinels, each a
``redis-server`` process (the binary the tests use, ``countermand.localredis``) on 127.0.0.1
with its own folder and log. Failover is quick (``down-after-milliseconds`` 1000): a killed
primary is replaced within a few seconds. Every server requires ``PASSWORD``; the sentinels
require none (``sentinel auth-pass`` lets them into the servers)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from countermand.localredis import LEAN, free_port, redis_server_binary, stop_process
from countermand.settings import RedisTarget
from countermand.store.base import sync_client
from tests.harness import wait_for

MASTER = "mymaster"
PASSWORD = "sentinel-test-pw"
QUORUM = 2
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


class Node:
    """One ``redis-server`` process (a server, or a sentinel with ``sentinel.conf``)."""

    def __init__(self, folder: Path, name: str, args: list[str], port: int) -> None:
        self.name, self.port = name, port
        self.log_path = folder / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [redis_server_binary(), *args], stdout=self._log, stderr=subprocess.STDOUT
        )

    def client(self, password: str | None = PASSWORD) -> redis.Redis:
        return redis.Redis(
            "127.0.0.1", self.port, password=password, socket_timeout=2, decode_responses=True
        )

    def ask(self, *command: str, password: str | None = PASSWORD) -> Any:
        """One command; None when the process does not answer (yet, or any more)."""
        client = self.client(password)
        try:
            return client.execute_command(*command)
        except (redis.RedisError, OSError):
            return None
        finally:
            client.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write reaches the replica."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            stop_process(self.proc, timeout=10)  # type: ignore[arg-type]
        self._log.close()


def server_args(folder: Path, port: int, *extra: str) -> list[str]:
    return [
        "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
        "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction",
        "--requirepass", PASSWORD, "--masterauth", PASSWORD, *LEAN, *extra,
    ]  # fmt: skip


def sentinel_conf(folder: Path, port: int, primary: int) -> Path:
    """A sentinel's own config file (sentinels rewrite it as they learn)."""
    path = folder / f"sentinel-{port}.conf"
    path.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {primary} {QUORUM}\n"
        f"sentinel auth-pass {MASTER} {PASSWORD}\n"
        f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
        f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
        f"sentinel parallel-syncs {MASTER} 1\n"
    )
    return path


@dataclass
class Deployment:
    folder: Path
    primary: Node
    replica: Node
    sentinels: list[Node] = field(default_factory=list)

    @property
    def addresses(self) -> str:
        """``COUNTERMAND_REDIS_SENTINELS``."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    @staticmethod
    def url(db: int) -> str:
        """``COUNTERMAND_REDIS_URL``: its host is no server; under Sentinel it gives only the
        database and the password."""
        return f"redis://:{PASSWORD}@sentinel-decides:6379/{db}"

    def env(self, db: int) -> dict[str, str]:
        """The settings that select Sentinel."""
        return {
            "COUNTERMAND_REDIS_URL": self.url(db),
            "COUNTERMAND_REDIS_SENTINELS": self.addresses,
            "COUNTERMAND_REDIS_MASTER": MASTER,
        }

    def client(self, db: int) -> redis.Redis:
        """A sync client of the master, through the sentinels (the project's factory)."""
        sentinels = tuple(("127.0.0.1", s.port) for s in self.sentinels)
        return sync_client(
            RedisTarget(self.url(db), sentinels, MASTER),
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=2,
        )

    def master_port(self) -> int | None:
        """The master's port as a majority of the sentinels tell it; None while they differ."""
        ports = []
        for node in self.sentinels:
            answer = node.ask("SENTINEL", "get-master-addr-by-name", MASTER, password=None)
            ports.append(int(answer[1]) if answer else None)
        best = max(set(ports), key=ports.count)
        return best if best is not None and ports.count(best) >= QUORUM else None

    def ready(self) -> bool:
        """The replica is in sync and every sentinel knows the primary, the replica and the other
        sentinels: only then can they agree on a failover."""
        info = self.replica.ask("INFO", "replication") or {}
        if info.get("master_link_status") != "up":
            return False
        for node in self.sentinels:
            state = node.ask("SENTINEL", "master", MASTER, password=None)  # a dict
            if not state:
                return False
            if int(state.get("num-slaves", 0)) < 1:
                return False
            if int(state.get("num-other-sentinels", 0)) < len(self.sentinels) - 1:
                return False
        return True


@contextlib.contextmanager
def sentinel_deployment(startup_timeout: float = 60) -> Iterator[Deployment]:
    """Start a primary, a replica and three sentinels; yield them once a failover could
    happen; stop whatever still runs on exit."""
    folder = Path(tempfile.mkdtemp(prefix="countermand-sentinel-"))
    nodes: list[Node] = []
    try:
        p_port, r_port = free_port(), free_port()
        for name in ("primary", "replica"):
            (folder / name).mkdir()
        primary = Node(folder, "primary", server_args(folder / "primary", p_port), p_port)
        nodes.append(primary)
        follow = ("--replicaof", "127.0.0.1", str(p_port))
        replica = Node(folder, "replica", server_args(folder / "replica", r_port, *follow), r_port)
        nodes.append(replica)
        deployment = Deployment(folder, primary, replica)
        for i in range(3):
            port = free_port()
            node = Node(folder, f"sentinel-{i}", [str(sentinel_conf(folder, port, p_port)),
                                                  "--sentinel"], port)  # fmt: skip
            nodes.append(node)
            deployment.sentinels.append(node)
        wait_for(deployment.ready, startup_timeout, "the Sentinel deployment to be ready", 0.2)
        yield deployment
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(folder, ignore_errors=True)
