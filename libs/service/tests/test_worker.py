"""Worker: a generator on a worker thread, its items awaited on the event loop."""

import asyncio
import contextlib
import threading
import time
from collections.abc import Generator

import pytest

from aistack_contract.jobs import Jobs
from aistack_service.worker import Worker


async def test_items_arrive_in_order_then_none() -> None:
    worker = Worker(lambda cancel: (n for n in range(5)), name="count")
    worker.start()
    got = []
    while (item := await worker.next()) is not None:
        got.append(item)
    assert got == [0, 1, 2, 3, 4]


async def test_an_error_of_the_work_is_raised_by_next() -> None:
    def work(cancel: threading.Event) -> Generator[int, None, None]:
        yield 1
        raise ValueError("broken")

    worker = Worker(work, name="broken")
    worker.start()
    assert await worker.next() == 1
    with pytest.raises(ValueError, match="broken"):
        await worker.next()


async def test_stop_ends_the_thread_and_runs_the_work_cleanup() -> None:
    cleaned = threading.Event()

    def endless(cancel: threading.Event) -> Generator[int, None, None]:
        try:
            n = 0
            while not cancel.is_set():
                time.sleep(0.05)
                n += 1
                yield n
        finally:
            cleaned.set()

    worker = Worker(endless, name="endless")
    worker.start()
    assert await worker.next() == 1
    worker.stop()
    assert await asyncio.to_thread(worker.join, 1.0)
    assert cleaned.is_set()


async def test_a_job_is_tracked_until_its_worker_thread_ends() -> None:
    """A hang-up noticed by a write ends the handler's stream, and the connection's loss
    then cancels the handler again while it waits for its worker in `finally`: the job
    must stay in the table (a stop says it runs) until the thread has ended, or the edge
    releases the GPU slot while the thread is still inside a window."""
    jobs = Jobs()
    in_window, window_done = threading.Event(), threading.Event()

    def one_long_window(cancel: threading.Event) -> Generator[int, None, None]:
        yield 1
        in_window.set()
        window_done.wait(30)  # a window's compute: the cancel is seen after it
        yield 2

    async def handler() -> None:  # what the ASR shell and tts-piper do
        with jobs.track("job-1"):
            worker = Worker(one_long_window, name="job-1")
            worker.start()
            try:
                await worker.next()
                await asyncio.Event().wait()  # streaming to the client
            finally:
                worker.stop()
                await worker.finished()

    task = asyncio.create_task(handler())
    await asyncio.to_thread(in_window.wait, 10)
    task.cancel()  # the hang-up
    await asyncio.sleep(0.05)
    task.cancel()  # the connection's loss, while `finally` waits for the worker
    with contextlib.suppress(asyncio.CancelledError):
        await task
    try:
        assert (await jobs.stop("job-1", 0.2)).running
        assert jobs.running() == ["job-1"]
    finally:
        window_done.set()
    assert not (await jobs.stop("job-1", 10)).running
    assert jobs.running() == []


async def test_a_cancelled_job_that_does_not_stop_is_reported_stuck() -> None:
    """`when_stuck`: a job still running its grace after the cancel is reported (the
    service shell exits then); one that stops within it is not."""
    jobs, stuck = Jobs(), []
    jobs.when_stuck(0.3, lambda job_id, after_s: stuck.append((job_id, after_s)))
    window_done = threading.Event()

    def one_long_window(cancel: threading.Event) -> Generator[int, None, None]:
        yield 1
        window_done.wait(30)

    def steps(cancel: threading.Event) -> Generator[int, None, None]:
        while True:
            time.sleep(0.01)
            yield 1

    async def handler(job_id: str, work) -> None:
        with jobs.track(job_id):
            worker = Worker(work, name=job_id)
            worker.start()
            while await worker.next() is not None:
                pass

    stubborn = asyncio.create_task(handler("stubborn", one_long_window))
    quick = asyncio.create_task(handler("quick", steps))
    await asyncio.sleep(0)  # both handlers run to their first wait: tracked
    assert sorted(jobs.running()) == ["quick", "stubborn"]
    try:
        assert (await jobs.stop("quick", 5)).running is False
        cancelled = time.monotonic()
        assert (await jobs.stop("stubborn", 0)).running is True
        while not stuck:
            assert time.monotonic() - cancelled < 10
            await asyncio.sleep(0.01)
        assert stuck == [("stubborn", 0.3)]
        assert time.monotonic() - cancelled >= 0.3
    finally:
        window_done.set()
    await asyncio.gather(stubborn, quick, return_exceptions=True)
