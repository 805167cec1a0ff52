"""What an ASR backend implements: its model cards, load, transcribe, unload."""

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar, Generic, TypeVar

from aistack_asr.audio import Audio
from aistack_asr.settings import AsrSettings
from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.events import BackendInfo, BackendSegment
from aistack_contract.models import ModelCard
from aistack_contract.transcription import TranscribeOptions

TranscribeEvent = BackendInfo | BackendSegment
S = TypeVar("S", bound=AsrSettings)


class Backend(ABC, Generic[S]):
    """One inference engine serving one or more models, with its settings.

    `load`, `transcribe` and `unload` run on worker threads, never on the event loop.
    """

    def __init__(self, settings: S) -> None:
        self.settings = settings

    provider: ClassVar[str]
    """The envelope's provider name, e.g. "Faster-Whisper"."""
    family: ClassVar[str]
    """The engine family the edge's `auto` routes by, e.g. "whisper"."""
    weights: ClassVar[str | None] = None
    """Its name in `make models`'s catalogue (aistack_service.weights), e.g. "asr-whisper":
    with `AISTACK_MODELS_DIR` set, the app answers `GET /weights` and `POST /weights/pull`."""
    detects_language: ClassVar[bool] = False
    """Whether `transcribe` honours `detect_only` (an info event with the language
    detected on the first 30 s, and no segments)."""

    @abstractmethod
    def cards(self) -> list[ModelCard]:
        """The models this backend can serve right now (only those actually present)."""

    @abstractmethod
    def load(self, model_id: str) -> Any:
        """Load one of `cards()`'s models into memory and return it."""

    def unload(self, model: Any) -> None:
        """Free what `load` took beyond the Python object itself (GPU memory, ...)."""

    @abstractmethod
    def transcribe(
        self,
        model: Any,
        audio: Audio,
        options: TranscribeOptions,
        cancel: threading.Event,
    ) -> Iterator[TranscribeEvent]:
        """Yield one BackendInfo, then one BackendSegment per segment as it is produced.

        `audio` decodes the upload as it is read (`pieces`), or at once (`whole`): an
        engine that can take it a window at a time holds a window, not the recording.
        Check `cancel` between segments and return when it is set.
        """

    def validate(self, card: ModelCard, options: TranscribeOptions) -> None:
        """Reject options the model can't honour before any work starts."""
        if options.translate and not card.supports_translate:
            raise AistackError(
                ErrorKind.MALFORMED, f"model {card.id} does not support translate", self.provider
            )
        if options.detect_only and not self.detects_language:
            raise AistackError(
                ErrorKind.MALFORMED, f"{self.provider} does not detect languages", self.provider
            )
