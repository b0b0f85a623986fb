"""Legacy JSON directories as migration ends, through the legacy interchange.

A source directory is read into a memory store the way ``import_legacy`` reads it, with one
difference: what the files lack and the store would stamp with the time of reading (a
concept's ``created``; every ``updated``, which the format has no field for) gets the
modification time of ``concepts.json`` instead. Reading the same files twice then gives the
same store, so a resumed migration and a later validation compare like with like.

A destination directory is written by ``export_legacy``. The format holds one tenant, one
vector space (its name, dimension and model: not its metric, quantization or storage) and one
association per (source, target) pair, and no ``updated`` times: a source holding more than
that is refused before anything is written.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ...database import Database
from ...database import open as open_store
from ...errors import InvalidInput
from ...model import VectorSpace
from ..legacy import export_legacy
from ..legacy.reading import read_directory
from ..legacy.records import CONCEPTS, HEADER_ID
from ..legacy.store import batches, find_space, store_header, store_vectors

__all__ = ["JSON_SPACE", "export_json", "json_space", "load_legacy"]

JSON_SPACE = "text"  # the space a legacy directory's embeddings are read into


def load_legacy(directory: Path, space: str = JSON_SPACE) -> Database:
    """The legacy directory as a memory store (see the module docstring for the stamps)."""
    db = open_store(":memory:", ml=None, weaver=False, cache=None)
    try:
        legacy = read_directory(db, directory, None)
        stamp = (directory / CONCEPTS).stat().st_mtime
        nodes = [replace(n, created=stamp if n.created is None else n.created,
                         updated=stamp if n.created is None else n.created)
                 for n in legacy.nodes]
        edges = [e if e.created is not None else replace(e, created=stamp)
                 for e in legacy.edges]
        with db.transaction():
            for part in batches(len(nodes)):
                db.add_nodes(nodes[part])
            for part in batches(len(edges)):
                db.add_edges(edges[part])
            store_vectors(db, legacy.embeddings, space, None)
            store_header(db, legacy.embeddings, find_space(db, space))
            _stamp_header(db, stamp)
    except BaseException:
        db.close()
        raise
    return db


def _stamp_header(db: Database, stamp: float) -> None:
    """Give the header node (if the files need one) the stamp instead of the time of reading."""
    header = db.get_nodes([HEADER_ID]).get(HEADER_ID)
    if header is not None:
        db.delete_node(HEADER_ID)
        db.add_nodes([replace(header, created=stamp, updated=stamp)])


def json_space(source: Database) -> VectorSpace | None:
    """The one vector space a legacy directory can hold; ``InvalidInput`` (before anything is
    written) when the source holds what the format cannot."""
    tenants = source.backend.tenants()
    if any(t != "default" for t in tenants):
        raise InvalidInput(f"a legacy JSON directory holds one tenant, 'default'; the source "
                           f"holds {tenants}: migrate to a SQLite or PostgreSQL store instead")
    spaces = source.spaces()
    if len(spaces) > 1:
        raise InvalidInput(f"a legacy JSON directory holds one vector space; the source has "
                           f"{[s.name for s in spaces]}")
    return spaces[0] if spaces else None


def export_json(source: Database, directory: Path) -> dict[str, int]:
    """Write the source as a legacy directory; ``InvalidInput`` if edges had to be dropped
    (two types between one pair), which the caller rolls back."""
    space = json_space(source)
    counts = export_legacy(source, directory, space=space.name if space else JSON_SPACE)
    if counts["skipped_edges"]:
        raise InvalidInput(f"{counts['skipped_edges']} edge(s) share their source and target "
                           "with another edge; a legacy directory keeps one per pair")
    return counts
