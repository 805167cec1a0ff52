"""Language hints as clients write them, read as the codes that model cards list.

Browsers send BCP 47 tags (`navigator.language` is `en-US`), recorders and shells POSIX
locales (`en_GB.UTF-8`), people `EN`. A model card lists ISO 639-1 codes, and a few of
its own (`yue` for Cantonese, Whisper's `jw` for Javanese). One reading for every
component: the edge routes and forwards by it, every ASR backend checks by it.

The language field is a hint, not a constraint: a hint that names none of a model's
languages is dropped (the model detects the language), never refused.
"""

import logging
from collections.abc import Collection

from aistack_contract.models import ModelCard

log = logging.getLogger(__name__)

# Hints that say "no particular language": BCP 47's undetermined and multiple.
_NO_HINT = frozenset({"", "auto", "und", "mul", "zxx"})
# BCP 47 extended language subtags that name a language of their own (zh-yue is
# Cantonese); cmn (Mandarin) is what model cards call zh.
_EXTLANGS = {"yue": "yue", "cmn": "zh"}
# Two spellings of one language: ISO 639's withdrawn codes, and Whisper's `jw`.
_SAME = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro"}


def language_tag(hint: str | None) -> str | None:
    """The language a hint names, as a lower-case primary code: `en-US`, `en_GB.UTF-8`,
    `EN`, `zh-Hant-TW`, `pt-BR`, `zh-yue` → `en`, `en`, `en`, `zh`, `pt`, `yue`. None
    for no hint (absent, empty, `auto`, `und`)."""
    if hint is None:
        return None
    locale = hint.strip().split(".")[0].split("@")[0]  # POSIX: lang_TERRITORY.charset@modifier
    subtags = locale.replace("_", "-").lower().split("-")
    primary = subtags[0]
    if primary in _NO_HINT:
        return None
    if len(subtags) > 1 and subtags[1] in _EXTLANGS:
        return _EXTLANGS[subtags[1]]
    return primary


def spoken_by(hint: str | None, languages: Collection[str]) -> str | None:
    """The code among a model's `languages` that `hint` names, spelled as the model
    spells it; None when the hint names none of them (or is no hint). A model that lists
    no languages takes any hint's primary code."""
    primary = language_tag(hint)
    if primary is None or not languages:
        return primary
    wanted = _SAME.get(primary, primary)
    for code in languages:
        if _SAME.get(code, code) == wanted:
            return code
    return None


def hint_for(card: ModelCard, hint: str | None) -> str | None:
    """The language hint to give the model of `card`: the code it knows, or none (with a
    logged note) where the hint names no language of its."""
    language = spoken_by(hint, card.languages)
    if language is None and language_tag(hint) is not None:
        log.info("%s does not know the language %r: hint dropped, the model detects", card.id, hint)
    return language
