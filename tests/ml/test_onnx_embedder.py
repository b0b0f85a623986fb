"""OnnxMiniLMEmbedder: the real exported, int8 model against the sentence-transformers
reference on real texts, and the cache it exports into (reuse, repair, concurrent exports).

Exports take seconds, so one module-scoped cache serves most tests; only the repair and the
concurrency tests export again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from loomdb.config import shared_data_dir
from loomdb.errors import InvalidInput, MissingDependency
from loomdb.ml import MiniLMEmbedder
from loomdb.ml.bridge import Embedder
from loomdb.ml.onnx import (
    MANIFEST_FILE,
    OnnxMiniLMEmbedder,
    cached_model_dir,
    ensure_cached_model,
    onnx_available,
    package_model_dir,
)

MIN_COSINE = 0.99
TEXTS_FILE = shared_data_dir() / "vectors" / "minilm_l6_v2_texts.json"
SQUAD_FILE = shared_data_dir() / "squad_v2_dev_half" / "dev-v2.0.json"
ODD_TEXTS = ["", " ", "Café déjà vu — naïve façade", "東京で会いましょう", "emoji 🎉🚀 ok",
             "tab\tand\nnewline", "UPPER lower MiXeD", "a" * 600]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private LOOMDB_CACHE_DIR for this module (the user's cache is never touched)."""
    path = tmp_path_factory.mktemp("model-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOOMDB_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def embedder(cache_dir: Path) -> OnnxMiniLMEmbedder:
    """The default (int8) embedder, exported once into the module's cache."""
    loaded = OnnxMiniLMEmbedder()
    loaded.load()
    return loaded


@pytest.fixture(scope="module")
def reference() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="module")
def short_texts() -> list[str]:
    """300 real sentences of every source of the shared MiniLM text set."""
    if not TEXTS_FILE.is_file():
        pytest.skip(f"shared data absent: {TEXTS_FILE} (set LOOMDB_SHARED_DATA)")
    rows = json.loads(TEXTS_FILE.read_text())
    picks = np.random.default_rng(7).choice(len(rows), 300, replace=False)
    return [str(rows[i]["text"]) for i in picks]


@pytest.fixture(scope="module")
def passages(reference: MiniLMEmbedder) -> list[str]:
    """24 passages of 300+ tokens: consecutive SQuAD contexts of one article, joined."""
    if not SQUAD_FILE.is_file():
        pytest.skip(f"shared data absent: {SQUAD_FILE} (set LOOMDB_SHARED_DATA)")
    found: list[str] = []
    for article in json.loads(SQUAD_FILE.read_text())["data"]:
        current = ""
        for paragraph in article["paragraphs"]:
            current = f"{current} {paragraph['context']}".strip()
            if reference.count_tokens([current])[0] >= 300:
                found.append(current)
                current = ""
    return found[:24]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


@pytest.mark.ml
def test_it_is_an_embedder_of_the_same_model(embedder: OnnxMiniLMEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.model_id == MiniLMEmbedder.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert embedder.dim == MiniLMEmbedder.dim == 384
    assert onnx_available()


@pytest.mark.ml
def test_short_sentences_match_the_reference_per_vector(
    embedder: OnnxMiniLMEmbedder, reference: MiniLMEmbedder, short_texts: list[str]
) -> None:
    mine = embedder.embed(short_texts)
    assert mine.shape == (300, 384) and mine.dtype == np.float32
    assert cosines(mine, reference.embed(short_texts)).min() >= MIN_COSINE


@pytest.mark.ml
def test_long_passages_match_the_reference_per_vector(
    embedder: OnnxMiniLMEmbedder, reference: MiniLMEmbedder, passages: list[str]
) -> None:
    assert len(passages) == 24
    assert min(embedder.count_tokens(passages)) >= 300  # past the 256-token window
    assert cosines(embedder.embed(passages), reference.embed(passages)).min() >= MIN_COSINE


@pytest.mark.ml
def test_truncation_at_256_tokens_like_the_reference(embedder: OnnxMiniLMEmbedder) -> None:
    base = "graphs and vectors " * 100  # 300 tokens
    a, b = embedder.embed([base, base + "an entirely different ending about cooking pasta"])
    assert float(a @ b) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.ml
def test_order_is_kept_across_mixed_lengths(
    embedder: OnnxMiniLMEmbedder, short_texts: list[str], passages: list[str]
) -> None:
    mixed = [t for pair in zip(passages[:8], short_texts[:8], strict=True) for t in pair]
    mixed += ODD_TEXTS[1:]  # not both "" and " ": they are the same tokens
    small_batches = OnnxMiniLMEmbedder(batch_size=3)
    together = small_batches.embed(mixed)
    alone = np.vstack([embedder.embed([text]) for text in mixed])
    assert cosines(together, alone).min() >= 0.995  # batching moves int8 rounding a little
    assert (np.argmax(together @ alone.T, axis=1) == np.arange(len(mixed))).all()


@pytest.mark.ml
def test_odd_texts_match_the_reference_and_are_unit_length(
    embedder: OnnxMiniLMEmbedder, reference: MiniLMEmbedder
) -> None:
    mine = embedder.embed(ODD_TEXTS)
    assert np.isfinite(mine).all()
    np.testing.assert_allclose(np.linalg.norm(mine, axis=1), 1.0, atol=1e-5)
    assert cosines(mine, reference.embed(ODD_TEXTS)).min() >= MIN_COSINE


@pytest.mark.ml
def test_token_counts_equal_the_reference(
    embedder: OnnxMiniLMEmbedder, reference: MiniLMEmbedder,
    short_texts: list[str], passages: list[str],
) -> None:
    texts = short_texts + passages + ODD_TEXTS
    assert embedder.count_tokens(texts) == reference.count_tokens(texts)
    assert embedder.count_tokens([]) == []


def test_no_texts_give_an_empty_matrix_without_loading() -> None:
    fresh = OnnxMiniLMEmbedder()
    assert fresh.embed([]).shape == (0, 384)
    assert fresh.embed(()).dtype == np.float32
    assert fresh._session is None


@pytest.mark.parametrize("bad", ["Alice met Bob", ["fine", 3], [None], [b"bytes"]])
def test_anything_but_a_sequence_of_strings_is_refused(bad: object) -> None:
    fresh = OnnxMiniLMEmbedder()
    with pytest.raises(InvalidInput, match="sequence of strings"):
        fresh.embed(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        fresh.count_tokens(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"batch_size": True},
                                    {"batch_size": 2.5}, {"precision": "int4"}])
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        OnnxMiniLMEmbedder(**kwargs)  # type: ignore[arg-type]


def test_missing_onnxruntime_fails_at_construction_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "onnxruntime" else real_find_spec(name)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert not onnx_available()
    with pytest.raises(MissingDependency) as error:
        OnnxMiniLMEmbedder()
    assert "onnxruntime" in error.value.message
    assert 'pip install "loomdb[ml]"' in error.value.message
    assert error.value.code == "missing_dependency"


# --------------------------------------------------------------------------- the cache


def run_python(code: str, cache: Path) -> str:
    """Run ``code`` in a fresh interpreter with ``cache`` as LOOMDB_CACHE_DIR; its stdout."""
    env = {**os.environ, "LOOMDB_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.ml
def test_the_cache_is_named_by_model_and_source_hash(
    embedder: OnnxMiniLMEmbedder, cache_dir: Path
) -> None:
    folder = cached_model_dir(package_model_dir(), "int8")
    assert folder.parent == cache_dir / "onnx"
    assert folder.name.startswith("all-MiniLM-L6-v2-int8-")
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST_FILE, "model.onnx"]


@pytest.mark.ml
def test_a_second_process_reuses_the_cache_without_exporting(
    embedder: OnnxMiniLMEmbedder, cache_dir: Path
) -> None:
    model = cached_model_dir(package_model_dir(), "int8") / "model.onnx"
    before = model.stat()
    out = run_python("""
        import json, sys
        from loomdb.ml.onnx import OnnxMiniLMEmbedder
        vectors = OnnxMiniLMEmbedder().embed(["x"])
        print(json.dumps({"torch": "torch" in sys.modules, "first": vectors[0].tolist()}))
    """, cache_dir)
    result = json.loads(out)
    assert result["torch"] is False  # no export: the cached model was used as it was
    after = model.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    np.testing.assert_allclose(result["first"], embedder.embed(["x"])[0], atol=1e-6)


@pytest.mark.ml
def test_a_damaged_cache_is_detected_and_rebuilt(
    embedder: OnnxMiniLMEmbedder, short_texts: list[str]
) -> None:
    folder = cached_model_dir(package_model_dir(), "int8")
    model = folder / "model.onnx"
    expected = embedder.embed(short_texts[:20])
    whole = model.read_bytes()
    model.write_bytes(whole[: len(whole) // 2])  # a crash mid-copy, a full disk...
    (folder / ".build-stale").mkdir()  # and what an interrupted build leaves behind
    (folder / ".model.onnx.123.tmp").write_bytes(b"partial")
    rebuilt = ensure_cached_model(package_model_dir(), "int8")
    assert rebuilt == model and model.stat().st_size == len(whole)
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST_FILE, "model.onnx"]
    again = OnnxMiniLMEmbedder(model_file=model).embed(short_texts[:20])
    np.testing.assert_allclose(again, expected, atol=1e-5)

    (folder / MANIFEST_FILE).write_text("{not json")  # a damaged manifest is no manifest
    assert ensure_cached_model(package_model_dir(), "int8") == model
    assert json.loads((folder / MANIFEST_FILE).read_text())["bytes"] == len(whole)


@pytest.mark.ml
def test_two_processes_exporting_at_once_export_once(tmp_path: Path) -> None:
    code = """
        import loomdb.ml.onnx as onnx_module
        builds = []
        build = onnx_module._build_model
        onnx_module._build_model = lambda *args: (builds.append(1), build(*args))[1]
        path = onnx_module.ensure_cached_model(onnx_module.package_model_dir(), "fp32")
        print(len(builds), path)
    """
    env = {**os.environ, "LOOMDB_CACHE_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
    builds, paths = zip(*(out.split() for out, _ in outputs), strict=True)
    assert sorted(builds) == ["0", "1"] and len(set(paths)) == 1
    folder = Path(paths[0]).parent
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST_FILE, "model.onnx"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no leftovers
