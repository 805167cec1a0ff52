"""Which ASR model serves a request: the `auto` alias, short aliases, and fallbacks.

Pure functions over the model cards that are up right now.
"""

from aistack_contract.languages import language_tag, spoken_by
from aistack_contract.models import ModelCard
from aistack_edge.catalog import Entry
from aistack_edge.errors import malformed, quoted, unavailable

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
# The contract's Whisper for `auto` and `whisper-1`, where it is installed.
DEFAULT_WHISPER = "whisper-small"


def preferred_families(language: str | None) -> tuple[str, ...]:
    """The families `auto` tries, in order, for a language hint."""
    base = language_tag(language)
    if base in CJK:
        return ("sensevoice", "whisper", "parakeet")
    if base in PARAKEET_LANGUAGES:
        return ("parakeet", "whisper", "sensevoice")
    return ("whisper", "sensevoice", "parakeet")


def _speaks(card: ModelCard, language: str | None) -> bool:
    return language_tag(language) is None or spoken_by(language, card.languages) is not None


def _best_of_family(entries: list[Entry], family: str) -> Entry | None:
    """The preferred model of `family` (what its backend says it is): the contract's
    default, else the one with the largest weights; the first listed of equals."""
    members = [e for e in entries if e.card.family == family]
    if not members:
        return None
    return min(members, key=lambda e: (e.card.id != DEFAULT_WHISPER, -(e.card.size or 0)))


def choose_model(
    requested: str, language: str | None, entries: list[Entry], translate: bool = False
) -> Entry:
    """The entry that serves `requested` (a model id, a short alias, or `auto`), for a
    request with the language hint `language` that asks for a translation or not."""
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
        raise malformed(f"unknown ASR model {quoted(requested)}; models served now: {known}")
    pools = [[e for e in entries if _speaks(e.card, language)], entries]
    if translate:  # a model that translates first, whatever the hint prefers
        pools = [[e for e in pool if e.card.supports_translate] for pool in pools] + pools
    for pool in pools:
        for family in families:
            if entry := _best_of_family(pool, family):
                return entry
    raise malformed(f"no installed ASR backend serves {quoted(requested)}")


def detector_for(
    requested: str, language: str | None, entries: list[Entry], translate: bool = False
) -> Entry | None:
    """The Whisper model that detects the language of an `auto` request that names none,
    before it is routed as if it had: only where another family is installed for the
    detected language to reach. (A translation goes to Whisper whatever the language.)"""
    if requested != "auto" or language_tag(language) is not None or translate:
        return None
    if all(e.card.family == "whisper" for e in entries):
        return None  # Whisper serves every language: it detects as it transcribes
    multilingual = [e for e in entries if len(e.card.languages or ()) > 1]
    return _best_of_family(multilingual, "whisper")
