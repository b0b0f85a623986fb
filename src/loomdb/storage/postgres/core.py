"""What the PostgresBackend mixins share: the connection, settings, filters and id lookup."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...config import StoreSettings
from ...errors import NotFound
from ...filters import FilterNode
from ...model import VectorSpace
from ..sql_filters import to_sql
from .connection import Conn, Connection
from .filters import POSTGRES

__all__ = ["Core", "no_nul"]


def no_nul(values: Sequence[str]) -> list[str]:
    """Lookup keys PostgreSQL can bind: one holding NUL matches nothing stored anyway."""
    return [v for v in values if "\x00" not in v]


class Core:
    """State and helpers every part of ``PostgresBackend`` uses."""

    _db: Connection
    settings: StoreSettings
    _spaces: dict[str, VectorSpace]

    @staticmethod
    def _where(where: FilterNode | None) -> tuple[str, list[Any]]:
        """`` AND (filter)`` over nodes aliased ``n``, and its parameters."""
        if where is None:
            return "", []
        sql, params = to_sql(where, POSTGRES)
        return f" AND ({sql})", params

    @staticmethod
    def _nids(conn: Conn, tenant: str, ids: Sequence[str], lock: bool = True) -> dict[str, int]:
        """Internal ids of ``ids``, locked against deletion until commit (reads pass
        ``lock=False``: a read-only transaction may not lock); ``NotFound`` names the
        missing ones."""
        wanted = sorted(set(ids))
        rows = conn.execute("SELECT id, nid FROM nodes WHERE tenant = %s AND id = ANY(%s::text[]) "
                            f"ORDER BY nid{' FOR KEY SHARE' if lock else ''}",
                            (tenant, no_nul(wanted))).fetchall()
        found = dict(rows)
        missing = [i for i in wanted if i not in found]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise NotFound(f"no node {shown}{more} in tenant {tenant!r}")
        return found
