"""A small OpenAI-compatible HTTP server for the provider tests, with failure injection.

``/v1/embeddings`` answers with REAL vectors from the embedder it is given (MiniLM in the
tests); ``/v1/chat/completions`` answers with a canned text, because no real LLM can run on
the test machine; ``/v1/models`` lists the embedding model. Queued ``Fault``s replace the next
answers (any path): an HTTP status, a raw body, headers, or a delay longer than the client's
timeout. Every request is counted per path and recorded with its headers and JSON body.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from loomdb.ml.bridge import Embedder

EmbeddingHook = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


@dataclass
class Fault:
    """One injected answer: sent instead of the real one, after ``delay`` seconds."""

    status: int = 503
    body: bytes = b'{"error": {"message": "injected failure"}}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


class FakeOpenAIServer:
    """Serves on 127.0.0.1, on a free port, from a daemon thread; ``url`` is the API root."""

    def __init__(self, embedder: Embedder, chat_answer: str = "A canned summary.") -> None:
        self.embedder = embedder
        self.chat_answer = chat_answer
        self.faults: deque[Fault] = deque()
        self.embedding_hook: EmbeddingHook | None = None
        self.calls: Counter[str] = Counter()
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket: later connections are refused."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def inject(self, fault: Fault, times: int = 1) -> None:
        self.faults.extend([fault] * times)

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes
               ) -> tuple[int, bytes, dict[str, str], float]:
        """``(status, body, headers, delay)`` for one request."""
        body = json.loads(raw) if raw else None
        with self._lock:
            self.calls[path] += 1
            self.requests.append(Recorded(path, headers, body))
            fault = self.faults.popleft() if self.faults else None
        if fault is not None:
            return fault.status, fault.body, fault.headers, fault.delay
        if method == "GET" and path == "/v1/models":
            return _json(200, {"object": "list", "data": [{"id": "minilm", "object": "model"}]})
        if method == "POST" and path == "/v1/embeddings":
            return _json(200, self._embeddings(body))
        if method == "POST" and path == "/v1/chat/completions":
            return _json(200, self._chat(body))
        return _json(404, {"error": {"message": f"no route {method} {path}"}})

    def _embeddings(self, body: Any) -> dict[str, Any]:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = self.embedder.embed(texts)
        data = [{"object": "embedding", "index": i, "embedding": [float(x) for x in row]}
                for i, row in enumerate(vectors)]
        if self.embedding_hook is not None:
            data = self.embedding_hook(data)
        return {"object": "list", "data": data, "model": body["model"]}

    def _chat(self, body: Any) -> dict[str, Any]:
        message = {"role": "assistant", "content": self.chat_answer}
        return {"object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


def _json(status: int, payload: Any) -> tuple[int, bytes, dict[str, str], float]:
    return status, json.dumps(payload).encode(), {"Content-Type": "application/json"}, 0.0


def _handler_for(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """HTTP/1.0: one request per connection, so a stopped server answers nothing more."""

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, body, headers, delay = server.answer(
                method, self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
            time.sleep(delay)
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the hang tests), as intended

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
