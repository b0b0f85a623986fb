"""Memories: facts an agent keeps, gated by novelty so a repeat strengthens the original."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..context import Context
from ..errors import InvalidInput
from ..model import JSONObject, Node
from ..storage.base import JobSpec
from ..weaver.activity import ENTITIES
from ..weaver.novelty import Novelty, measure_novelty, reinforce

__all__ = ["Remembered", "remember"]


@dataclass(frozen=True)
class Remembered:
    """The outcome of ``remember``: the node that now holds the memory, how novel the text
    was, and whether it reinforced an existing node instead of adding one."""

    node: Node
    novelty: Novelty
    reinforced: bool


def remember(ctx: Context, text: str, *,
             kind: str = "memory", props: JSONObject | None = None,
             memory_id: str | None = None) -> Remembered:
    """Store ``text`` as a memory, or reinforce the memory it repeats. Embeds at once (the
    decision needs the vector); entities follow in the background."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("a memory needs non-empty text")
    store, settings = ctx.store, ctx.enrichment
    space = ctx.embedding_space()
    vector = ctx.provider.embed([text])[0]
    novelty = measure_novelty(store, vector, (*settings.gated_kinds, kind),
                              settings.novelty_threshold, space.name)
    if novelty.repeat and novelty.nearest is not None:
        reinforce(store, novelty.nearest)
        return Remembered(store.get_node(novelty.nearest), novelty, True)
    node_id = memory_id or f"mem:{uuid.uuid4().hex}"
    with store.transaction():
        store.add_node(node_id, kind=kind, text=text, vector=vector, space=space.name,
                       props={**(props or {}), "novelty": novelty.score}, strength=1.0)
        store.backend.enqueue_jobs(store.tenant_name, [JobSpec(ENTITIES, node_id)])
    return Remembered(store.get_node(node_id), novelty, False)
