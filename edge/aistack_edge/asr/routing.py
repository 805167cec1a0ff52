"""Which ASR model serves a request: the `auto` alias, short aliases, and fallbacks.

Pure functions over the model cards that are up right now.
"""

from aistack_contract.models import ModelCard
from aistack_edge.catalog import Entry
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
# Short names a client may use instead of a full model id.
FAMILY_ALIASES = {"whisper-1": "whisper", "parakeet": "parakeet", "sensevoice": "sensevoice"}
# The whisper sizes `auto` prefers, best first (the contract's default is small).
WHISPER_PREFERENCE = ("whisper-small", "whisper-large-v3-turbo", "whisper-base", "whisper-medium")


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


def _best_of_family(entries: list[Entry], family: str) -> Entry | None:
    """The preferred model of `family`: its family is what its backend says it is."""
    members = [e for e in entries if e.card.family == family]
    if not members:
        return None
    return min(members, key=lambda e: _whisper_rank(e.card.id))


def _whisper_rank(model_id: str) -> int:
    if model_id in WHISPER_PREFERENCE:
        return WHISPER_PREFERENCE.index(model_id)
    return len(WHISPER_PREFERENCE)


def choose_model(requested: str, language: str | None, entries: list[Entry]) -> Entry:
    """The entry that serves `requested` (a model id, a short alias, or `auto`)."""
    if not entries:
        raise unavailable("no speech-to-text backend is up right now")
    for entry in entries:
        if entry.card.id == requested:
            return entry
    if requested in FAMILY_ALIASES:
        families: tuple[str, ...] = (FAMILY_ALIASES[requested],)
    elif requested == "auto":
        families = preferred_families(language)
    else:
        known = ", ".join(["auto", *(e.card.id for e in entries)])
        raise malformed(f"unknown ASR model {requested!r}; models served now: {known}")
    for pool in ([e for e in entries if _speaks(e.card, language)], entries):
        for family in families:
            if entry := _best_of_family(pool, family):
                return entry
    raise malformed(f"no installed ASR backend serves {requested!r}")
