"""ExtractiveSummarizer over real MiniLM embeddings, and the PageRank it ranks sentences with."""

from __future__ import annotations

import numpy as np
import pytest

from loomdb.errors import InvalidInput
from loomdb.ml import ExtractiveSummarizer, MiniLMEmbedder
from loomdb.ml.summarize import pagerank

TOPIC = [
    "The city council approved a new budget for public transport on Tuesday.",
    "The transport budget adds bus lines and extends the tram network.",
    "Council members said the transport plan would cut travel times across the city.",
    "Residents welcomed the extra buses and trams in the approved budget.",
]
OUTLIER = "My grandmother's apple pie recipe needs cinnamon and butter."


@pytest.fixture(scope="module")
def summarizer() -> ExtractiveSummarizer:
    return ExtractiveSummarizer(MiniLMEmbedder())


def words(text: str) -> int:
    return len(text.split())


@pytest.mark.ml
def test_the_summary_keeps_central_sentences_and_drops_the_outlier(
    summarizer: ExtractiveSummarizer,
) -> None:
    text = " ".join([TOPIC[0], OUTLIER, *TOPIC[1:]])
    summary = summarizer.summarize([text], max_words=30)
    assert 0 < words(summary) <= 30
    assert OUTLIER not in summary
    assert any(sentence in summary for sentence in TOPIC)


@pytest.mark.ml
def test_picked_sentences_keep_their_original_order(summarizer: ExtractiveSummarizer) -> None:
    summary = summarizer.summarize(TOPIC, max_words=40)
    positions = [summary.find(s) for s in TOPIC if s in summary]
    assert len(positions) >= 2 and positions == sorted(positions)
    assert words(summary) <= 40


@pytest.mark.ml
def test_repeated_sentences_are_picked_once(summarizer: ExtractiveSummarizer) -> None:
    texts = [TOPIC[0], TOPIC[0], TOPIC[0], *TOPIC[1:], OUTLIER]
    summary = summarizer.summarize(texts, max_words=200)
    assert summary.count(TOPIC[0]) == 1


@pytest.mark.ml
def test_the_same_input_gives_the_same_summary(summarizer: ExtractiveSummarizer) -> None:
    text = " ".join(TOPIC * 3 + [OUTLIER])
    assert summarizer.summarize([text], 25) == summarizer.summarize([text], 25)


@pytest.mark.ml
def test_one_sentence_is_its_own_summary_cut_to_max_words(
    summarizer: ExtractiveSummarizer,
) -> None:
    assert summarizer.summarize([TOPIC[0]], 80) == TOPIC[0]
    assert summarizer.summarize([TOPIC[0]], 3) == "The city council"


@pytest.mark.ml
def test_when_no_sentence_fits_the_most_central_is_cut(
    summarizer: ExtractiveSummarizer,
) -> None:
    summary = summarizer.summarize(TOPIC, max_words=4)
    assert words(summary) == 4
    assert any(sentence.startswith(summary) for sentence in TOPIC)


def test_no_text_gives_an_empty_summary() -> None:
    summarizer = ExtractiveSummarizer(MiniLMEmbedder())
    assert summarizer.summarize([]) == "" and summarizer.summarize(["", " \n "]) == ""


@pytest.mark.ml
def test_long_inputs_consider_evenly_spaced_sentences(summarizer: ExtractiveSummarizer) -> None:
    sentences = [f"Sentence number {i} talks about topic {i % 7}." for i in range(1000)]
    capped = ExtractiveSummarizer(summarizer.embedder, max_sentences=50)
    considered = capped.candidate_sentences([" ".join(sentences)])
    assert len(considered) == 50
    assert considered[0] == sentences[0] and considered[-1] == sentences[-1]
    assert 0 < words(capped.summarize([" ".join(sentences)], 30)) <= 30


def test_pagerank_ranks_the_hub_first_and_sums_to_one() -> None:
    star = np.zeros((5, 5))
    star[0, 1:] = star[1:, 0] = 1.0
    rank = pagerank(star)
    assert rank.sum() == pytest.approx(1.0)
    assert int(np.argmax(rank)) == 0 and rank[1:] == pytest.approx([rank[1]] * 4)
    assert pagerank(np.zeros((4, 4))) == pytest.approx([0.25] * 4)


@pytest.mark.parametrize("texts, max_words, message", [
    ("a bare string", 10, "sequence of strings"),
    (["text"], 0, "max_words"),
    (["text"], True, "max_words"),
])
def test_bad_arguments_are_refused(texts: object, max_words: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ExtractiveSummarizer(MiniLMEmbedder()).summarize(texts, max_words)  # type: ignore[arg-type]


@pytest.mark.parametrize("settings", [{"max_sentences": 0}, {"relevance": 0.0}])
def test_bad_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(InvalidInput):
        ExtractiveSummarizer(MiniLMEmbedder(), **settings)  # type: ignore[arg-type]


@pytest.mark.ml
def test_units_with_known_vectors_are_ranked_without_embedding_again(
        summarizer: ExtractiveSummarizer) -> None:
    units = ["The deploy moved to Friday.", "Friday works for the deploy, agreed.",
             "Anyone seen my umbrella?", "Deploy on Friday at noon then."]
    vectors = summarizer.embedder.embed(units)

    class NoEmbedding:
        model_id, dim = "none", 384

        def embed(self, texts: object) -> np.ndarray:
            raise AssertionError("summarize_units must not embed")

        def count_tokens(self, texts: object) -> list[int]:
            return []

    offline = ExtractiveSummarizer(NoEmbedding())
    summary = offline.summarize_units(units, vectors, max_words=12)
    assert "umbrella" not in summary and "Friday" in summary
    assert " ".join(u for u in units if u in summary) == summary  # whole units, in order
    with pytest.raises(InvalidInput):
        offline.summarize_units(units, vectors[:2])
