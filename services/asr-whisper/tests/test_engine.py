"""How the service's options become faster-whisper's arguments."""

from aistack_asr_whisper import engine
from aistack_asr_whisper.settings import WhisperSettings
from aistack_contract.transcription import TranscribeOptions, VadParameters

SETTINGS = WhisperSettings()


def test_server_vad_settings_become_silero_options() -> None:
    """OpenAI's chunking_strategy server_vad: threshold, the silence that ends speech and
    the padding before it are Silero's threshold, min_silence_duration_ms, speech_pad_ms."""
    vad = VadParameters(threshold=0.4, prefix_padding_ms=300, silence_duration_ms=500)
    kwargs = engine.transcribe_options(TranscribeOptions(model="m", vad=vad), SETTINGS)
    assert kwargs["vad_filter"] is True
    assert kwargs["vad_parameters"] == {
        "threshold": 0.4,
        "speech_pad_ms": 300,
        "min_silence_duration_ms": 500,
    }


def test_unset_vad_settings_keep_faster_whispers_own() -> None:
    partial = TranscribeOptions(model="m", vad=VadParameters(threshold=0.6))
    assert engine.transcribe_options(partial, SETTINGS)["vad_parameters"] == {"threshold": 0.6}
    assert "vad_parameters" not in engine.transcribe_options(TranscribeOptions(model="m"), SETTINGS)
