"""OpenAICompatibleProvider: embeddings and summaries from an OpenAI-style HTTP endpoint.

Works with vLLM, a llama.cpp server or OpenAI itself (``/embeddings``, ``/chat/completions``,
``/models`` under ``base_url``). Entities come from local spaCy when it is installed (cheaper
and span-exact), else from the chat model. ::

    provider = OpenAICompatibleProvider("http://localhost:8000/v1", "BAAI/bge-small-en-v1.5",
                                        chat_model="Qwen/Qwen2.5-7B-Instruct")
    provider.embed(["Alice met Bob in Paris"])   # dimension probed on first use

Failures, translated at this boundary (httpx never leaks):

- the endpoint cannot be reached or does not answer in ``timeout`` → ``BackendUnavailable``
  naming the URL, after ``max_retries`` retries;
- HTTP 429 or 5xx → retried (429/503 ``Retry-After`` honoured, capped at ``max_retry_wait``),
  then ``ProviderError``;
- 401/403 → ``ProviderError`` saying the key was refused; other 4xx → ``ProviderError``; never
  retried;
- an answer of the wrong shape, dimension or with non-finite numbers → ``ProviderError``.

Retries wait ``backoff * 2**(n-1)`` seconds (n = retry number, capped at ``max_retry_wait``),
half of it fixed and half random ("equal jitter"), so clients that failed together spread out.
"""

from __future__ import annotations

import importlib.util
import json
import math
import random
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from ..config import openai_api_key
from ..errors import BackendUnavailable, InvalidInput, LoomError, MissingDependency, ProviderError
from ..model import JSONObject, JSONValue
from .bridge import Entity, Health, Matrix, MLProvider
from .entities import DEFAULT_LABELS, EntityExtractor, SpacyEntityExtractor, spacy_available

if TYPE_CHECKING:
    import httpx
    import tenacity

__all__ = ["OpenAICompatibleProvider"]

INSTALL_HINT = 'pip install "loomdb[remote]"'
_MAX_PROMPT_CHARS = 32_000  # text sent to the chat model per call; the rest is left out
_THINKING = re.compile(r"^\s*<think>.*?</think>", re.DOTALL)


class _RetryableStatus(Exception):
    """An HTTP answer worth retrying (429, 5xx); internal, translated before it leaves."""

    def __init__(self, status: int, retry_after: float | None, excerpt: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.retry_after, self.excerpt = status, retry_after, excerpt


def _require_extra() -> None:
    missing = [name for name in ("httpx", "tenacity") if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependency(
            f"the OpenAI-compatible provider needs {', '.join(missing)} (the [remote] extra): "
            f"{INSTALL_HINT}"
        )


class OpenAICompatibleProvider(MLProvider):
    """An ``MLProvider`` backed by an OpenAI-compatible endpoint.

    Args:
        base_url: the API root, e.g. ``http://localhost:8000/v1``.
        embedding_model: the model name sent to ``/embeddings``; also this provider's model_id.
        chat_model: the model for ``summarize`` (and for entities without a local extractor).
        api_key: sent as a bearer token; ``config.openai_api_key()`` when omitted.
        dim: the embedding dimension, if known; otherwise one embedding call measures it.
        timeout: seconds allowed for connecting, and for each read or write.
        max_retries: retries after the first attempt, on transient failures only.
        batch_size: texts per ``/embeddings`` request.
        entities: a local extractor, ``None`` to ask the chat model, or ``"auto"`` (spaCy when
            installed, else the chat model).
        backoff: the first retry's nominal wait in seconds; doubles per retry.
        max_retry_wait: the longest single wait, ``Retry-After`` included.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        embedding_model: str,
        *,
        chat_model: str | None = None,
        api_key: str | None = None,
        dim: int | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        batch_size: int = 64,
        entities: EntityExtractor | Literal["auto"] | None = "auto",
        backoff: float = 0.5,
        max_retry_wait: float = 30.0,
    ) -> None:
        _require_extra()
        import httpx

        self.base_url = _checked_url(base_url)
        if not isinstance(embedding_model, str) or not embedding_model:
            raise InvalidInput("embedding_model must be a non-empty model name")
        self.embedding_model, self.chat_model = embedding_model, chat_model
        self._dim = None if dim is None else _at_least("dim", dim, 1)
        self.max_retries = _at_least("max_retries", max_retries, 0)
        self.batch_size = _at_least("batch_size", batch_size, 1)
        self.timeout, self.backoff, self.max_retry_wait = (
            _positive_seconds("timeout", timeout), _positive_seconds("backoff", backoff),
            _positive_seconds("max_retry_wait", max_retry_wait))
        self.entities = _entity_extractor(entities)
        key = api_key if api_key is not None else openai_api_key()
        self._sent_key = bool(key)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(self.timeout), headers=headers)
        self._dim_lock = threading.Lock()

    # -- MLProvider --------------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        return self.embedding_model

    @property
    def dim(self) -> int:
        """The embedding dimension: as given, else measured by one embedding call."""
        with self._dim_lock:
            if self._dim is None:
                self._embed_batch(["dimension probe"])
            assert self._dim is not None
            return self._dim

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Unit-length float32 rows in input order, ``batch_size`` texts per request."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InvalidInput("embed() takes a sequence of strings (wrap one text in a list)")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batches = [self._embed_batch(texts[i:i + self.batch_size])
                   for i in range(0, len(texts), self.batch_size)]
        return np.ascontiguousarray(np.vstack(batches), dtype=np.float32)

    def extract_entities(self, text: str) -> list[Entity]:
        """Entities from the local extractor, or from the chat model located in ``text``."""
        if not isinstance(text, str):
            raise InvalidInput(f"extract_entities() takes a string, got {type(text).__name__}")
        if self.entities is not None:
            return self.entities.extract(text)
        if not text.strip():
            return []
        answer = self._chat(_entity_prompt(text[:_MAX_PROMPT_CHARS]), max_tokens=1024)
        return locate_entities(text, _entity_list(answer, self._chat_url))

    def extract_entities_many(self, texts: Sequence[str]) -> list[list[Entity]]:
        if self.entities is not None:
            return self.entities.extract_many(texts)
        return super().extract_entities_many(texts)

    def summarize(self, texts: Sequence[str], max_words: int = 80) -> str:
        """The chat model's summary of (the first 32,000 characters of) the texts, cut to
        ``max_words`` words because models overrun the limits they are given."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InvalidInput("summarize() takes a sequence of strings (wrap one text in a list)")
        if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1:
            raise InvalidInput(f"max_words must be a positive integer, got {max_words!r}")
        document = "\n\n".join(t.strip() for t in texts if t.strip())
        if not document:
            return ""
        prompt = (f"Summarize the following text in at most {max_words} words. Reply with the "
                  f"summary only.\n\n{document[:_MAX_PROMPT_CHARS]}")
        answer = self._chat(prompt, max_tokens=2 * max_words + 32)
        return " ".join(answer.split()[:max_words])

    def health_check(self) -> Health:
        """One ``GET /models`` without retries; failures are reported, not raised."""
        try:
            models = _model_ids(self._request("GET", "/models", retries=0), self.base_url)
        except LoomError as exc:
            return Health(False, self.name, self.model_id,
                          {"url": self.base_url, "error": exc.message, "code": exc.code})
        return Health(True, self.name, self.model_id, {
            "url": self.base_url, "models": [*models[:20]],
            "embedding_model_listed": self.embedding_model in models,
        })

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __enter__(self) -> OpenAICompatibleProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- embeddings --------------------------------------------------------------------------

    def _embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        payload: JSONObject = {"model": self.embedding_model, "input": list(texts),
                               "encoding_format": "float"}
        body = self._request("POST", "/embeddings", payload)
        matrix = _embedding_matrix(body, len(texts), self._embeddings_url)
        if self._dim is None:
            self._dim = matrix.shape[1]
        elif matrix.shape[1] != self._dim:
            raise ProviderError(
                f"{self._embeddings_url} returned {matrix.shape[1]}-d vectors for "
                f"{self.embedding_model!r}, expected {self._dim}-d"
            )
        unit: npt.NDArray[np.float64] = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        return unit

    @property
    def _embeddings_url(self) -> str:
        return self.base_url + "/embeddings"

    # -- chat --------------------------------------------------------------------------------

    @property
    def _chat_url(self) -> str:
        return self.base_url + "/chat/completions"

    def _chat(self, prompt: str, max_tokens: int) -> str:
        """The chat model's reply to one user message (temperature 0, thinking removed)."""
        if not self.chat_model:
            raise InvalidInput("this needs a chat model: pass chat_model= to "
                               "OpenAICompatibleProvider")
        payload: JSONObject = {"model": self.chat_model, "temperature": 0, "max_tokens": max_tokens,
                               "messages": [{"role": "user", "content": prompt}]}
        body = self._request("POST", "/chat/completions", payload)
        choices = body.get("choices") if isinstance(body, dict) else None
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, dict) else None
        if not isinstance(message, dict) or "content" not in message:
            raise ProviderError(f"{self._chat_url} answered without choices[0].message"
                                f".content: {_excerpt(json.dumps(body))}")
        content = message["content"]
        if not isinstance(content, str):
            raise ProviderError(f"{self._chat_url} answered with non-text content")
        return _THINKING.sub("", content).strip()

    # -- HTTP --------------------------------------------------------------------------------

    def _request(self, method: str, path: str, payload: JSONObject | None = None, *,
                 retries: int | None = None) -> JSONValue:
        """The JSON body of a successful answer, retrying transient failures."""
        import httpx
        import tenacity

        url = self.base_url + path
        attempts = (self.max_retries if retries is None else retries) + 1
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(attempts), wait=self._wait, reraise=True,
            retry=tenacity.retry_if_exception_type((
                httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError,
                _RetryableStatus)),
        )
        try:
            response = retrying(self._send_once, method, url, payload)
        except httpx.TimeoutException as exc:
            raise BackendUnavailable(f"{url} did not answer within {self.timeout:g} s "
                                     f"({attempts} attempts)") from exc
        except httpx.TransportError as exc:
            raise BackendUnavailable(f"cannot reach {url} ({attempts} attempts): "
                                     f"{exc or type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise ProviderError(f"{url} failed: {exc or type(exc).__name__}") from exc
        except _RetryableStatus as exc:
            raise ProviderError(f"{url} answered HTTP {exc.status} ({attempts} attempts): "
                                f"{exc.excerpt}") from exc
        return _json_body(response, url)

    def _send_once(self, method: str, url: str, payload: JSONObject | None
                   ) -> httpx.Response:
        response = self._client.request(method, url, json=payload)
        status = response.status_code
        if status == 429 or status >= 500:
            raise _RetryableStatus(status, _retry_after(response), _excerpt(response.text))
        if status in (401, 403):
            sent = "the API key was refused" if self._sent_key else "no API key was sent"
            raise ProviderError(f"{url} answered HTTP {status}: {sent} (pass api_key= or set "
                                "LOOMDB_OPENAI_API_KEY)")
        if not response.is_success:
            raise ProviderError(f"{url} answered HTTP {status}: {_excerpt(response.text)}")
        return response

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """``Retry-After`` when the server sent one, else exponential backoff with jitter."""
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, _RetryableStatus) and error.retry_after is not None:
            return min(error.retry_after, self.max_retry_wait)
        nominal = min(self.max_retry_wait, self.backoff * 2.0 ** (state.attempt_number - 1))
        return nominal / 2 + random.uniform(0, nominal / 2)


def locate_entities(text: str, found: Sequence[tuple[str, str]]) -> list[Entity]:
    """Every whole-word occurrence in ``text`` of each ``(surface, label)``, in text order;
    surfaces that do not occur are dropped, and where two overlap the longer (then earlier)
    one wins."""
    spans: list[Entity] = []
    for surface, label in dict.fromkeys(found):
        pattern = re.compile(r"(?<!\w)" + re.escape(surface) + r"(?!\w)")
        spans.extend(Entity(m.group(), label, m.start(), m.end()) for m in pattern.finditer(text))
    kept: list[Entity] = []
    for entity in sorted(spans, key=lambda e: (-(e.end - e.start), e.start)):
        if all(entity.end <= k.start or entity.start >= k.end for k in kept):
            kept.append(entity)
    return sorted(kept, key=lambda e: e.start)


def _entity_prompt(text: str) -> str:
    labels = ", ".join(sorted(DEFAULT_LABELS))
    return ("List the named entities in the text below as a JSON array of objects with the "
            'keys "text" (copied exactly as written in the text) and "label" (one of: '
            f"{labels}). Reply with the JSON array only.\n\nText:\n{text}")


def _entity_list(answer: str, url: str) -> list[tuple[str, str]]:
    """``(surface, label)`` pairs from the chat model's JSON answer (code fences tolerated);
    items that are not well-formed entities are skipped."""
    start, end = answer.find("["), answer.rfind("]")
    try:
        items = json.loads(answer[start:end + 1]) if 0 <= start < end else None
    except ValueError:
        items = None
    if not isinstance(items, list):
        raise ProviderError(f"{url}: the entity answer is not a JSON array: {_excerpt(answer)}")
    return [(item["text"].strip(), item["label"].strip().upper()) for item in items
            if isinstance(item, dict) and isinstance(item.get("text"), str)
            and isinstance(item.get("label"), str) and item["text"].strip()
            and item["label"].strip().upper() in DEFAULT_LABELS]


def _embedding_matrix(body: JSONValue, count: int, url: str) -> npt.NDArray[np.float64]:
    """The ``(count, d)`` matrix of an ``/embeddings`` answer, rows in input order."""
    data = body.get("data") if isinstance(body, dict) else None
    items = [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []
    if not isinstance(data, list) or len(data) != count or len(items) != count:
        raise ProviderError(f"{url} answered without {count} items in 'data': "
                            f"{_excerpt(json.dumps(body))}")
    indexes = [item.get("index", position) for position, item in enumerate(items)]
    positions = [i for i in indexes if type(i) is int]
    if len(positions) != count or sorted(positions) != list(range(count)):
        raise ProviderError(f"{url} answered with indexes {indexes[:10]}, not 0..{count - 1}")
    rows: list[JSONValue] = [None] * count
    for index, item in zip(positions, items, strict=True):
        rows[index] = item.get("embedding")
    try:
        matrix = np.array(rows, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ProviderError(f"{url} answered with embeddings that are not lists of numbers "
                            "of one length") from exc
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ProviderError(f"{url} answered with embeddings of shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ProviderError(f"{url} answered with non-finite numbers in embeddings")
    if not np.linalg.norm(matrix, axis=1).all():
        raise ProviderError(f"{url} answered with an all-zero embedding")
    return matrix


def _model_ids(body: JSONValue, url: str) -> list[str]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ProviderError(f"{url}/models answered without a 'data' list")
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


def _json_body(response: httpx.Response, url: str) -> JSONValue:
    try:
        body: JSONValue = response.json()
        return body
    except ValueError as exc:
        raise ProviderError(f"{url} answered with malformed JSON: "
                            f"{_excerpt(response.text)}") from exc


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delay seconds or an HTTP date), if present and readable."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _entity_extractor(entities: EntityExtractor | Literal["auto"] | None
                      ) -> EntityExtractor | None:
    if isinstance(entities, str):
        return SpacyEntityExtractor() if spacy_available() else None
    return entities


def _checked_url(base_url: str) -> str:
    if not isinstance(base_url, str) or not re.match(r"https?://[^/\s]+", base_url):
        raise InvalidInput(f"base_url must be an http(s) URL such as http://localhost:8000/v1, "
                           f"got {base_url!r}")
    return base_url.rstrip("/")


def _at_least(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _positive_seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 \
            or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _excerpt(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
