"""The diarizer's internal protocol (POST /diarize of services/diarize-senko): who spoke
when, and a voice print per speaker, for the edge to compose with a transcription."""

from pydantic import BaseModel, Field

MAX_REFERENCES = 4
"""Known speakers a request may name (as OpenAI's `known_speaker_names[]`)."""


class DiarizeOptions(BaseModel):
    """The `options` part of POST /diarize; the `file` part is the audio, and each
    `reference` part (up to MAX_REFERENCES) a short clip of one known speaker."""

    model: str


class SpeakerTurn(BaseModel):
    start: float
    end: float
    speaker: str
    """The diarizer's own label (`SPEAKER_01`, ...), the most talkative first."""


class Diarization(BaseModel):
    duration: float
    turns: list[SpeakerTurn]
    """In time order; turns of different speakers do not overlap."""
    speakers: dict[str, list[float]] = Field(default_factory=dict)
    """Each speaker's voice print: the mean of its speech's embeddings."""
    references: list[list[float] | None] = Field(default_factory=list)
    """Each `reference` part's voice print, in the order sent (None: no speech heard)."""
