"""Settings, and the one place that reads environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "DURABILITIES",
    "Durability",
    "EnrichmentSettings",
    "IndexSettings",
    "StoreSettings",
    "default_store_path",
    "model_cache_dir",
    "offline_models",
    "openai_api_key",
    "postgres_test_url",
    "shared_data_dir",
]

Durability = Literal["full", "normal", "off"]
DURABILITIES: tuple[Durability, ...] = ("full", "normal", "off")


@dataclass(frozen=True)
class IndexSettings:
    """HNSW parameters for the vector index view.

    The defaults were measured on 1M real MiniLM vectors (grown with near-duplicates, see
    docs/benchmarks.md): M=16 tops out near recall@10 0.81 there, while M=32 with
    efConstruction=80 reaches 0.95-0.97 at efSearch 128-192 under 1 ms per query.

    Args:
        m: graph degree (faiss ``M``).
        ef_construction: candidate list size while building.
        ef_search: candidate list size while searching (raised to the fetch size when larger).
        oversample: candidates fetched per result for exact re-scoring, by quantization.
        exact_threshold: a filter matching at most this many vectors is answered by exact
            search over the matching ids instead of the index.
        compact_ratio: rebuild the index when this share of its entries are tombstones.
    """

    m: int = 32
    ef_construction: int = 80
    ef_search: int = 160
    oversample_f32: int = 1
    oversample_f16: int = 2
    oversample_i8: int = 3
    oversample_b1: int = 16
    exact_threshold: int = 2000
    compact_ratio: float = 0.25

    def oversample(self, quantization: str) -> int:
        return int(getattr(self, f"oversample_{quantization}"))


@dataclass(frozen=True)
class StoreSettings:
    """How a store is opened.

    Args:
        durability: SQLite ``synchronous`` level. ``full`` (default) makes an acknowledged
            commit survive power loss; ``normal`` survives a process crash only.
        busy_timeout: seconds to wait for a lock held by another connection.
        read_only: open without the write lock; writes raise.
        index: HNSW settings.
    """

    durability: Durability = "full"
    busy_timeout: float = 5.0
    read_only: bool = False
    index: IndexSettings = IndexSettings()


NOVELTY_THRESHOLD = 0.92  # MiniLM cosine: paraphrases of one statement score ~0.9 and above


@dataclass(frozen=True)
class EnrichmentSettings:
    """How enrichment behaves.

    Args:
        space: the vector space embeddings go to (created for the provider's model).
        novelty_threshold: similarity at which a new message or memory counts as a repeat.
        gated_kinds: kinds subject to novelty gating.
        summary_words: length of document and chat summaries.
        half_life: seconds for a memory's extra strength to halve without being met again.
    """

    space: str = "text"
    novelty_threshold: float = NOVELTY_THRESHOLD
    gated_kinds: tuple[str, ...] = ("message", "memory")
    summary_words: int = 80
    half_life: float = 7 * 86400.0


def shared_data_dir() -> Path:
    """Where the team's real test and benchmark data lives (``LOOMDB_SHARED_DATA``)."""
    default = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"  # beside the repo
    return Path(os.environ.get("LOOMDB_SHARED_DATA", str(default))).resolve()


def default_store_path() -> str:
    """The store the CLI opens when no ``--store`` is given: ``LOOMDB_STORE`` (a directory or
    a ``postgresql://`` URL, kept as text so a URL's ``//`` survives), else ``loomdb-store``."""
    return os.environ.get("LOOMDB_STORE", "loomdb-store")


def offline_models() -> None:
    """Keep Hugging Face libraries off the network (``HF_HUB_OFFLINE=1``) unless the user
    set it: loomdb's models ship inside Python packages and never need the hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def openai_api_key() -> str | None:
    """The key for an OpenAI-compatible endpoint: ``LOOMDB_OPENAI_API_KEY``, else
    ``OPENAI_API_KEY``, else none (local servers such as vLLM or llama.cpp often need none)."""
    for name in ("LOOMDB_OPENAI_API_KEY", "OPENAI_API_KEY"):
        if os.environ.get(name):
            return os.environ[name]
    return None


def postgres_test_url() -> str | None:
    """A superuser URL of an external PostgreSQL + pgvector server for the test suite
    (``LOOMDB_POSTGRES_URL``); ``None`` makes the tests start an embedded one."""
    return os.environ.get("LOOMDB_POSTGRES_URL") or None


def model_cache_dir() -> Path:
    """Where derived model files (an ONNX export of a packaged model, say) are kept:
    ``LOOMDB_CACHE_DIR``, else ``$XDG_CACHE_HOME/loomdb``, else ``~/.cache/loomdb``. Nothing is
    created here; writers create what they need."""
    if "LOOMDB_CACHE_DIR" in os.environ:
        return Path(os.environ["LOOMDB_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "loomdb"
