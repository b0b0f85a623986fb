"""The PostgreSQL + pgvector backend (design notes to come)."""

from .backend import PostgresBackend

__all__ = ["PostgresBackend"]
