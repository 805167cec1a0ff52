"""Which ASR model serves a request: the `auto` alias, short aliases, and fallbacks.

Pure functions over the model cards that are up right now.
"""

from aistack_contract.models import ModelCard
from aistack_edge.errors import malformed, unavailable

CJK = frozenset({"zh", "yue", "ja", "ko"})
PARAKEET_LANGUAGES = frozenset(
    [
        "bg",
        "hr",
        "cs",
        "da",
        "nl",
        "en",
        "et",
        "fi",
        "fr",
        "de",
        "el",
        "hu",
        "it",
        "lv",
        "lt",
        "mt",
        "pl",
        "pt",
        "ro",
        "sk",
        "sl",
        "es",
        "sv",
        "ru",
        "uk",
    ]
)
PROVIDERS = {"whisper": "Faster-Whisper", "parakeet": "Parakeet", "sensevoice": "SenseVoice"}
# Short names a client may use instead of a full model id.
FAMILY_ALIASES = {"whisper-1": "whisper", "parakeet": "parakeet", "sensevoice": "sensevoice"}
# The whisper sizes `auto` prefers, best first (the contract's default is small).
WHISPER_PREFERENCE = ("whisper-small", "whisper-large-v3-turbo", "whisper-base", "whisper-medium")


def family_of(card: ModelCard) -> str:
    lowered = card.id.lower()
    return next((family for family in PROVIDERS if family in lowered), "whisper")


def provider_of(card: ModelCard) -> str:
    return PROVIDERS[family_of(card)]


def preferred_families(language: str | None) -> tuple[str, ...]:
    """The families `auto` tries, in order, for a language hint."""
    base = (language or "").lower().split("-")[0]
    if base in CJK:
        return ("sensevoice", "whisper", "parakeet")
    if base in PARAKEET_LANGUAGES:
        return ("parakeet", "whisper", "sensevoice")
    return ("whisper", "sensevoice", "parakeet")


def _speaks(card: ModelCard, language: str | None) -> bool:
    if not language or not card.languages:
        return True
    return language.lower().split("-")[0] in card.languages


def _best_of_family(cards: list[ModelCard], family: str) -> ModelCard | None:
    members = [c for c in cards if family_of(c) == family]
    if not members:
        return None
    ranked = sorted(members, key=lambda c: _whisper_rank(c.id))
    return ranked[0]


def _whisper_rank(model_id: str) -> int:
    if model_id in WHISPER_PREFERENCE:
        return WHISPER_PREFERENCE.index(model_id)
    return len(WHISPER_PREFERENCE)


def choose_model(requested: str, language: str | None, cards: list[ModelCard]) -> ModelCard:
    """The card that serves `requested` (a model id, a short alias, or `auto`)."""
    if not cards:
        raise unavailable("no speech-to-text backend is up right now")
    for card in cards:
        if card.id == requested:
            return card
    if requested in FAMILY_ALIASES:
        families: tuple[str, ...] = (FAMILY_ALIASES[requested],)
    elif requested == "auto":
        families = preferred_families(language)
    else:
        known = ", ".join(["auto", *(c.id for c in cards)])
        raise malformed(f"unknown ASR model {requested!r}; models served now: {known}")
    for pool in ([c for c in cards if _speaks(c, language)], cards):
        for family in families:
            if card := _best_of_family(pool, family):
                return card
    raise malformed(f"no installed ASR backend serves {requested!r}")
