"""Index damage: whatever happens to the files of a saved index, the store never serves wrong
answers and never fails to open. Damage is found (at load, by ``check`` or by ``warm_up``) and
the index rebuilt from the stored vectors; a save that cannot write is a ``LoomError``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest

import loomdb
from loomdb.errors import BackendUnavailable
from loomdb.index import integrity

from ..conftest import unit_vectors

N = 300


def filled(path: Path, seed: int = 0) -> np.ndarray:
    """A closed store of N vectors (node ``n{i}`` has row i), its index saved."""
    x = unit_vectors(N, 8) if seed == 0 else np.random.default_rng(seed).normal(
        size=(N, 8)).astype(np.float32)
    with loomdb.open(path) as db:
        db.create_space("text", 8)
        db.add_nodes([{"id": f"n{i}"} for i in range(N)], vectors=x)
    return x


def index_dir(path: Path) -> Path:
    return path / "index" / "text" / "default"


def generation(path: Path, suffix: str) -> Path:
    return next(index_dir(path).glob(f"gen-*{suffix}"))


def assert_right_answers(db: loomdb.Database, x: np.ndarray) -> None:
    for i in (0, 7, 150, N - 1):
        assert db.vector_search(x[i], k=1)[0].id == f"n{i}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Path, np.ndarray]]:
    path = tmp_path / "s"
    yield path, filled(path)


def _rewrite_digests(path: Path) -> None:
    """Record the damaged files' digests as if they had been saved so: damage that slipped
    past the writer, which only the comparison with the stored vectors can find."""
    current_path = index_dir(path) / "CURRENT"
    current = json.loads(current_path.read_text())
    for kind in ("faiss", "npz"):
        current["files"][kind] = integrity.file_record(generation(path, f".{kind}"))
    current_path.write_text(json.dumps(current))


def _swap_two_vectors(path: Path, x: np.ndarray, a: int, b: int) -> None:
    faiss_path = generation(path, ".faiss")
    data = bytearray(faiss_path.read_bytes())
    index = faiss.read_index(str(faiss_path))
    rows = [index.reconstruct(i).tobytes() for i in (a, b)]
    at = [bytes(data).index(row) for row in rows]
    data[at[0]:at[0] + 32], data[at[1]:at[1] + 32] = rows[1], rows[0]
    faiss_path.write_bytes(bytes(data))


# -- damage found when the index is loaded ---------------------------------------------------

def test_corrupted_payload_bytes_are_found_at_load_and_rebuilt(
        store: tuple[Path, np.ndarray], caplog: pytest.LogCaptureFixture) -> None:
    path, x = store
    faiss_path = generation(path, ".faiss")
    data = bytearray(faiss_path.read_bytes())
    row = faiss.read_index(str(faiss_path)).reconstruct(150).tobytes()
    at = bytes(data).index(row)  # vector bytes: faiss cannot tell them from good ones
    data[at:at + 32] = np.random.default_rng(1).normal(size=8).astype(np.float32).tobytes()
    faiss_path.write_bytes(bytes(data))
    with loomdb.open(path) as db:
        assert_right_answers(db, x)
        assert "digest mismatch" in caplog.text
        assert db.check() == []


def test_swapped_vectors_are_found_at_load_and_rebuilt(store: tuple[Path, np.ndarray]) -> None:
    path, x = store
    _swap_two_vectors(path, x, 7, 150)
    with loomdb.open(path) as db:
        assert_right_answers(db, x)
        assert db.check() == []


def test_swapped_vectors_the_digest_misses_are_found_by_check(
        store: tuple[Path, np.ndarray]) -> None:
    path, x = store
    _swap_two_vectors(path, x, 7, 150)
    _rewrite_digests(path)
    with loomdb.open(path) as db:
        problems = db.check()
        assert len(problems) == 1 and "differs from the stored vectors" in problems[0]
        assert "rebuilt" in problems[0]
        assert_right_answers(db, x)
        assert db.check() == []
    with loomdb.open(path) as db:  # the rebuilt index was saved over the damaged one
        assert db.check() == []


def test_index_copied_from_another_store_is_not_loaded(tmp_path: Path) -> None:
    x = filled(tmp_path / "a")
    other = filled(tmp_path / "b", seed=2)  # same space, same labels, other vectors
    shutil.rmtree(index_dir(tmp_path / "a"))
    shutil.copytree(index_dir(tmp_path / "b"), index_dir(tmp_path / "a"))
    with loomdb.open(tmp_path / "a") as db:
        assert_right_answers(db, x)
        assert db.check() == []
    with loomdb.open(tmp_path / "b") as db:
        assert_right_answers(db, other)


@pytest.mark.parametrize("suffix", [".npz", ".faiss"])
def test_truncated_index_file_is_rebuilt(store: tuple[Path, np.ndarray], suffix: str) -> None:
    path, x = store
    damaged = generation(path, suffix)
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    with loomdb.open(path) as db:
        assert db.check() == []
        assert_right_answers(db, x)


def test_cli_check_of_a_store_with_a_truncated_npz_reports_ok(
        store: tuple[Path, np.ndarray]) -> None:
    from typer.testing import CliRunner

    from loomdb.cli import app

    path, _ = store
    damaged = generation(path, ".npz")
    damaged.write_bytes(damaged.read_bytes()[:100])
    result = CliRunner().invoke(app, ["check", "--store", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": True, "problems": []}


@pytest.mark.parametrize("name", ["gen-*.npz", "gen-*.faiss", "CURRENT", "*"])
def test_missing_index_files_are_rebuilt(store: tuple[Path, np.ndarray], name: str) -> None:
    path, x = store
    for lost in index_dir(path).glob(name):
        lost.unlink()
    with loomdb.open(path) as db:
        assert_right_answers(db, x)
        assert db.check() == []
    assert (index_dir(path) / "CURRENT").exists()  # saved again on close


@pytest.mark.parametrize("text", ["", "[]", '{"seq": 1}', "{not json", "no count", "bad seq"])
def test_unreadable_current_is_rebuilt(store: tuple[Path, np.ndarray], text: str) -> None:
    path, x = store
    current = json.loads((index_dir(path) / "CURRENT").read_text())
    if text == "no count":
        del current["count"]
        text = json.dumps(current)
    elif text == "bad seq":
        text = json.dumps({**current, "seq": "x"})
    (index_dir(path) / "CURRENT").write_text(text)
    with loomdb.open(path) as db:
        assert_right_answers(db, x)
        db.checkpoint()
    with loomdb.open(path, read_only=True) as db:
        assert db.check() == []


def test_damage_in_unsampled_pages_of_a_large_file_is_found_when_read_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """By warm_up, by check, and by the first write (which copies the mapped file)."""
    monkeypatch.setattr(integrity, "FULL_DIGEST_LIMIT", 0)  # every file counts as large,
    monkeypatch.setattr(integrity, "PAGE", 16)  # checked at load by a few sampled bytes
    monkeypatch.setattr(integrity, "SAMPLED_PAGES", 1)
    path = tmp_path / "s"
    x = filled(path)
    _swap_two_vectors(path, x, 7, 150)  # inside the faiss payload, away from head and tail
    with loomdb.open(path) as db:
        assert db.warm_up() == 0  # the damaged file was found while read, and rebuilt
        assert_right_answers(db, x)
    _swap_two_vectors(path, x, 7, 150)
    with loomdb.open(path) as db:
        problems = db.check()
        assert len(problems) == 1 and "digest mismatch" in problems[0]
        assert_right_answers(db, x)
    _swap_two_vectors(path, x, 7, 150)
    with loomdb.open(path) as db:  # the first write reads the mapped file whole: checked
        db.add_node("late", vector=-x[3])
        assert "digest mismatch" in caplog.text
        assert_right_answers(db, x)
        assert db.vector_search(-x[3], k=1)[0].id == "late"
        assert db.check() == []


# -- temp files of interrupted saves ----------------------------------------------------------

def test_orphan_temp_files_are_removed_at_open(store: tuple[Path, np.ndarray]) -> None:
    path, x = store
    ours = [index_dir(path) / ".gen-000000000042.faiss.4242.tmp",
            index_dir(path) / ".gen-000000000042.npz.4242.tmp",
            index_dir(path) / ".CURRENT.4242.tmp"]
    theirs = [index_dir(path) / ".notes.tmp", path / ".CURRENT.4242.tmp"]
    for temp in ours + theirs:
        temp.write_bytes(b"half a save")
    with loomdb.open(path, read_only=True) as db:  # a reader may race a writer's save
        assert_right_answers(db, x)
    assert all(temp.exists() for temp in ours + theirs)
    with loomdb.open(path) as db:
        assert_right_answers(db, x)
    assert not any(temp.exists() for temp in ours)
    assert all(temp.exists() for temp in theirs)


# -- saves that cannot write --------------------------------------------------------------------

def _assert_released_and_right(path: Path, x: np.ndarray) -> None:
    """The store opens for writing again, and answers right from the tables and the log."""
    with loomdb.open(path) as again:
        assert_right_answers(again, x)
        assert again.vector_search(-x[3], k=1)[0].id == "late"


def test_index_folder_that_is_a_file_fails_save_with_a_code(
        store: tuple[Path, np.ndarray]) -> None:
    path, x = store
    shutil.rmtree(path / "index")
    (path / "index").write_text("not a folder")
    db = loomdb.open(path)
    db.add_node("late", vector=-x[3])
    assert_right_answers(db, x)
    with pytest.raises(BackendUnavailable) as caught:
        db.checkpoint()
    assert caught.value.code == "backend_unavailable"
    with pytest.raises(BackendUnavailable):
        db.close()
    (path / "index").unlink()
    _assert_released_and_right(path, x)


def test_full_disk_fails_save_with_a_code_and_close_still_releases(
        store: tuple[Path, np.ndarray]) -> None:
    path, x = store
    db = loomdb.open(path)
    db.add_node("late", vector=-x[3])
    assert_right_answers(db, x)
    # the temp file faiss writes the new generation to is /dev/full: ENOSPC on write
    temp = index_dir(path) / f".gen-{db.seq:012d}.faiss.{os.getpid()}.tmp"
    temp.symlink_to("/dev/full")
    with pytest.raises(BackendUnavailable, match="cannot save the vector index"):
        db.close()
    assert not temp.exists()
    _assert_released_and_right(path, x)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_index_folder_fails_save_with_a_code(store: tuple[Path, np.ndarray]) -> None:
    path, x = store
    db = loomdb.open(path)
    db.add_node("late", vector=-x[3])
    index_dir(path).chmod(0o555)
    try:
        with pytest.raises(BackendUnavailable):
            db.close()
    finally:
        index_dir(path).chmod(0o755)
    _assert_released_and_right(path, x)
