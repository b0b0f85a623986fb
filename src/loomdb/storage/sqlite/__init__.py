"""The embedded default backend: SQLite (stdlib) in WAL mode, FTS5 for BM25."""

from .backend import SqliteBackend

__all__ = ["SqliteBackend"]
