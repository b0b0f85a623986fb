"""OpenAICompatibleProvider against a local OpenAI-style server started by the tests.

The server's ``/v1/embeddings`` returns REAL all-MiniLM-L6-v2 vectors; its
``/v1/chat/completions`` returns a canned answer, because a real LLM cannot run on this
machine (2 CPU cores, no GPU). Failures are injected through the server and the tests assert
both the outcome and how many requests the server saw.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from loomdb.errors import BackendUnavailable, InvalidInput, MissingDependency, ProviderError
from loomdb.ml import MiniLMEmbedder, OpenAICompatibleProvider, SpacyEntityExtractor
from loomdb.ml.bridge import Entity
from loomdb.ml.openai_compat import locate_entities

from .openai_server import FakeOpenAIServer, Fault

EMBEDDINGS = "/v1/embeddings"
CHAT = "/v1/chat/completions"
TEXTS = ["Alice met Bob in Paris", "graphs and vectors", "a third text", "four", "five"]
Factory = Callable[..., OpenAICompatibleProvider]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(autouse=True)
def load_minilm_for_ml_tests(request: pytest.FixtureRequest, minilm: MiniLMEmbedder) -> None:
    """Load the model before the server answers: a load inside a request would outlast the
    client's timeout. Tests not marked ``ml`` never load it."""
    if request.node.get_closest_marker("ml"):
        minilm.load()


@pytest.fixture
def server(minilm: MiniLMEmbedder) -> Iterator[FakeOpenAIServer]:
    fake = FakeOpenAIServer(minilm).start()
    yield fake
    fake.stop()


@pytest.fixture
def make(server: FakeOpenAIServer) -> Iterator[Factory]:
    """Providers on the test server with fast retries; closed after the test."""
    made: list[OpenAICompatibleProvider] = []

    def factory(**overrides: Any) -> OpenAICompatibleProvider:
        settings: dict[str, Any] = {
            "chat_model": "canned-llm", "api_key": "test-key", "dim": 384, "timeout": 2.0,
            "max_retries": 3, "backoff": 0.01, "max_retry_wait": 2.0, "entities": None,
        }
        settings.update(overrides)
        provider = OpenAICompatibleProvider(server.url, "minilm", **settings)
        made.append(provider)
        return provider

    yield factory
    for provider in made:
        provider.close()


# -- embeddings -------------------------------------------------------------------------------

@pytest.mark.ml
def test_embeddings_are_the_servers_real_vectors_in_batches(
    make: Factory, server: FakeOpenAIServer, minilm: MiniLMEmbedder,
) -> None:
    vectors = make(batch_size=2).embed(TEXTS)
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, minilm.embed(TEXTS), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert server.calls[EMBEDDINGS] == 3
    assert server.requests[0].body["input"] == TEXTS[:2]
    assert server.requests[0].headers["authorization"] == "Bearer test-key"


@pytest.mark.ml
def test_the_dimension_is_probed_once_when_not_given(
    make: Factory, server: FakeOpenAIServer,
) -> None:
    provider = make(dim=None)
    assert server.calls[EMBEDDINGS] == 0
    assert provider.dim == 384 and provider.dim == 384
    assert server.calls[EMBEDDINGS] == 1
    assert provider.model_id == "minilm"


@pytest.mark.ml
def test_rows_follow_the_response_index_not_its_order(
    make: Factory, server: FakeOpenAIServer, minilm: MiniLMEmbedder,
) -> None:
    server.embedding_hook = lambda data: data[::-1]
    np.testing.assert_allclose(make().embed(TEXTS), minilm.embed(TEXTS), atol=1e-5)


@pytest.mark.ml
def test_vectors_are_l2_normalised(make: Factory, server: FakeOpenAIServer) -> None:
    def scale(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**item, "embedding": [3.0 * x for x in item["embedding"]]} for item in data]

    server.embedding_hook = scale
    norms = np.linalg.norm(make().embed(TEXTS[:2]), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_no_texts_give_an_empty_matrix_without_a_request(
    make: Factory, server: FakeOpenAIServer,
) -> None:
    assert make().embed([]).shape == (0, 384)
    assert sum(server.calls.values()) == 0


# -- retries ----------------------------------------------------------------------------------

@pytest.mark.ml
def test_503s_are_retried_until_success(make: Factory, server: FakeOpenAIServer) -> None:
    server.inject(Fault(503), times=2)
    assert make().embed(TEXTS[:1]).shape == (1, 384)
    assert server.calls[EMBEDDINGS] == 3


def test_5xx_beyond_max_retries_is_a_provider_error(
    make: Factory, server: FakeOpenAIServer,
) -> None:
    server.inject(Fault(500), times=5)
    with pytest.raises(ProviderError, match="HTTP 500") as error:
        make(max_retries=2).embed(TEXTS[:1])
    assert "3 attempts" in error.value.message and server.url in error.value.message
    assert server.calls[EMBEDDINGS] == 3


@pytest.mark.ml
def test_429_retry_after_is_honoured(make: Factory, server: FakeOpenAIServer) -> None:
    server.inject(Fault(429, headers={"Retry-After": "1"}))
    started = time.perf_counter()
    make().embed(TEXTS[:1])
    assert time.perf_counter() - started >= 0.95
    assert server.calls[EMBEDDINGS] == 2


@pytest.mark.ml
def test_retry_after_is_capped_by_max_retry_wait(
    make: Factory, server: FakeOpenAIServer,
) -> None:
    server.inject(Fault(429, headers={"Retry-After": "60"}))
    started = time.perf_counter()
    make(max_retry_wait=0.2).embed(TEXTS[:1])
    assert 0.15 <= time.perf_counter() - started < 5
    assert server.calls[EMBEDDINGS] == 2


def test_a_hang_past_the_timeout_is_backend_unavailable_after_retries(
    make: Factory, server: FakeOpenAIServer,
) -> None:
    server.inject(Fault(200, delay=1.0), times=3)
    started = time.perf_counter()
    with pytest.raises(BackendUnavailable, match=r"did not answer within 0\.1 s") as error:
        make(timeout=0.1, max_retries=2).embed(TEXTS[:1])
    assert time.perf_counter() - started < 1.0
    assert server.url in error.value.message and "3 attempts" in error.value.message
    assert server.calls[EMBEDDINGS] == 3


@pytest.mark.ml
def test_one_hang_then_an_answer_succeeds(make: Factory, server: FakeOpenAIServer) -> None:
    server.inject(Fault(200, delay=1.0))
    assert make(timeout=0.2).embed(TEXTS[:1]).shape == (1, 384)
    assert server.calls[EMBEDDINGS] == 2


def test_a_stopped_server_is_backend_unavailable(
    make: Factory, server: FakeOpenAIServer,
) -> None:
    provider = make(max_retries=2)
    server.stop()
    started = time.perf_counter()
    with pytest.raises(BackendUnavailable, match="cannot reach") as error:
        provider.embed(TEXTS[:1])
    assert server.url + "/embeddings" in error.value.message
    assert isinstance(error.value.__cause__, Exception)
    assert type(error.value.__cause__).__module__.startswith("httpx")
    assert time.perf_counter() - started < 2


# -- refusals and bad answers -----------------------------------------------------------------

def test_401_is_not_retried_and_says_the_key_was_refused(
    make: Factory, server: FakeOpenAIServer,
) -> None:
    server.inject(Fault(401, b'{"error": {"message": "invalid key"}}'))
    with pytest.raises(ProviderError, match="API key was refused") as error:
        make().embed(TEXTS[:1])
    assert "test-key" not in error.value.message
    assert server.calls[EMBEDDINGS] == 1


def test_the_key_comes_from_the_environment(
    make: Factory, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOOMDB_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "generic-key")
    assert make(api_key=None).health_check().ok
    monkeypatch.setenv("LOOMDB_OPENAI_API_KEY", "loom-key")
    assert make(api_key=None).health_check().ok
    sent = [r.headers["authorization"] for r in server.requests]
    assert sent == ["Bearer generic-key", "Bearer loom-key"]


def test_a_403_without_a_key_says_none_was_sent(
    make: Factory, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOOMDB_OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server.inject(Fault(403))
    with pytest.raises(ProviderError, match="no API key was sent"):
        make(api_key=None).embed(TEXTS[:1])
    assert "authorization" not in server.requests[0].headers


def test_other_4xx_is_not_retried(make: Factory, server: FakeOpenAIServer) -> None:
    server.inject(Fault(400, b'{"error": {"message": "input too long"}}'))
    with pytest.raises(ProviderError, match=r"HTTP 400.*input too long"):
        make().embed(TEXTS[:1])
    assert server.calls[EMBEDDINGS] == 1


def test_malformed_json_is_a_provider_error(make: Factory, server: FakeOpenAIServer) -> None:
    server.inject(Fault(200, b'{"data": [{"embedding": [0.1, '))
    with pytest.raises(ProviderError, match="malformed JSON"):
        make().embed(TEXTS[:1])
    assert server.calls[EMBEDDINGS] == 1


@pytest.mark.ml
def test_wrong_dimension_vectors_are_a_provider_error(
    make: Factory, server: FakeOpenAIServer,
) -> None:
    server.embedding_hook = lambda data: [{**d, "embedding": d["embedding"][:128]} for d in data]
    with pytest.raises(ProviderError, match=r"128-d vectors .* expected 384-d"):
        make().embed(TEXTS[:2])
    assert server.calls[EMBEDDINGS] == 1


@pytest.mark.ml
def test_non_finite_numbers_are_a_provider_error(
    make: Factory, server: FakeOpenAIServer,
) -> None:
    server.embedding_hook = lambda data: [{**d, "embedding": [float("nan"), *d["embedding"][1:]]}
                                          for d in data]
    with pytest.raises(ProviderError, match="non-finite"):
        make().embed(TEXTS[:2])


@pytest.mark.ml
@pytest.mark.parametrize("hook, message", [
    (lambda data: data[:-1], "without 2 items"),
    (lambda data: [{**d, "index": 0} for d in data], "indexes"),
    (lambda data: [{**d, "embedding": "AAAA"} for d in data], "not lists of numbers"),
    (lambda data: [data[0], {**data[1], "embedding": data[1]["embedding"][:5]}],
     "not lists of numbers"),
])
def test_answers_of_the_wrong_shape_are_provider_errors(
    make: Factory, server: FakeOpenAIServer, hook: Any, message: str,
) -> None:
    server.embedding_hook = hook
    with pytest.raises(ProviderError, match=message):
        make().embed(TEXTS[:2])


# -- chat: summaries and entities -------------------------------------------------------------

def test_summaries_come_from_the_chat_model_cut_to_max_words(
    make: Factory, server: FakeOpenAIServer,
) -> None:
    server.chat_answer = "<think>plan</think> " + " ".join(f"word{i}" for i in range(50))
    summary = make().summarize(["Alice met Bob in Paris.", "They talked about graphs."], 10)
    assert summary == " ".join(f"word{i}" for i in range(10))
    request = server.requests[0].body
    assert request["model"] == "canned-llm" and request["temperature"] == 0
    assert "at most 10 words" in request["messages"][0]["content"]
    assert "They talked about graphs." in request["messages"][0]["content"]
    assert server.calls[CHAT] == 1


def test_summaries_of_nothing_make_no_request(make: Factory, server: FakeOpenAIServer) -> None:
    assert make().summarize([], 10) == "" and make().summarize(["  ", ""], 10) == ""
    assert sum(server.calls.values()) == 0


def test_summaries_need_a_chat_model(make: Factory) -> None:
    with pytest.raises(InvalidInput, match="chat_model"):
        make(chat_model=None).summarize(["Alice met Bob."], 10)


def test_a_chat_answer_without_content_is_a_provider_error(
    make: Factory, server: FakeOpenAIServer,
) -> None:
    server.inject(Fault(200, b'{"choices": []}'))
    with pytest.raises(ProviderError, match="choices"):
        make().summarize(["Alice met Bob."], 10)


def test_chat_entities_are_located_in_the_text(make: Factory, server: FakeOpenAIServer) -> None:
    server.chat_answer = (
        '```json\n[{"text": "Alice", "label": "PERSON"}, {"text": "Paris", "label": "gpe"},'
        ' {"text": "Zurich", "label": "GPE"}, {"text": "two", "label": "CARDINAL"},'
        ' {"name": "Bob"}]\n```'
    )
    text = "Alice met two friends in Paris. Alice left."
    assert make().extract_entities(text) == [
        Entity("Alice", "PERSON", 0, 5), Entity("Paris", "GPE", 25, 30),
        Entity("Alice", "PERSON", 32, 37),
    ]
    assert server.calls[CHAT] == 1


def test_a_chat_entity_answer_that_is_not_json_is_a_provider_error(
    make: Factory, server: FakeOpenAIServer,
) -> None:
    server.chat_answer = "Alice (PERSON), Paris (GPE)"
    with pytest.raises(ProviderError, match="not a JSON array"):
        make().extract_entities("Alice met Bob in Paris")


@pytest.mark.ml
def test_entities_come_from_spacy_by_default_without_a_request(
    make: Factory, server: FakeOpenAIServer,
) -> None:
    provider = make(entities="auto")
    assert isinstance(provider.entities, SpacyEntityExtractor)
    found = provider.extract_entities_many(["Alice met Bob in Paris"])[0]
    assert [(e.text, e.label) for e in found] == [
        ("Alice", "PERSON"), ("Bob", "PERSON"), ("Paris", "GPE")]
    assert sum(server.calls.values()) == 0


def test_located_entities_prefer_the_longer_of_overlapping_matches() -> None:
    text = "Paris Hilton is not in Paris; Parisian food is."
    found = locate_entities(text, [("Paris", "GPE"), ("Paris Hilton", "PERSON")])
    assert found == [Entity("Paris Hilton", "PERSON", 0, 12), Entity("Paris", "GPE", 23, 28)]


# -- health and construction ------------------------------------------------------------------

def test_health_check_lists_the_models(make: Factory, server: FakeOpenAIServer) -> None:
    health = make().health_check()
    assert health.ok and health.provider == "openai" and health.model_id == "minilm"
    assert health.detail["models"] == ["minilm"] and health.detail["embedding_model_listed"]
    assert server.calls["/v1/models"] == 1


def test_health_check_reports_failures_without_retrying_or_raising(
    make: Factory, server: FakeOpenAIServer,
) -> None:
    provider = make()
    server.inject(Fault(503))
    health = provider.health_check()
    assert not health.ok and health.detail["code"] == "provider_error"
    assert server.calls["/v1/models"] == 1
    server.stop()
    health = provider.health_check()
    assert not health.ok and health.detail["code"] == "backend_unavailable"


@pytest.mark.parametrize("overrides, message", [
    ({"base_url": "localhost:8000/v1"}, "base_url"),
    ({"embedding_model": ""}, "embedding_model"),
    ({"max_retries": -1}, "max_retries"),
    ({"batch_size": 0}, "batch_size"),
    ({"timeout": 0}, "timeout"),
    ({"dim": 0}, "dim"),
])
def test_bad_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    settings: dict[str, Any] = {"base_url": "http://localhost:8000/v1",
                                "embedding_model": "m", "entities": None}
    with pytest.raises(InvalidInput, match=message):
        OpenAICompatibleProvider(**{**settings, **overrides})


def test_missing_extra_fails_at_construction_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "httpx" else real_find_spec(name)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingDependency, match=r'loomdb\[remote\]'):
        OpenAICompatibleProvider("http://localhost:8000/v1", "m", entities=None)
