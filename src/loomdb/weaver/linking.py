"""The entity graph: entity nodes merged within a tenant, ``mentions`` edges from the passages
that name them, and weighted ``co_occurs`` edges between entities named in the same passage.

Entity identity is ``(label, canonical_name)`` (see ``loomdb.ml.entities.canonical_name``), so
"the European Union's" in one document and "European Union" in another are one node. A
co-occurrence weight is the number of passages (chunks or messages) that mention both entities;
it is always recomputed from the ``mentions`` edges, never incremented, so replaying a job or
deleting a document leaves it exact.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..ml.bridge import Entity
from ..ml.entities import canonical_name
from ..model import Edge, Node

if TYPE_CHECKING:
    from ..database import Database

__all__ = [
    "CO_OCCURS",
    "MENTIONS",
    "entity_id",
    "mentioned_entities",
    "mentioners",
    "recompute_cooccurrence",
    "remove_orphan_entities",
    "replace_mentions",
]

MENTIONS = "mentions"
CO_OCCURS = "co_occurs"
MAX_SPANS = 16  # spans kept per mentions edge: enough to highlight, bounded in size
PAGE = 10_000


def entity_id(label: str, key: str) -> str:
    """A stable node id for an entity: readable, and bounded in length for any name."""
    if len(key) <= 120:
        return f"entity:{label}:{key}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return f"entity:{label}:{key[:100]}~{digest}"


def _edges(db: Database, *, src: str | None = None, dst: str | None = None,
           types: Sequence[str]) -> list[Edge]:
    """All matching edges, paged (an entity can be mentioned by very many passages)."""
    found: list[Edge] = []
    while True:
        page = db.backend.get_edges(db.tenant_name, src, dst, types, PAGE, len(found))
        found.extend(page)
        if len(page) < PAGE:
            return found


def mentioned_entities(db: Database, node_id: str) -> list[str]:
    """Ids of the entities ``node_id`` mentions."""
    return [e.dst for e in _edges(db, src=node_id, types=[MENTIONS])]


def mentioners(db: Database, entity: str) -> list[str]:
    """Ids of the passages that mention ``entity``."""
    return [e.src for e in _edges(db, dst=entity, types=[MENTIONS])]


def replace_mentions(db: Database, node_id: str, entities: Iterable[Entity]) -> set[str]:
    """Link ``node_id`` to the entities found in its text, replacing its earlier links.

    Creates missing entity nodes (text = the first surface form seen, props: label, the
    canonical key, and every alias). Returns the ids of the entities linked before or now,
    whose co-occurrence edges need recomputing. Call inside a transaction.
    """
    groups: dict[str, list[Entity]] = defaultdict(list)
    keys: dict[str, tuple[str, str]] = {}
    for entity in entities:
        key = canonical_name(entity.text, entity.label)
        if not key.strip():
            continue
        eid = entity_id(entity.label, key)
        groups[eid].append(entity)
        keys[eid] = (entity.label, key)
    before = set(mentioned_entities(db, node_id))
    db.backend.delete_edges(db.tenant_name, [(node_id, e, MENTIONS) for e in before])
    _merge_entity_nodes(db, groups, keys)
    db.backend.put_edges(db.tenant_name, [
        Edge(node_id, eid, MENTIONS, weight=float(len(found)),
             props={"spans": [[e.start, e.end] for e in found[:MAX_SPANS]]})
        for eid, found in groups.items()
    ], "replace")
    return before | set(groups)


def _merge_entity_nodes(db: Database, groups: dict[str, list[Entity]],
                        keys: dict[str, tuple[str, str]]) -> None:
    existing = db.backend.get_nodes(db.tenant_name, list(groups))
    new, changed = [], []
    for eid, found in groups.items():
        aliases = sorted({e.text for e in found})
        node = existing.get(eid)
        if node is None:
            label, key = keys[eid]
            new.append(Node(eid, kind="entity", text=found[0].text, category=label,
                            props={"label": label, "key": key, "aliases": aliases}))
        elif not set(aliases) <= set(node.props.get("aliases", [])):
            merged = sorted(set(node.props.get("aliases", [])) | set(aliases))
            changed.append((eid, {**node.props, "aliases": merged}))
    if new:
        db.backend.put_nodes(db.tenant_name, new, "ignore")
    for eid, props in changed:
        db.backend.update_node(db.tenant_name, eid, {"props": props})


def recompute_cooccurrence(db: Database, entity: str) -> None:
    """Rewrite every ``co_occurs`` edge of ``entity`` from the current ``mentions`` edges.

    One edge per unordered pair, from the smaller id to the larger, weighted by the number
    of passages naming both. Call inside a transaction.
    """
    counts: Counter[str] = Counter()
    for passage in mentioners(db, entity):
        counts.update(other for other in mentioned_entities(db, passage) if other != entity)
    old = _edges(db, src=entity, types=[CO_OCCURS]) + _edges(db, dst=entity, types=[CO_OCCURS])
    db.backend.delete_edges(db.tenant_name, [(e.src, e.dst, e.type) for e in old])
    pairs = [Edge(min(entity, other), max(entity, other), CO_OCCURS, weight=float(n))
             for other, n in counts.items()]
    if pairs:
        db.backend.put_edges(db.tenant_name, pairs, "replace")


def remove_orphan_entities(db: Database, entities: Iterable[str]) -> list[str]:
    """Delete the entities among ``entities`` that no passage mentions any more (with their
    co-occurrence edges); returns their ids. Call inside a transaction."""
    orphans = [e for e in entities
               if not db.backend.get_edges(db.tenant_name, None, e, [MENTIONS], 1, 0)]
    if orphans:
        db.backend.delete_nodes(db.tenant_name, orphans)
    return orphans
