"""Worker: a generator on a worker thread, its items awaited on the event loop."""

import asyncio
import threading
import time
from collections.abc import Generator

import pytest

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
