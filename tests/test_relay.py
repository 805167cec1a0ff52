"""The edge's outbox backlog (edge/aistack_edge/relay.py) on its own: what a slow client
has not read yet, kept in order, in memory up to its bound and in temporary files past
it. The relays through it are tested end to end with a client that never reads
(test_speech.py, test_chat.py)."""

import os
import random

from aistack_edge.relay import Backlog


async def test_the_backlog_keeps_order_in_memory_then_in_files():
    backlog = Backlog(bound=64 << 10)
    rng = random.Random(7)
    chunks = [os.urandom(rng.randrange(1, 20_000)) for _ in range(300)]  # about 3 MB
    taken = bytearray()
    for n, chunk in enumerate(chunks):
        assert await backlog.put(chunk)
        assert backlog._in_memory <= 64 << 10
        if n % 7 == 0:  # a reader that keeps up now and then
            taken += await backlog.get() or b""
    assert any(part for part in backlog._parts if not isinstance(part, bytes))  # spilled
    backlog.end()
    while (data := await backlog.get()) is not None:
        taken += data
    assert bytes(taken) == b"".join(chunks)
    backlog.close()


async def test_a_backlog_that_may_not_spill_refuses_past_its_bound():
    backlog = Backlog(bound=10, spill=False)
    assert await backlog.put(b"12345")
    assert await backlog.put(b"67890")
    assert not await backlog.put(b"x")
    assert await backlog.get() == b"12345"
    assert await backlog.put(b"abc")
    backlog.end()
    assert [await backlog.get() for _ in range(3)] == [b"67890", b"abc", None]
