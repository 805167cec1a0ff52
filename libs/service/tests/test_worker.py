"""Job: a generator on a worker thread, its items awaited on the event loop."""

import asyncio
import threading
import time
from collections.abc import Generator

import pytest

from aistack_asr.job import Job


async def test_items_arrive_in_order_then_none() -> None:
    job = Job(lambda cancel: (n for n in range(5)), name="count")
    job.start()
    got = []
    while (item := await job.next()) is not None:
        got.append(item)
    assert got == [0, 1, 2, 3, 4]


async def test_an_error_of_the_work_is_raised_by_next() -> None:
    def work(cancel: threading.Event) -> Generator[int, None, None]:
        yield 1
        raise ValueError("broken")

    job = Job(work, name="broken")
    job.start()
    assert await job.next() == 1
    with pytest.raises(ValueError, match="broken"):
        await job.next()


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

    job = Job(endless, name="endless")
    job.start()
    assert await job.next() == 1
    job.stop()
    assert await asyncio.to_thread(job.join, 1.0)
    assert cleaned.is_set()
