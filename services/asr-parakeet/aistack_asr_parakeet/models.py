"""The one model this service serves, and where its `.nemo` file is."""

from pathlib import Path

from aistack_contract.models import ModelCard

MODEL_ID = "nvidia/parakeet-tdt-0.6b-v3"

LANGUAGES = [
    "bg", "hr", "cs", "da", "nl", "en", "et", "fi", "fr", "de", "el", "hu", "it",
    "lv", "lt", "mt", "pl", "pt", "ro", "sk", "sl", "es", "sv", "ru", "uk",
]  # fmt: skip
"""The 25 European languages of Parakeet TDT 0.6B v3."""


def find_model(path: Path | None) -> Path | None:
    """The `.nemo` file at `path`, or the newest one anywhere under the directory `path`."""
    if path is None:
        return None
    if path.is_file():
        return path
    if path.is_dir():
        found = [p for p in path.rglob("*.nemo") if p.is_file()]
        if found:
            return max(found, key=lambda p: p.stat().st_mtime)
    return None


def card() -> ModelCard:
    return ModelCard(
        id=MODEL_ID,
        owned_by="nvidia",
        capabilities=["asr"],
        languages=LANGUAGES,
        supports_streaming=False,
        supports_translate=False,
        supports_logprobs=False,
    )
