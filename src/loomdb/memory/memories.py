"""Memories: facts an agent keeps, gated by novelty so a repeat strengthens the original."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from ..ml.bridge import MLProvider
from ..model import Node
from ..storage.base import JobSpec
from ..weaver.activity import ENTITIES
from ..weaver.tasks import EnrichmentSettings, ensure_space
from .novelty import Novelty, measure_novelty, reinforce

if TYPE_CHECKING:
    from ..database import Database

__all__ = ["Remembered", "remember"]


@dataclass(frozen=True)
class Remembered:
    """The outcome of ``remember``: the node that now holds the memory, how novel the text
    was, and whether it reinforced an existing node instead of adding one."""

    node: Node
    novelty: Novelty
    reinforced: bool


def remember(db: Database, provider: MLProvider, text: str, settings: EnrichmentSettings, *,
             kind: str = "memory", props: dict[str, Any] | None = None,
             memory_id: str | None = None) -> Remembered:
    """Store ``text`` as a memory, or reinforce the memory it repeats. Embeds at once (the
    decision needs the vector); entities follow in the background."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("a memory needs non-empty text")
    space = ensure_space(db, provider, settings.space)
    vector = provider.embed([text])[0]
    novelty = measure_novelty(db, vector, (*settings.gated_kinds, kind),
                              settings.novelty_threshold, space.name)
    if novelty.repeat and novelty.nearest is not None:
        reinforce(db, novelty.nearest)
        return Remembered(db.get_node(novelty.nearest), novelty, True)
    node_id = memory_id or f"mem:{uuid.uuid4().hex}"
    with db.transaction():
        db.add_node(node_id, kind=kind, text=text, vector=vector, space=space.name,
                    props={**(props or {}), "novelty": novelty.score}, strength=1.0)
        db.backend.enqueue_jobs(db.tenant_name, [JobSpec(ENTITIES, node_id)])
    return Remembered(db.get_node(node_id), novelty, False)
