"""Sentence segments rebuilt from words: a pure function, plain tests."""

from aistack_asr_parakeet.segments import MAX_SEGMENT_SEC, build_segments
from aistack_contract.transcription import Word


def timed(text: str, start: float = 0.0, step: float = 0.5) -> list[Word]:
    """The words of `text`, one every `step` seconds from `start`, each `step` long."""
    return [
        Word(word=word, start=start + i * step, end=start + (i + 1) * step)
        for i, word in enumerate(text.split())
    ]


def test_one_segment_per_sentence() -> None:
    words = timed("Hello world. How are you? I am fine! And then… silence")
    segments = build_segments(words)
    assert [s.text for s in segments] == [
        "Hello world.",
        "How are you?",
        "I am fine!",
        "And then…",
        "silence",
    ]
    assert [s.id for s in segments] == [0, 1, 2, 3, 4]
    assert (segments[1].start, segments[1].end) == (1.0, 2.5)
    assert segments[1].words == words[2:5]


def test_closing_quotes_and_brackets_still_end_a_sentence() -> None:
    segments = build_segments(timed('He said "stop." Then (he left.) Done'))
    assert [s.text for s in segments] == ['He said "stop."', "Then (he left.)", "Done"]


def test_no_words_no_segments() -> None:
    assert build_segments([]) == []


def test_a_long_sentence_is_cut_after_its_last_clause_before_the_cap() -> None:
    # 80 words at 0.5 s: 40 s without a full stop; commas after words 10 and 50
    words = timed(" ".join(f"w{i}," if i in (10, 50) else f"w{i}" for i in range(80)) + ".")
    segments = build_segments(words)
    assert [len(s.words) for s in segments] == [51, 29]
    assert segments[0].text.endswith("w50,")
    assert all(s.end - s.start <= MAX_SEGMENT_SEC for s in segments)
    assert [w for s in segments for w in s.words] == words


def test_a_long_sentence_without_clauses_is_cut_at_the_cap() -> None:
    words = timed(" ".join(f"w{i}" for i in range(130)), step=0.5)  # 65 s
    segments = build_segments(words)
    assert [len(s.words) for s in segments] == [60, 60, 10]
    assert all(s.end - s.start <= MAX_SEGMENT_SEC for s in segments)


def test_an_early_clause_does_not_leave_an_overlong_remainder() -> None:
    # a comma after the second word, then 70 words: cut after the comma, then at the cap
    words = timed("a b, " + " ".join(f"w{i}" for i in range(70)))
    segments = build_segments(words, max_sec=10)
    assert segments[0].text == "a b,"
    assert all(s.end - s.start <= 10 for s in segments)
    assert [w for s in segments for w in s.words] == words
