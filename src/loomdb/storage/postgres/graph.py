"""Graph traversals as recursive CTEs (filled in below)."""

from __future__ import annotations

from .core import Core

__all__ = ["PostgresGraph"]


class PostgresGraph(Core):
    """Mixed into ``PostgresBackend``: server-side traversals."""
