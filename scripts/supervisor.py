"""Keep child processes running: one that exits is started again after a backoff that
doubles with each crash, and one that crashes too often in a short while is reported and
left down instead of being restarted forever.

Small on purpose: `make up` runs a handful of processes in the foreground, and this is all
the supervision they need (see docs/deploy.md for why not supervisor, circus or honcho).
"""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Policy:
    first_delay_s: float = 0.5  # a first crash is retried at once, nearly
    max_delay_s: float = 8.0
    max_crashes: int = 5  # this many crashes within window_s: given up on
    window_s: float = 60.0

    def delay(self, crashes: int) -> float:
        return min(self.first_delay_s * 2 ** (crashes - 1), self.max_delay_s)


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: dict[str, str] | None = None
    stdout: int | None = None
    proc: subprocess.Popen | None = None
    crashes: list[float] = field(default_factory=list)  # when, within the policy's window
    restart_at: float | None = None
    restarts: int = 0
    given_up: bool = False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def describe(status: int) -> str:
    if status < 0:
        return f"was killed by {signal.Signals(-status).name}"
    return f"exited with status {status}"


class Supervisor:
    def __init__(
        self,
        policy: Policy = Policy(),
        log: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._log = log
        self._clock = clock
        self.children: list[Child] = []
        self._stopping = False

    def start(self, child: Child) -> Child:
        self.children.append(child)
        self._spawn(child)
        return child

    def tick(self) -> None:
        """Notice exits and start again what is due; call it often (every 0.1-0.5 s)."""
        now = self._clock()
        for child in self.children:
            if self._stopping or child.given_up:
                continue
            if child.restart_at is None and child.proc is not None:
                status = child.proc.poll()
                if status is not None:
                    self._crashed(child, status, now)
            if child.restart_at is not None and now >= child.restart_at:
                child.restart_at = None
                child.restarts += 1
                self._spawn(child)

    def stop_all(self, timeout_s: float = 10.0) -> None:
        """SIGTERM to every child, the last started first; SIGKILL to any still there after
        `timeout_s`."""
        self._stopping = True
        for child in reversed(self.children):
            if child.running:
                child.proc.terminate()
        deadline = self._clock() + timeout_s
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.0, deadline - self._clock()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()

    def _spawn(self, child: Child) -> None:
        env = None if child.env is None else {**os.environ, **child.env}
        child.proc = subprocess.Popen(child.argv, env=env, stdout=child.stdout)
        self._log(f"{child.name} started (pid {child.proc.pid})")

    def _crashed(self, child: Child, status: int, now: float) -> None:
        policy = self.policy
        child.crashes = [t for t in child.crashes if now - t < policy.window_s] + [now]
        crashes = len(child.crashes)
        if crashes >= policy.max_crashes:
            child.given_up = True
            self._log(
                f"{child.name} {describe(status)}: {crashes} crashes within "
                f"{policy.window_s:.0f} s, giving up on it (its output above says why); "
                "what it serves stays down until make up is run again"
            )
            return
        delay = policy.delay(crashes)
        child.restart_at = now + delay
        self._log(f"{child.name} {describe(status)}; starting it again in {delay:g} s")
