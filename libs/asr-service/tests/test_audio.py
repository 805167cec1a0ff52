"""Audio decoding on real speech in the formats users upload, a piece at a time, and on
bad input."""

from pathlib import Path

import numpy as np
import pytest

from aistack_asr.audio import SAMPLE_RATE, Audio, decode_audio
from aistack_contract.errors import AistackError, ErrorKind
from aistack_testing.audio import transcode


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".m4a", ".ogg", ".flac", ".webm"])
def test_decodes_each_upload_format(speech_wav: Path, tmp_path: Path, suffix: str) -> None:
    data = transcode(speech_wav, tmp_path / f"speech{suffix}").read_bytes()
    audio = decode_audio(data, "Test")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 3.0 < audio.size / SAMPLE_RATE < 8.0
    assert 0.05 < float(np.abs(audio).max()) <= 1.0


@pytest.mark.parametrize("data", [b"", b"not audio at all" * 100, bytes(range(256)) * 40])
def test_garbage_is_malformed(data: bytes) -> None:
    with pytest.raises(AistackError) as caught:
        decode_audio(data, "Test")
    assert caught.value.body.kind == ErrorKind.MALFORMED
    assert caught.value.body.provider == "Test"


def test_longer_than_the_cap_is_overflow(speech_wav: Path) -> None:
    data = speech_wav.read_bytes()
    assert decode_audio(data, "Test", max_seconds=10).size > 0
    with pytest.raises(AistackError) as caught:
        decode_audio(data, "Test", max_seconds=1.5)
    assert caught.value.body.kind == ErrorKind.OVERFLOW


def test_a_header_declaring_more_than_the_cap_is_overflow_at_once(speech_wav: Path) -> None:
    """A file whose header says it lasts longer than the cap is refused before decoding."""
    data = decode_audio(speech_wav.read_bytes(), "Test")  # about five seconds
    with pytest.raises(AistackError) as caught:
        decode_audio(speech_wav.read_bytes(), "Test", max_seconds=data.size / SAMPLE_RATE / 2)
    assert caught.value.body.kind == ErrorKind.OVERFLOW
    assert "declares" in caught.value.body.message


@pytest.mark.parametrize("seconds", [0.7, 2.0, 60.0])
def test_pieces_and_blocks_are_the_whole_in_turn(speech_wav: Path, seconds: float) -> None:
    """What an engine reads a piece or a block at a time is the whole recording, sample
    for sample; blocks are of the size asked but the last, and only the last says so;
    `first` decodes no further than asked."""
    whole = decode_audio(speech_wav.read_bytes(), "Test")
    with speech_wav.open("rb") as file:
        audio = Audio.open(file, "Test")
        assert abs(audio.declared - whole.size / SAMPLE_RATE) < 0.01
        assert np.array_equal(np.concatenate(list(audio.pieces())), whole)
        assert audio.complete and audio.samples == whole.size
        blocks = list(audio.blocks(seconds))
        assert np.array_equal(np.concatenate([b for b, _ in blocks]), whole)
        assert [last for _, last in blocks] == [False] * (len(blocks) - 1) + [True]
        assert all(b.size == int(seconds * SAMPLE_RATE) for b, _ in blocks[:-1])
        assert np.array_equal(audio.first(1.0), whole[:SAMPLE_RATE])
        assert not audio.complete
