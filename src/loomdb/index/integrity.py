"""The integrity of saved index files: a size and digests written at save, checked at load.

A saved index is a disposable view of the stored vectors, so any doubt about its files means
"rebuild", never an error: ``verify_at_load`` and ``verify_fully`` raise ``CorruptStore``,
which the view answers by building the index again from the tables.

The trade-off: opening a large store must stay fast (the ``.faiss`` file is memory-mapped, not
read), so a full digest of every file at every open is out of the question (1M vectors of 384
dimensions is ~1.7 GB: seconds of hashing). At load a file is checked by

- its size (catches truncation and appended bytes, at the cost of a ``stat``);
- its full BLAKE2b digest when it is at most ``FULL_DIGEST_LIMIT`` bytes (every ``.npz`` of
  labels, and the ``.faiss`` file of indexes up to some ten thousand vectors);
- for a larger file, a digest of its head, its tail and ``SAMPLED_PAGES`` evenly spaced pages
  (~1 MiB read, a few milliseconds even from a cold disk).

Damage in the unsampled pages of a large ``.faiss`` file is found later, when the whole file
is read anyway or on request: ``Database.warm_up`` hashes the file as it reads it, and
``Database.check`` verifies the full digest and compares a sample of stored vectors with the
index's entries; both rebuild an index found damaged. Until then such an index may answer
wrongly; a store that must never risk it runs ``warm_up`` (or ``check``) after opening.
Saving pays for the digests: each file is read once more after it is written (from the page
cache, about a second per gigabyte).
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from ..errors import CorruptStore

__all__ = ["FULL_DIGEST_LIMIT", "file_record", "remove_orphan_temps", "verify_at_load",
           "verify_fully"]

log = logging.getLogger(__name__)

FULL_DIGEST_LIMIT = 32 * 2**20  # files up to this size are hashed whole at every load
SAMPLED_PAGES = 256
PAGE = 4096
CHUNK = 16 * 2**20
#: the temp files ``loomdb.files.atomic_write`` leaves when a save is killed: ours only
ORPHAN_TEMP = re.compile(r"\.(gen-\d+\.(faiss|npz)|CURRENT)\.\d+\.tmp")

FileRecord = dict[str, Any]


def file_record(path: Path) -> FileRecord:
    """What ``verify_at_load`` and ``verify_fully`` check ``path`` against later."""
    size = path.stat().st_size
    return {"size": size, "blake2b": full_digest(path)[1], "sampled": _sampled_digest(path, size)}


def full_digest(path: Path) -> tuple[int, str]:
    """The bytes read and the BLAKE2b digest of the whole file, read sequentially."""
    digest, done = hashlib.blake2b(digest_size=32), 0
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
    return done, digest.hexdigest()


def verify_at_load(path: Path, record: FileRecord) -> None:
    """``CorruptStore`` unless ``path`` has the recorded size and digest (the full one for a
    small file, the sampled one for a large file: see the module docstring)."""
    size = _size(path)
    if size != record["size"]:
        raise CorruptStore(f"{path.name} holds {size} bytes, {record['size']} were saved")
    if size <= FULL_DIGEST_LIMIT:
        _compare(path, full_digest(path)[1], record["blake2b"])
    else:
        _compare(path, _sampled_digest(path, size), record["sampled"])


def verify_fully(path: Path, record: FileRecord) -> int:
    """``CorruptStore`` unless the whole of ``path`` is what was saved. Returns bytes read."""
    try:
        done, digest = full_digest(path)
    except OSError as exc:
        raise CorruptStore(f"cannot read {path}: {exc}") from exc
    _compare(path, digest, record["blake2b"])
    return done


def remove_orphan_temps(directory: Path) -> int:
    """Delete the temp files killed saves left in the index folder ``directory`` (one level of
    space folders, one of tenant folders, as the view lays them out). Returns how many."""
    removed = 0
    if not directory.is_dir():
        return 0  # not made yet, or not a folder (saving will say so)
    for temp in directory.glob("*/*/.*.tmp"):
        if ORPHAN_TEMP.fullmatch(temp.name) and temp.is_file():
            temp.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d temp file(s) of interrupted index saves in %s", removed, directory)
    return removed


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise CorruptStore(f"cannot read {path}: {exc}") from exc


def _compare(path: Path, found: str, saved: str) -> None:
    if found != saved:
        raise CorruptStore(f"{path.name} is not the file that was saved (digest mismatch)")


def _sampled_digest(path: Path, size: int) -> str:
    """A digest of the head, the tail and ``SAMPLED_PAGES`` pages spread evenly between."""
    digest = hashlib.blake2b(digest_size=32)
    offsets = {0, max(size - 16 * PAGE, 0)}
    offsets |= {size * i // SAMPLED_PAGES // PAGE * PAGE for i in range(SAMPLED_PAGES)}
    with open(path, "rb", buffering=0) as handle:
        for offset in sorted(offsets):
            handle.seek(offset)
            digest.update(handle.read(16 * PAGE if offset in (0, size - 16 * PAGE) else PAGE))
    return digest.hexdigest()
