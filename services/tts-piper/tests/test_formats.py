"""Every response format, asked for with the openai SDK, decodes back to the speech it should be."""

import io

import av
import numpy as np
import openai
import pytest

from aistack_testing.plugin import SENTENCE

# format: (codec the bytes must carry, sample rate of the decoded audio)
EXPECTED = {
    "wav": ("pcm_s16le", 22050),
    "mp3": ("mp3", 22050),
    "opus": ("opus", 48000),
    "aac": ("aac", 22050),
    "flac": ("flac", 22050),
}
PCM_RATE = 24000


def decoded(data: bytes) -> tuple[str, int, int, float]:
    """(codec, sample rate, channels, seconds) of encoded audio, decoded with PyAV."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return (
            stream.codec_context.codec.canonical_name,
            stream.rate,
            stream.channels,
            samples / stream.rate,
        )


@pytest.fixture(scope="module")
def reference_seconds(client: openai.OpenAI) -> float:
    """How long SENTENCE lasts, from a WAV of it."""
    wav = client.audio.speech.create(
        model="piper", voice="alloy", input=SENTENCE, response_format="wav"
    )
    return decoded(wav.content)[3]


def close_to(seconds: float, expected: float) -> bool:
    """Piper's durations vary a little run to run; lossy codecs pad a few frames."""
    return abs(seconds - expected) < 0.1 * expected + 0.15


def test_reference_is_plausible(reference_seconds: float) -> None:
    assert 3.0 < reference_seconds < 7.0


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_format_decodes_back(client: openai.OpenAI, reference_seconds: float, fmt: str) -> None:
    response = client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format=fmt
    )
    codec, rate, channels, seconds = decoded(response.content)
    assert (codec, rate, channels) == (*EXPECTED[fmt], 1)
    assert close_to(seconds, reference_seconds), (seconds, reference_seconds)
    assert response.response.headers["content-type"] == f"audio/{'mpeg' if fmt == 'mp3' else fmt}"


def test_mp3_is_the_default(client: openai.OpenAI) -> None:
    response = client.audio.speech.create(model="piper", voice="alloy", input="Hello there.")
    assert response.response.headers["content-type"] == "audio/mpeg"
    assert decoded(response.content)[0] == "mp3"


def test_pcm_is_raw_16_bit_at_24_khz(client: openai.OpenAI, reference_seconds: float) -> None:
    response = client.audio.speech.create(
        model="piper", voice="alloy", input=SENTENCE, response_format="pcm"
    )
    assert response.response.headers["content-type"] == "audio/pcm"
    samples = np.frombuffer(response.content, "<i2")
    assert close_to(len(samples) / PCM_RATE, reference_seconds)
    assert np.abs(samples).max() > 10_000  # Piper normalizes speech to full scale


def test_wav_header_says_streaming(client: openai.OpenAI) -> None:
    """Sizes of 0xFFFFFFFF: the length is not known when the header leaves."""
    data = client.audio.speech.create(
        model="piper", voice="alloy", input="Hello there.", response_format="wav"
    ).content
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    assert data[4:8] == data[40:44] == b"\xff\xff\xff\xff"


@pytest.mark.parametrize(("speed", "low", "high"), [(2.0, 0.4, 0.75), (0.5, 1.4, 2.2)])
def test_speed_changes_duration(
    client: openai.OpenAI, reference_seconds: float, speed: float, low: float, high: float
) -> None:
    response = client.audio.speech.create(
        model="piper", voice="alloy", input=SENTENCE, response_format="flac", speed=speed
    )
    assert low < decoded(response.content)[3] / reference_seconds < high
