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

from ..ml.bridge import Entity
from ..ml.entities import canonical_name
from ..model import Edge, JSONValue, Node, prop_strs
from ..store import Store

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


def _edges(store: Store, *, src: str | None = None, dst: str | None = None,
           types: Sequence[str]) -> list[Edge]:
    """All matching edges, paged (an entity can be mentioned by very many passages)."""
    found: list[Edge] = []
    while True:
        page = store.backend.get_edges(store.tenant_name, src, dst, types, PAGE, len(found))
        found.extend(page)
        if len(page) < PAGE:
            return found


def mentioned_entities(store: Store, node_id: str) -> list[str]:
    """Ids of the entities ``node_id`` mentions."""
    return [e.dst for e in _edges(store, src=node_id, types=[MENTIONS])]


def mentioners(store: Store, entity: str) -> list[str]:
    """Ids of the passages that mention ``entity``."""
    return [e.src for e in _edges(store, dst=entity, types=[MENTIONS])]


def replace_mentions(store: Store, node_id: str, entities: Iterable[Entity]) -> set[str]:
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
    before = set(mentioned_entities(store, node_id))
    store.backend.delete_edges(store.tenant_name, [(node_id, e, MENTIONS) for e in before])
    _merge_entity_nodes(store, groups, keys)
    store.backend.put_edges(store.tenant_name, [
        Edge(node_id, eid, MENTIONS, weight=float(len(found)),
             props={"spans": [[e.start, e.end] for e in found[:MAX_SPANS]]})
        for eid, found in groups.items()
    ], "replace")
    return before | set(groups)


def _merge_entity_nodes(store: Store, groups: dict[str, list[Entity]],
                        keys: dict[str, tuple[str, str]]) -> None:
    existing = store.backend.get_nodes(store.tenant_name, list(groups))
    new, changed = [], []
    for eid, found in groups.items():
        aliases = sorted({e.text for e in found})
        node = existing.get(eid)
        if node is None:
            label, key = keys[eid]
            new.append(Node(eid, kind="entity", text=found[0].text, category=label,
                            props={"label": label, "key": key, "aliases": list(aliases)}))
        elif not set(aliases) <= set(known := prop_strs(node.props, "aliases")):
            merged: list[JSONValue] = [*sorted(set(known) | set(aliases))]
            changed.append((eid, {**node.props, "aliases": merged}))
    if new:
        store.backend.put_nodes(store.tenant_name, new, "ignore")
    for eid, props in changed:
        store.backend.update_node(store.tenant_name, eid, {"props": props})


def recompute_cooccurrence(store: Store, entity: str) -> None:
    """Rewrite every ``co_occurs`` edge of ``entity`` from the current ``mentions`` edges.

    One edge per unordered pair, from the smaller id to the larger, weighted by the number
    of passages naming both. Call inside a transaction.
    """
    counts: Counter[str] = Counter()
    for passage in mentioners(store, entity):
        counts.update(other for other in mentioned_entities(store, passage) if other != entity)
    old = (_edges(store, src=entity, types=[CO_OCCURS])
           + _edges(store, dst=entity, types=[CO_OCCURS]))
    store.backend.delete_edges(store.tenant_name, [(e.src, e.dst, e.type) for e in old])
    pairs = [Edge(min(entity, other), max(entity, other), CO_OCCURS, weight=float(n))
             for other, n in counts.items()]
    if pairs:
        store.backend.put_edges(store.tenant_name, pairs, "replace")


def remove_orphan_entities(store: Store, entities: Iterable[str]) -> list[str]:
    """Delete the entities among ``entities`` that no passage mentions any more (with their
    co-occurrence edges); returns their ids. Call inside a transaction."""
    orphans = [e for e in entities
               if not store.backend.get_edges(store.tenant_name, None, e, [MENTIONS], 1, 0)]
    if orphans:
        store.backend.delete_nodes(store.tenant_name, orphans)
    return orphans
