"""asr-whisper's settings: the shared ASR ones plus faster-whisper's own."""

from pathlib import Path

from pydantic import Field

from aistack_asr.settings import AsrSettings


class WhisperSettings(AsrSettings):
    host: str = Field("127.0.0.1", validation_alias="AISTACK_ASR_WHISPER_HOST")
    port: int = Field(11510, validation_alias="AISTACK_ASR_WHISPER_PORT")
    whisper_model_dir: Path | None = None
    """CTranslate2 Whisper models: subdirectories named by size (`small`, `large-v3`, ...)
    or a Hugging Face hub cache holding Systran's `faster-whisper-<size>` repositories."""
    whisper_compute_type: str = "auto"
    """CTranslate2 compute type; `auto` is int8 on CPU and float16 on CUDA."""
    whisper_beam_size: int = 5
    whisper_cpu_threads: int = 0
    """CPU threads per transcription; 0 lets CTranslate2 choose."""
    whisper_window_sec: float = Field(120.0, ge=1.0)
    """Audio is transcribed a window of at most this long at a time (cut in a pause): the
    memory a transcription holds, whatever the recording's length. At least 1 s: a window
    of no samples would never move on."""
    whisper_batch_size: int = Field(0, ge=0)
    """Speech chunks decoded side by side (faster-whisper's batched pipeline); 0 decodes
    them one after another, each prompted with the text before it."""
