"""Sentence spans with spaCy's sentencizer, in time linear in the text's length."""

from __future__ import annotations

import time

import pytest

from loomdb.ml.sentences import MAX_RUN, long_runs, split_sentences

pytestmark = pytest.mark.ml


def texts(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[a:b] for a, b in spans]


def test_sentences_abbreviations_and_blank_lines() -> None:
    text = "Dr. Smith arrived, e.g. today. She left!\n\n# Heading\nA line without a stop"
    assert texts(text, split_sentences(text)) == [
        "Dr. Smith arrived, e.g. today.", "She left!", "# Heading\nA line without a stop"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("char", ["#", "(", ")", "a"])
def test_an_overlong_run_is_cut_by_length_in_linear_time(char: str) -> None:
    """10,000 "#" took spaCy 10 s (affixes are stripped one character at a time)."""
    text = f"Before it. {char * 1_000_000} After it."
    started = time.monotonic()
    spans = split_sentences(text)
    assert time.monotonic() - started < 10
    assert texts(text, spans)[0] == "Before it." and texts(text, spans)[-1] == "After it."
    middle = spans[1:-1]
    assert all(b - a <= MAX_RUN for a, b in middle)
    assert "".join(texts(text, middle)) == char * 1_000_000


@pytest.mark.timeout(60)
def test_many_runs_just_under_the_limit_stay_fast() -> None:
    text = ("#" * MAX_RUN + "\n") * (1_000_000 // (MAX_RUN + 1))
    started = time.monotonic()
    split_sentences(text)
    assert time.monotonic() - started < 10


def test_long_runs_are_found_within_bounds() -> None:
    text = "a" * MAX_RUN + " " + "b" * (MAX_RUN + 1) + " c"
    assert long_runs(text) == [(MAX_RUN + 1, 2 * MAX_RUN + 2)]
    assert long_runs(text, 0, MAX_RUN + 10) == []
