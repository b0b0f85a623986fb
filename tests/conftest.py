"""Shared fixtures: real stores in tmp_path, parametrized over every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import loomdb
from loomdb.config import StoreSettings, shared_data_dir
from loomdb.storage.base import Backend
from loomdb.storage.sqlite import SqliteBackend

from . import pg_server

BACKENDS = ["sqlite-memory", "sqlite-file", "postgres"]


def make_backend(kind: str, tmp_path: Path, url: str | None = None) -> Backend:
    """A fresh store of ``kind``; ``postgres`` needs the ``url`` of a fresh database."""
    if kind == "sqlite-memory":
        return SqliteBackend(":memory:", StoreSettings())
    if kind == "sqlite-file":
        return SqliteBackend(tmp_path / "store", StoreSettings())
    if kind == "postgres" and url is not None:
        from loomdb.storage.postgres import PostgresBackend

        return PostgresBackend(url, StoreSettings())
    raise ValueError(kind)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the session's PostgreSQL server (skips, saying why, without one)."""
    try:
        name, url = pg_server.create_database()
    except pg_server.ServerUnavailable as exc:
        pytest.skip(f"no PostgreSQL test server: {exc}")
    yield url
    pg_server.release_database(name)


def pytest_sessionfinish() -> None:
    pg_server.stop()


def _url_for(request: pytest.FixtureRequest, kind: str) -> str | None:
    return str(request.getfixturevalue("postgres_url")) if kind == "postgres" else None


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    store = make_backend(request.param, tmp_path, _url_for(request, request.param))
    yield store
    store.close()


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[loomdb.Database]:
    path: str | Path = ":memory:" if request.param == "sqlite-memory" else tmp_path / "store"
    path = _url_for(request, request.param) or path
    database = loomdb.open(path)
    yield database
    database.close()


@pytest.fixture
def file_db(tmp_path: Path) -> Iterator[loomdb.Database]:
    database = loomdb.open(tmp_path / "store")
    yield database
    database.close()


@pytest.fixture(scope="session")
def minilm_vectors() -> np.ndarray:
    """Real MiniLM vectors from ../shared/data (skipped on a clone without the data)."""
    path = shared_data_dir() / "vectors" / "minilm_l6_v2_f16.npy"
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (set LOOMDB_SHARED_DATA)")
    return np.load(path).astype(np.float32)


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def enriched_db(tmp_path: Path) -> Iterator[loomdb.Database]:
    """A file store with the real local provider and no background worker: tests drive the
    weaver with ``wait_for_enrichment()`` so every step is deterministic."""
    from tests.enrich_fixtures import local_provider

    database = loomdb.open(tmp_path / "enriched", ml=local_provider(), weaver=False)
    yield database
    database.close()
