"""A real redis-server on a free loopback port."""

import subprocess
import time
from pathlib import Path

import redis

from aistack_edge.slot.stores import STORE_KEPT
from aistack_testing import system
from aistack_testing.processes import free_port


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        binary = system.which("redis-server")
        if binary is None:
            raise RuntimeError(system.reason("redis-server"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._args = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
        ]  # fmt: skip
        self.proc: subprocess.Popen | None = None

    def start(self, mark_kept: bool = True) -> None:
        """Start the server; `mark_kept=False` leaves it as a restarted one looks."""
        self.proc = subprocess.Popen(self._args, stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()
        if mark_kept:
            self._mark_kept()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def flush(self) -> None:
        client = redis.Redis.from_url(self.url)
        client.flushall()
        client.close()
        self._mark_kept()

    def _mark_kept(self) -> None:
        """A store emptied by the tests, not by a restart: no lease of a running holder
        was lost in it, so the edge need not wait one TTL before it takes the slot."""
        client = redis.Redis.from_url(self.url)
        client.set(STORE_KEPT, "1")
        client.close()
