"""SenseVoice's raw output to clean text, language and word times: pure logic."""

import pytest

from aistack_asr_sensevoice import postprocess
from aistack_contract.transcription import Word


@pytest.mark.parametrize(
    ("raw", "language"),
    [
        ("<|en|><|NEUTRAL|><|Speech|><|withitn|>Hello.", "en"),
        ("  <|yue|><|HAPPY|>你好", "yue"),
        ("<|nospeech|><|Event_UNK|>", None),
        ("<|NEUTRAL|><|en|>hello", None),  # the language tag comes first or not at all
        ("hello <|en|>", None),
        ("", None),
    ],
)
def test_language_is_the_leading_tag(raw: str, language: str | None) -> None:
    assert postprocess.language_of(raw) == language


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("nice to meetyou", "nice to meet you"),
        ("thequickbrownfox jumps", "the quick brown fox jumps"),
        ("Hello.world, how are you", "Hello. world, how are you"),
        ("don'tworry", "don't worry"),
        ("  spaced   out  ", "spaced out"),
        ("It costs 3.5 dollars, e.g. today", "It costs 3.5 dollars, e.g. today"),
        ("SenseVoice and NASA", "SenseVoice and NASA"),  # camelCase and acronyms stay
        ("chieftain", "chieftain"),  # a known long word stays whole
        ("xqzvbnrt", "xqzvbnrt"),  # no split into real words: left as it is
        ("今天天气很好", "今天天气很好"),
        ("我说nicetomeetyou了", "我说nice to meet you了"),
    ],
)
def test_respace_puts_back_the_spaces(text: str, clean: str) -> None:
    assert postprocess.respace(text) == clean


def test_tags_go_and_their_place_becomes_a_space() -> None:
    raw = "<|en|><|NEUTRAL|><|Speech|><|withitn|>Good morning.<|HAPPY|>Thanks"
    assert postprocess.respace(postprocess.strip_tags(raw)) == "Good morning. Thanks"


def test_word_times_are_absolute_seconds_without_tags() -> None:
    words = postprocess.word_times(
        ["\u2581Good", "<|NEUTRAL|>", "morning", ".", "\u2581"],
        [[0, 300], [300, 360], [360, 900], [900, 960], [960, 1000]],
        start=2.0,
        end=3.5,
    )
    assert words == [
        Word(start=2.0, end=2.3, word="Good"),
        Word(start=2.36, end=2.96, word="morning."),  # punctuation joins its word
    ]


def test_glued_words_share_their_time_by_length() -> None:
    (meet, you) = postprocess.word_times(["meetyou"], [[0, 700]], start=1.0, end=5.0)
    assert (meet.word, meet.start, meet.end) == ("meet", 1.0, 1.4)
    assert (you.word, you.start, you.end) == ("you", 1.4, 1.7)


def test_word_times_stay_in_the_chunk_and_never_go_back() -> None:
    words = postprocess.word_times(
        ["a", "b", "c"], [[0, 500], [400, 900], [1200, 2500]], start=10.0, end=11.0
    )
    assert [(w.start, w.end) for w in words] == [(10.0, 10.5), (10.5, 10.9), (11.0, 11.0)]


def test_parse_builds_the_chunk() -> None:
    raw = {
        "text": "<|en|><|NEUTRAL|><|Speech|><|withitn|>nice to meetyou.",
        "words": ["nice", "to", "meetyou", "."],
        "timestamp": [[0, 200], [200, 300], [300, 700], [700, 720]],
    }
    chunk = postprocess.parse(raw, start=0.5, end=1.5)
    assert chunk.language == "en"
    assert chunk.text == "nice to meet you."
    assert [w.word for w in chunk.words or []] == ["nice", "to", "meet", "you."]


def test_parse_without_timestamps_has_no_words() -> None:
    chunk = postprocess.parse({"text": "<|zh|><|NEUTRAL|><|Speech|><|woitn|>你好"}, 0.0, 1.0)
    assert (chunk.language, chunk.text, chunk.words) == ("zh", "你好", None)
