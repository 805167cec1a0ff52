"""The transcript measure the speech tests share: expected words heard, in their order."""

from aistack_testing.speech import words_in_order

SENTENCE = "The quick brown fox jumps over the lazy dog."


def test_a_faithful_transcript_scores_one():
    assert words_in_order(SENTENCE, "the quick, brown fox jumps over the lazy dog") == 1.0


def test_one_hearing_of_a_word_matches_one_expected_word():
    # Counted as a set, the one "the" stands for both of the sentence's: 3/9.
    assert words_in_order(SENTENCE, "dog the") == 1 / 9


def test_order_counts():
    backwards = "dog lazy the over jumps fox brown quick the"
    # Counted as a set, every word is heard: 1.0. In order: "the over the".
    assert words_in_order(SENTENCE, backwards) == 3 / 9


def test_a_repeated_word_counts_once_per_hearing():
    assert words_in_order("no no no no", "no") == 0.25


def test_a_missing_word_costs_its_share():
    assert words_in_order(SENTENCE, "the quick brown fox jumps over the dog") == 8 / 9
