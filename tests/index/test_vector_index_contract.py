"""The VectorIndex contract (loomdb.index.base), run against every implementation.

Each one is built by ``open_index`` over its own backend, as ``loomdb.open`` does; vectors
are written through the backend (the source of truth), then handed to the index as
``catch_up`` would. A new index (Milvus) joins by adding itself to ``INDEXES``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from loomdb.config import IndexSettings, StoreSettings
from loomdb.filters import parse_filter
from loomdb.index import PgvectorIndex, VectorIndex, VectorIndexView, open_index
from loomdb.model import Node, VectorSpace
from loomdb.storage.base import Backend
from loomdb.storage.sqlite import SqliteBackend

from ..conftest import unit_vectors

T = "default"
N = 200
SPACE = VectorSpace("s", 8)
# every filtered search goes through the index (an allow-list), never the exact shortcut
SETTINGS = StoreSettings(index=IndexSettings(exact_threshold=0))
INDEXES = {"faiss": VectorIndexView, "pgvector": PgvectorIndex}


def _open(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Backend, Path]:
    if kind == "pgvector":
        from loomdb.storage.postgres import PostgresBackend

        return PostgresBackend(str(request.getfixturevalue("postgres_url")), SETTINGS), tmp_path
    backend = SqliteBackend(tmp_path / "store", SETTINGS)
    assert backend.directory is not None
    return backend, backend.directory / "index"


@pytest.fixture(params=sorted(INDEXES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Backend, Path]]:
    """A backend holding N vectors in SPACE (node ``n{i}`` has ``props.g == i % 4``), and the
    directory its index saves to."""
    backend, directory = _open(request.param, tmp_path, request)
    backend.create_space(SPACE)
    backend.put_nodes(T, [Node(f"n{i}", props={"g": i % 4}) for i in range(N)], "error")
    backend.put_vectors(T, SPACE.name, [f"n{i}" for i in range(N)], unit_vectors(N, 8))
    yield backend, directory
    backend.close()


@pytest.fixture
def index(store: tuple[Backend, Path]) -> VectorIndex:
    backend, directory = store
    return open_index(backend, directory, SETTINGS)


def _label(backend: Backend, node_id: str) -> np.ndarray:
    return backend.vector_labels(T, SPACE.name, parse_filter({"id": node_id}))


def _stored(backend: Backend) -> tuple[np.ndarray, np.ndarray]:
    return next(backend.scan_vectors(T, SPACE.name, N * 2))


def test_open_index_picks_the_backends_index(store: tuple[Backend, Path],
                                             index: VectorIndex) -> None:
    backend, _ = store
    expected = PgvectorIndex if backend.native_vectors else VectorIndexView
    assert type(index) is expected


def test_added_vectors_are_found_and_counted(store: tuple[Backend, Path],
                                             index: VectorIndex) -> None:
    backend, _ = store
    labels, vectors = _stored(backend)
    index.add(SPACE, T, labels, vectors)
    index.add(SPACE, T, labels[-5:], vectors[-5:])  # labels already held: skipped
    x = unit_vectors(N, 8)
    hits = index.search(SPACE, T, x[7], k=5)
    assert hits[0].id == "n7" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert all(h.scores == {"vector": h.score} for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    stats = index.stats(SPACE, T)
    assert stats.size == N and stats.dead >= 0 and stats.bytes >= 0
    assert stats.seq == backend.seq()


def test_removed_vectors_are_never_found(store: tuple[Backend, Path],
                                         index: VectorIndex) -> None:
    backend, _ = store
    x = unit_vectors(N, 8)
    assert index.search(SPACE, T, x[3], k=1)[0].id == "n3"
    label = _label(backend, "n3")
    backend.delete_vectors(T, SPACE.name, ["n3"])
    index.remove(SPACE, T, label)
    index.remove(SPACE, T, np.array([10**12]))  # not in the index: ignored
    assert "n3" not in {h.id for h in index.search(SPACE, T, x[3], k=10)}
    assert index.stats(SPACE, T).size == N - 1
    assert index.check([SPACE]) == []


def test_filtered_search_keeps_to_the_matching_vectors(index: VectorIndex) -> None:
    x = unit_vectors(N, 8)
    where = parse_filter({"props.g": 2})
    hits = index.search(SPACE, T, x[6], k=10, where=where)
    assert len(hits) == 10 and all(h.node.props["g"] == 2 for h in hits)
    assert hits[0].id == "n6"
    exact = index.search(SPACE, T, x[6], k=10, where=where, exact=True)
    assert [h.id for h in exact][:3] == [h.id for h in hits][:3]
    assert len(index.search(SPACE, T, x[6], k=N, where=where)) == N // 4  # min(k, matches)
    assert index.search(SPACE, T, x[6], k=5, where=parse_filter({"props.g": 9})) == []


def test_the_seq_stamp_covers_every_commit_and_survives_a_save(
        store: tuple[Backend, Path], index: VectorIndex) -> None:
    backend, directory = store
    assert index.load(SPACE, T) <= backend.seq()
    assert index.catch_up(SPACE, T) == backend.seq()
    backend.put_nodes(T, [Node("late")], "error")
    backend.put_vectors(T, SPACE.name, ["late"], -unit_vectors(N, 8)[:1])
    assert index.catch_up(SPACE, T) == backend.seq()
    index.save()
    saved = backend.seq()
    assert backend.stats(T)["log_entries"] == 0  # the log is purged up to the stamp
    again = open_index(backend, directory, SETTINGS)
    assert again.load(SPACE, T) == saved
    assert again.search(SPACE, T, -unit_vectors(N, 8)[0], k=1)[0].id == "late"
    assert again.stats(SPACE, T) == index.stats(SPACE, T)


def test_rebuild_warm_up_and_check(index: VectorIndex) -> None:
    sizes = index.rebuild([SPACE])
    assert set(sizes) <= {(SPACE.name, T)} and all(size == N for size in sizes.values())
    assert index.warm_up([SPACE]) >= 0
    assert index.check([SPACE]) == []
    assert index.search(SPACE, T, unit_vectors(N, 8)[11], k=1)[0].id == "n11"
    assert index.stats(SPACE, T).size == N
