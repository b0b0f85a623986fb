"""The checkpoint a migration keeps in its destination, under the meta key ``migration``.

It is written in the same transaction as each batch it describes, so after a crash (even
SIGKILL) it says exactly which rows are in: per tenant, the source position of the last node
and edge copied, and per vector space the last vector label. A resumed migration starts after
them. It also names the source and its state (``version``: the source's seq) so that a
checkpoint is only ever resumed against the same, unchanged source, and what the migration
created on disk, so that a failure after a resume still removes it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ...errors import CorruptStore
from ...storage.base import Backend

__all__ = ["KEY", "Checkpoint", "read_checkpoint", "write_checkpoint"]

KEY = "migration"
FORMAT = 1
Phase = Literal["copying", "done"]


@dataclass
class Checkpoint:
    """How far a migration got. ``positions[tenant]`` maps ``nodes``, ``edges`` and
    ``vectors:<space>`` to the last source position copied; ``copied`` counts rows by kind."""

    source: str
    version: str
    created: str | None = None
    phase: Phase = "copying"
    positions: dict[str, dict[str, int]] = field(default_factory=dict)
    copied: dict[str, int] = field(default_factory=lambda: {"nodes": 0, "edges": 0,
                                                            "vectors": 0})
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def position(self, tenant: str, what: str) -> int:
        return self.positions.get(tenant, {}).get(what, 0)

    def advance(self, tenant: str, what: str, position: int, kind: str, rows: int) -> None:
        self.positions.setdefault(tenant, {})[what] = position
        self.copied[kind] = self.copied.get(kind, 0) + rows

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, sort_keys=True)


def read_checkpoint(backend: Backend) -> Checkpoint | None:
    """The destination's checkpoint, or None; ``CorruptStore`` if it cannot be read."""
    text = backend.get_meta(KEY)
    if text is None:
        return None
    try:
        # Any: Checkpoint(**data) takes each field at its own type, which one dict cannot spell
        data: dict[str, Any] = json.loads(text)
        version = data.pop("format", None)
        if version != FORMAT:
            raise ValueError(f"format {version!r}, expected {FORMAT}")
        return Checkpoint(**data)
    except (ValueError, TypeError, KeyError) as exc:
        raise CorruptStore(f"the destination's migration checkpoint is unreadable ({exc}); "
                           "start over with --no-resume") from exc


def write_checkpoint(backend: Backend, checkpoint: Checkpoint | None) -> None:
    """Store (``None``: remove) the checkpoint, in the caller's transaction if any."""
    backend.set_meta(KEY, None if checkpoint is None else checkpoint.to_json())
