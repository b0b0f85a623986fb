"""The Backend protocol is the composition of small parts, each with its contract written."""

from __future__ import annotations

import inspect

import pytest

from loomdb.storage.base import (
    Admin,
    Backend,
    EdgeStore,
    JobQueue,
    NodeStore,
    TextSearch,
    VectorStore,
)
from loomdb.storage.sqlite import SqliteBackend

PARTS = (NodeStore, EdgeStore, VectorStore, TextSearch, JobQueue, Admin)


def _methods(part: type) -> set[str]:
    return {name for name, value in vars(part).items()
            if inspect.isfunction(value) and not name.startswith("_")}


def test_backend_is_exactly_its_parts() -> None:
    assert Backend.__bases__ == PARTS
    assert not _methods(Backend)  # nothing of its own: every method belongs to one part
    assert Backend.__abstractmethods__ == frozenset().union(
        *(part.__abstractmethods__ for part in PARTS))


def test_each_method_belongs_to_one_part_and_states_its_contract() -> None:
    seen: set[str] = set()
    for part in PARTS:
        assert part.__doc__ and part.__abstractmethods__
        methods = _methods(part)
        assert not methods & seen, f"{part.__name__} repeats {methods & seen}"
        seen |= methods
        for name in methods:
            assert getattr(part, name).__doc__, f"{part.__name__}.{name} has no contract"


def test_backends_implement_every_part() -> None:
    pytest.importorskip("psycopg")
    from loomdb.storage.postgres import PostgresBackend

    for backend in (SqliteBackend, PostgresBackend):
        assert all(issubclass(backend, part) for part in PARTS)
        assert not backend.__abstractmethods__
