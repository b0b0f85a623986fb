"""The store side of the legacy format: on import, the vector space and the header node; on
export, concepts, associations and embeddings paged out of the store as rendered entries.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import numpy as np

from ...database import Database
from ...errors import ModelMismatch
from ...model import JSONObject, Node, VectorSpace
from ...validation import MAX_LIMIT
from .records import (
    EMBEDDINGS,
    HEADER_ID,
    Embeddings,
    association_item,
    concept_record,
    default_header,
    exported_header,
    header_node,
    is_header,
    vector_values,
)
from .writing import Rendered, render, render_numbers, streamed_object

__all__ = [
    "association_pairs",
    "batches",
    "concept_pairs",
    "embeddings_document",
    "find_space",
    "store_header",
    "store_vectors",
    "stored_ids",
]

BATCH = 10_000
T = TypeVar("T")


def batches(count: int) -> Iterator[slice]:
    """Slices cutting ``count`` items into batches of at most ``BATCH``."""
    return (slice(start, start + BATCH) for start in range(0, count, BATCH))


def find_space(db: Database, name: str) -> VectorSpace | None:
    return next((s for s in db.spaces() if s.name == name), None)


def stored_ids(db: Database, ids: Sequence[str]) -> set[str]:
    """Those of ``ids`` that are nodes of the store."""
    found: set[str] = set()
    for part in batches(len(ids)):
        found.update(db.get_nodes(ids[part]))
    return found


def _stored_header(db: Database) -> Node | None:
    found = db.get_nodes([HEADER_ID]).get(HEADER_ID)
    return found if found is not None and is_header(found) else None


# -- import ---------------------------------------------------------------------------------


def store_vectors(db: Database, emb: Embeddings, name: str, space: VectorSpace | None) -> int:
    """Create the space if needed, then store the vectors; returns how many were rounded."""
    if not emb.ids:
        return 0
    provider = (emb.header or {}).get("provider")
    provider = provider if isinstance(provider, str) else None
    if space is None:
        model = "unknown" if provider is None else provider
        space = db.create_space(name, emb.matrix.shape[1], model=model, metric="cosine",
                                storage="float64")
    elif provider is not None and provider != space.model:
        raise ModelMismatch(f"{EMBEDDINGS}: provider {provider!r} differs from the model "
                            f"{space.model!r} of vector space {name!r}")
    for part in batches(len(emb.ids)):
        db.set_vectors(emb.ids[part], emb.matrix[part], space=name)
    if space.storage == "float64":
        return 0
    kept = emb.matrix.astype(space.storage).astype(np.float64)
    return int((kept != emb.matrix).any(axis=1).sum())


def store_header(db: Database, emb: Embeddings, space: VectorSpace | None) -> None:
    """Keep embeddings.json's top level on the header node when the space cannot carry it."""
    if emb.header is None:
        return
    model = space.model if space else None
    items = list(emb.header.items())  # key order matters: the file is rewritten as it was
    if items == list(default_header(None).items()) and not emb.ids:
        return  # what a store without the space exports anyway
    if items == list(default_header(model).items()):
        if _stored_header(db) is not None:
            db.delete_node(HEADER_ID)
        return
    db.upsert_nodes([header_node(emb.header, model)])


# -- export ---------------------------------------------------------------------------------


def _pages(fetch: Callable[[int], list[T]]) -> Iterator[T]:
    """Everything ``fetch(offset)`` returns, page after page of ``MAX_LIMIT``."""
    for offset in itertools.count(0, MAX_LIMIT):
        page = fetch(offset)
        yield from page
        if len(page) < MAX_LIMIT:
            return


def concept_pairs(db: Database, exported: dict[str, None]) -> Iterator[tuple[str, str]]:
    """Every node but the header node as a concept; ``exported`` collects their ids."""
    for node in _pages(lambda offset: db.list_nodes(limit=MAX_LIMIT, offset=offset)):
        if not is_header(node):
            exported[node.id] = None
            yield node.id, render(concept_record(node), 1)


def association_pairs(
    db: Database, exported: dict[str, None], counts: dict[str, int]
) -> list[tuple[str, str]]:
    """Associations between exported concepts; of several edges with one key, the heaviest."""
    chosen: dict[str, tuple[float, JSONObject]] = {}
    for edge in _pages(lambda offset: db.get_edges(limit=MAX_LIMIT, offset=offset)):
        if edge.src in exported and edge.dst in exported:
            key, record = association_item(edge)
            if key in chosen:
                counts["skipped_edges"] += 1
                if edge.weight <= chosen[key][0]:
                    continue
            chosen[key] = (edge.weight, record)
    counts["associations"] = len(chosen)
    return [(key, render(record, 1)) for key, (_, record) in chosen.items()]


def embeddings_document(
    db: Database, name: str, exported: dict[str, None], counts: dict[str, int]
) -> Iterator[tuple[str, Rendered]]:
    """The top level of embeddings.json, its ``embeddings`` those of space ``name``."""
    space = find_space(db, name)
    for key, value in exported_header(_stored_header(db), space).items():
        if key != "embeddings":
            yield key, render(value, 1)
        elif space is None:
            yield key, "{}"
        else:
            yield key, streamed_object(_embedding_pairs(db, space, exported, counts), 1)


def _embedding_pairs(
    db: Database, space: VectorSpace, exported: dict[str, None], counts: dict[str, int]
) -> Iterator[tuple[str, str]]:
    """Vectors of exported nodes in the order they were stored, as their exact values."""
    # That order is embeddings.json's on import, so the file round-trips byte for byte. Only
    # the backend lists vectors by label (the order they were stored); the facade lists nodes.
    tenant, name = db.tenant_name, space.name
    labels = db.backend.vector_labels(tenant, name, None).tolist()
    for part in batches(len(labels)):
        batch = labels[part]
        owners = db.backend.nodes_by_label(tenant, name, batch)
        nodes = [owners[x] for x in batch if x in owners and owners[x].id in exported]
        vectors = db.get_vectors([n.id for n in nodes], space=name)
        counts["embeddings"] += len(nodes)
        for node in nodes:
            values: list[float] = vectors[node.id].astype(np.float64).tolist()
            yield node.id, render_numbers(vector_values(values, node), 2)
