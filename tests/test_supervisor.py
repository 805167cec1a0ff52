"""scripts/supervisor.py with real processes: a child that exits is started again after a
backoff that doubles, and one that keeps crashing is given up on and reported."""

import sys
import time

import pytest


@pytest.fixture
def supervisor(script):
    module = script("supervisor")
    lines: list[str] = []
    policy = module.Policy(first_delay_s=0.05, max_delay_s=0.15, max_crashes=4, window_s=30)
    supervisor = module.Supervisor(policy, log=lines.append)
    supervisor.lines = lines
    yield module, supervisor
    supervisor.stop_all(timeout_s=2)


def run_until(supervisor, done, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, supervisor.lines
        supervisor.tick()
        time.sleep(0.01)


def test_a_child_that_keeps_crashing_is_given_up_on(supervisor):
    module, sup = supervisor
    child = sup.start(module.Child("crasher", [sys.executable, "-c", "raise SystemExit(3)"]))
    run_until(sup, lambda: child.given_up)
    assert child.restarts == 3
    delays = [line.rsplit(" in ", 1)[1] for line in sup.lines if "starting it again" in line]
    assert delays == ["0.05 s", "0.1 s", "0.15 s"]
    assert "crasher exited with status 3: 4 crashes within 30 s, giving up on it" in sup.lines[-1]
    time.sleep(0.3)
    sup.tick()
    assert child.restarts == 3 and not child.running


def test_a_killed_child_is_started_again(supervisor):
    module, sup = supervisor
    child = sup.start(
        module.Child("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    )
    first = child.proc.pid
    child.proc.kill()
    run_until(sup, lambda: child.running and child.proc.pid != first)
    assert child.restarts == 1 and not child.given_up
    assert "sleeper was killed by SIGKILL; starting it again in 0.05 s" in sup.lines


def test_stop_all_ends_every_child_and_restarts_nothing(supervisor):
    module, sup = supervisor
    children = [
        sup.start(
            module.Child(f"sleeper{i}", [sys.executable, "-c", "import time; time.sleep(60)"])
        )
        for i in range(2)
    ]
    sup.stop_all(timeout_s=5)
    sup.tick()
    assert all(not c.running and c.restarts == 0 for c in children)
