"""asr-parakeet's settings: the shared ASR ones plus Parakeet's own."""

from pathlib import Path
from typing import Self

from pydantic import Field, PositiveFloat, model_validator

from aistack_asr.settings import AsrSettings


class ParakeetSettings(AsrSettings):
    host: str = Field("127.0.0.1", validation_alias="AISTACK_ASR_PARAKEET_HOST")
    port: int = Field(11512, validation_alias="AISTACK_ASR_PARAKEET_PORT")
    parakeet_model_path: Path | None = None
    """The `.nemo` file of nvidia/parakeet-tdt-0.6b-v3, or a directory holding one (such as
    a Hugging Face hub cache); without one the service lists no model."""
    parakeet_window_sec: PositiveFloat = 600.0
    """Longer audio is transcribed in windows of this length..."""
    parakeet_overlap_sec: float = Field(10.0, ge=0)
    """...that overlap by this much; the words of two windows are stitched mid-overlap."""
    parakeet_min_last_chunk_sec: float = Field(60.0, ge=0)
    """A last window shorter than this is merged into the one before it."""
    parakeet_local_attention_after_sec: float = 300.0
    """A window longer than this runs the encoder with local attention (memory linear in
    length) instead of full attention (quadratic)."""
    parakeet_local_attention_context: tuple[int, int] = (256, 256)
    """Encoder frames (80 ms each) seen left and right in local-attention mode."""
    parakeet_cpu_threads: int = Field(0, ge=0)
    """torch's CPU threads; 0 keeps torch's default."""

    @model_validator(mode="after")
    def _overlap_fits(self) -> Self:
        if self.parakeet_overlap_sec >= self.parakeet_window_sec:
            raise ValueError("parakeet_overlap_sec must be shorter than parakeet_window_sec")
        return self
