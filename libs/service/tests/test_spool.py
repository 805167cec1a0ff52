"""The spooler the edge and every backend hold uploads in."""

import tempfile
from pathlib import Path

import pytest

from aistack_contract.errors import AistackError, ErrorKind
from aistack_service.spool import Spool


async def test_a_small_upload_stays_in_memory() -> None:
    spool = Spool(threshold=10)
    await spool.write(b"abc")
    await spool.write(b"def")
    assert (spool.size, spool.on_disk, spool.body()) == (6, False, b"abcdef")
    assert spool.reader().read() == b"abcdef"


async def test_a_large_one_goes_to_a_file_read_back_from_its_start() -> None:
    spool = Spool(threshold=10)
    for chunk in (b"0123456", b"789abc", b"def"):
        await spool.write(chunk)
    assert (spool.size, spool.on_disk) == (16, True)
    assert spool.reader().read() == b"0123456789abcdef"
    assert spool.reader().read() == b"0123456789abcdef"  # each reader starts over


async def test_a_reader_closed_by_its_sender_leaves_the_upload_readable() -> None:
    """aiohttp closes a file it has sent: the upload is sent twice when the language is
    detected first, then transcribed (or diarized, then transcribed)."""
    spool = Spool(threshold=10)
    await spool.write(b"0123456789abcdef")
    sent = spool.body()
    assert not isinstance(sent, bytes)
    assert sent.read() == b"0123456789abcdef"
    sent.close()
    assert spool.reader().read() == b"0123456789abcdef"
    spool.close()


async def test_no_room_is_a_network_error_of_its_provider(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "absent"))
    spool = Spool("Faster-Whisper", threshold=1)
    with pytest.raises(AistackError) as caught:
        await spool.write(b"too much")
    assert caught.value.body.kind is ErrorKind.NETWORK
    assert caught.value.body.provider == "Faster-Whisper"
    assert "no room to hold the upload" in caught.value.body.message
