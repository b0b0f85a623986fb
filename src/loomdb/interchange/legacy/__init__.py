"""The legacy JSON layout loomdb replaces: ``concepts.json``, ``associations.json`` and
``embeddings.json`` in one directory, read and written so that a round trip is exact.

Concepts become nodes, associations edges, embeddings vectors in one space (created as
float64, so no value is rounded); ``records`` maps each way and keeps in ``props["_legacy"]``
whatever loomdb cannot hold as is. An import is ``reading`` (parse and check every file, before
any write) then one transaction; an export streams each file from the ``store`` through
``writing``.
"""

from __future__ import annotations

from pathlib import Path

from ...database import Database
from ...errors import LoomError
from .reading import read_directory
from .records import ASSOCIATIONS, CONCEPTS, EMBEDDINGS
from .store import (
    association_pairs,
    batches,
    concept_pairs,
    embeddings_document,
    find_space,
    store_header,
    store_vectors,
)
from .writing import write_document

__all__ = ["export_legacy", "import_legacy"]


def import_legacy(db: Database, directory: str | Path, *, space: str = "text") -> dict[str, int]:
    """Import a legacy directory into ``db``, all of it or (on any error) none of it.

    Embeddings go into vector space ``space``, created as a cosine float64 space of the data's
    dimension with ``model=provider`` if absent. Returns the counts ``concepts``,
    ``associations``, ``embeddings``, plus ``rounded_embeddings`` when an existing space keeps
    fewer bits than float64 and some values were rounded.

    Raises ``InvalidInput`` (naming the file and the entry) for malformed files, and
    ``Conflict``, ``DimensionMismatch`` or ``ModelMismatch`` when the store disagrees.
    """
    existing = find_space(db, space)
    legacy = read_directory(db, Path(directory), existing)
    nodes, edges, embeddings = legacy.nodes, legacy.edges, legacy.embeddings
    with db.transaction():
        for part in batches(len(nodes)):
            db.add_nodes(nodes[part])
        for part in batches(len(edges)):
            db.add_edges(edges[part])
        rounded = store_vectors(db, embeddings, space, existing)
        store_header(db, embeddings, find_space(db, space))
    counts = {"concepts": len(nodes), "associations": len(edges),
              "embeddings": len(embeddings.ids)}
    if rounded:
        counts["rounded_embeddings"] = rounded
    return counts


def export_legacy(db: Database, directory: str | Path, *, space: str = "text") -> dict[str, int]:
    """Write ``db``'s nodes, edges and the vectors of ``space`` as a legacy directory.

    Every node becomes a concept (its text as ``content``); edges and vectors follow the
    exported nodes. The legacy key ``"src:dst"`` holds one association per pair: of edges
    sharing a key the heaviest is written, the others are counted in ``skipped_edges``. Each
    file is replaced atomically. Returns the counts ``concepts``, ``associations``,
    ``embeddings`` and ``skipped_edges``; raises ``LoomError`` if the files cannot be written.
    """
    target = Path(directory)
    exported: dict[str, None] = {}  # the ids written to concepts.json, in order
    counts = {"concepts": 0, "associations": 0, "embeddings": 0, "skipped_edges": 0}
    try:
        target.mkdir(parents=True, exist_ok=True)
        write_document(target / CONCEPTS, concept_pairs(db, exported))
        counts["concepts"] = len(exported)
        write_document(target / ASSOCIATIONS, association_pairs(db, exported, counts))
        write_document(target / EMBEDDINGS, embeddings_document(db, space, exported, counts))
    except OSError as exc:
        raise LoomError(f"cannot write the legacy files to {target}: {exc}") from exc
    return counts
