"""The PostgreSQL + pgvector backend (design notes to come)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...config import StoreSettings
from ...errors import MissingDependency

if TYPE_CHECKING:
    from .backend import PostgresBackend

__all__ = ["PostgresBackend", "open_backend"]


def open_backend(url: str, settings: StoreSettings) -> PostgresBackend:
    """``PostgresBackend(url, settings)``, or ``MissingDependency`` with the install hint
    when the ``[postgres]`` extra is not installed."""
    try:
        from .backend import PostgresBackend
    except ImportError as exc:
        raise MissingDependency(f"the postgres backend needs the [postgres] extra ({exc.name} "
                                "is not installed): pip install 'loomdb[postgres]'") from exc
    return PostgresBackend(url, settings)


def __getattr__(name: str) -> Any:
    # psycopg is imported on first use, so `import loomdb` works without the extra
    if name == "PostgresBackend":
        from .backend import PostgresBackend

        return PostgresBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
