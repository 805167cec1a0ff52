"""asr-sensevoice's settings: the shared ASR ones plus SenseVoice's own."""

from pathlib import Path

from pydantic import Field

from aistack_asr.settings import AsrSettings


class SenseVoiceSettings(AsrSettings):
    host: str = Field("127.0.0.1", validation_alias="AISTACK_ASR_SENSEVOICE_HOST")
    port: int = Field(11511, validation_alias="AISTACK_ASR_SENSEVOICE_PORT")
    sensevoice_model_dir: Path | None = None
    """SenseVoice Small as published (config.yaml, model.pt, am.mvn, the BPE model)."""
    sensevoice_vad_dir: Path | None = None
    """The fsmn-vad model as published (config.yaml, model.pt, am.mvn)."""
    sensevoice_use_itn: bool = True
    """Inverse text normalisation: punctuation, casing, digits."""
    sensevoice_cpu_threads: int = 0
    """Torch CPU threads; 0 uses every core."""
