"""How the service calls faster-whisper; a benchmark can call it the same way in-process:

model = WhisperModel(str(model_path), **model_options(settings))
segments, info = model.transcribe(audio, **transcribe_options(options, settings))
"""

from typing import Any

import ctranslate2

from aistack_asr_whisper.settings import WhisperSettings
from aistack_contract.transcription import TranscribeOptions, VadParameters


def device(settings: WhisperSettings) -> str:
    if settings.device == "auto":
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    return settings.device


def model_options(settings: WhisperSettings) -> dict[str, Any]:
    """Keyword arguments of `faster_whisper.WhisperModel` besides the model path."""
    on = device(settings)
    compute_type = settings.whisper_compute_type
    if compute_type == "auto":
        compute_type = "float16" if on == "cuda" else "int8"
    return {"device": on, "compute_type": compute_type, "cpu_threads": settings.whisper_cpu_threads}


def transcribe_options(options: TranscribeOptions, settings: WhisperSettings) -> dict[str, Any]:
    """Keyword arguments of `WhisperModel.transcribe` besides the audio."""
    kwargs: dict[str, Any] = {
        "language": options.language,
        "task": "translate" if options.translate else "transcribe",
        "initial_prompt": options.prompt,
        "beam_size": settings.whisper_beam_size,
        "word_timestamps": options.word_timestamps,
        "vad_filter": True,
    }
    if options.temperature is not None:
        kwargs["temperature"] = options.temperature
    if options.vad is not None:
        kwargs["vad_parameters"] = vad_parameters(options.vad)
    return kwargs


def vad_parameters(vad: VadParameters) -> dict[str, Any]:
    """OpenAI's `server_vad` settings as faster-whisper's Silero VadOptions: the speech
    threshold, the silence that ends speech, and the padding kept before (and, in Silero,
    after) it."""
    names = {
        "threshold": "threshold",
        "silence_duration_ms": "min_silence_duration_ms",
        "prefix_padding_ms": "speech_pad_ms",
    }
    given = vad.model_dump(exclude_none=True)
    return {names[key]: value for key, value in given.items()}
