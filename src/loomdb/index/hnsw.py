"""One faiss HNSW index over the vectors of one (space, tenant).

faiss numbers entries 0..n-1 in insertion order; ``labels`` maps them to the backend's vector
labels (ascending, as labels only grow). HNSW cannot delete, so a removed vector becomes a
tombstone that searches exclude through an ``IDSelectorBitmap``; the view rebuilds the index
when tombstones pile up. Quantization: ``f32`` (exact scores), ``f16`` and ``i8`` (faiss scalar
quantizers) and ``b1`` (sign bits in a binary HNSW, Hamming distance); results of the last
three are re-scored exactly by the caller.

A saved index is loaded with its vectors memory-mapped, so opening a large store costs
milliseconds and pages come in as queries touch them. faiss cannot grow a mapped index (it
aborts the process), so the first ``add`` re-reads the file into owned memory.

``CURRENT`` names the generation and records what it must be: the vector space settings, the
identity of the store it indexes, its entry count, and each file's size and digests
(``integrity.py``); a saved index that differs in any of these is not loaded.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from ..config import IndexSettings
from ..errors import CorruptStore
from ..files import atomic_write, fsync_directory
from ..model import VectorSpace
from ..similarity import normalized
from .integrity import FileRecord, file_record, verify_at_load, verify_fully

__all__ = ["HnswIndex"]

Labels = npt.NDArray[np.int64]
Matrix = npt.NDArray[np.float32]
FAISS_METRIC = {"cosine": faiss.METRIC_INNER_PRODUCT, "ip": faiss.METRIC_INNER_PRODUCT,
                "l2": faiss.METRIC_L2}
SCALAR = {"f16": faiss.ScalarQuantizer.QT_fp16, "i8": faiss.ScalarQuantizer.QT_8bit}
BUILD_THREADS = os.cpu_count() or 1
FORMAT = 2  # of CURRENT: 2 added the store identity, the entry count and the file digests
#: what reading damaged index files can raise (faiss raises RuntimeError)
UNREADABLE = (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError,
              zipfile.BadZipFile)


class HnswIndex:
    """An HNSW index with labels, tombstones and the change-log ``seq`` it covers."""

    def __init__(self, space: VectorSpace, settings: IndexSettings) -> None:
        self.space = space
        self.settings = settings
        self.seq = 0
        self.labels: Labels = np.zeros(0, dtype=np.int64)
        self.dead = np.zeros(0, dtype=bool)
        self.trained_on = 0
        self._alive_bitmap: npt.NDArray[np.uint8] | None = None
        self._faiss: Any = self._new_faiss()
        self._mapped_from: Path | None = None  # the file a memory-mapped index came from
        self._file: tuple[Path, FileRecord] | None = None  # the saved file it was read from

    def _new_faiss(self) -> Any:
        dim, m = self.space.dim, self.settings.m
        q = self.space.quantization
        index: Any
        if q == "b1":
            index = faiss.IndexBinaryHNSW(_padded_bits(dim), m)
        elif q == "f32":
            index = faiss.IndexHNSWFlat(dim, m, FAISS_METRIC[self.space.metric])
        else:
            index = faiss.IndexHNSWSQ(dim, SCALAR[q], m, FAISS_METRIC[self.space.metric])  # type: ignore[arg-type]
        index.hnsw.efConstruction = self.settings.ef_construction
        return index

    # -- contents --------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(len(self.labels) - self.dead.sum())

    @property
    def dead_ratio(self) -> float:
        return float(self.dead.sum()) / len(self.labels) if len(self.labels) else 0.0

    @property
    def nbytes(self) -> int:
        """Approximate footprint, in memory or mapped: the codes, the graph, the labels."""
        hnsw, n = self._faiss.hnsw, self._faiss.ntotal
        code_size = (self._faiss.code_size if self.space.quantization == "b1"
                     else self._faiss.storage.sa_code_size())
        graph = 4 * (hnsw.neighbors.size() + hnsw.levels.size()) + 8 * hnsw.offsets.size()
        return int(n * code_size + graph + self.labels.nbytes + self.dead.nbytes)

    @property
    def needs_retraining(self) -> bool:
        """An ``i8`` index trained on few vectors quantizes later ones badly: rebuild it."""
        return self.space.quantization == "i8" and len(self) > 8 * max(self.trained_on, 1000)

    def prepare(self, vectors: Matrix) -> Any:
        """Vectors as this index stores them: normalized for cosine, sign bits for ``b1``."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.space.metric == "cosine":
            vectors = normalized(vectors)
        if self.space.quantization == "b1":
            bits = np.zeros((len(vectors), _padded_bits(self.space.dim)), dtype=bool)
            bits[:, : self.space.dim] = vectors > 0
            return np.packbits(bits, axis=1)
        return vectors

    def add(self, labels: Labels, vectors: Matrix) -> None:
        """Append vectors; their labels must be larger than every label already present."""
        labels, vectors = self._unseen(labels, vectors)
        if not len(labels):
            return
        data = self.prepare(vectors)
        self._own_memory()
        faiss.omp_set_num_threads(BUILD_THREADS)
        if not self._faiss.is_trained:
            self._faiss.train(data[:65_536])
            self.trained_on = min(len(data), 65_536)
        self._faiss.add(data)
        self.labels = np.concatenate([self.labels, labels.astype(np.int64)])
        self.dead = np.concatenate([self.dead, np.zeros(len(labels), dtype=bool)])
        self._alive_bitmap = None

    def warm_up(self) -> int:
        """Read a memory-mapped index's file once, sequentially, so that queries find its
        pages in memory instead of faulting them in from disk one by one, verifying its full
        digest on the way (``CorruptStore`` if it differs). Returns bytes read."""
        if self._mapped_from is None or self._file is None:
            return 0
        return verify_fully(*self._file)

    def verify_file(self) -> None:
        """``CorruptStore`` unless the saved file this index was read from (if any) is whole:
        its full digest, which loading checks only for small files."""
        if self._file is not None:
            verify_fully(*self._file)

    def mismatched(self, labels: Labels, vectors: Matrix) -> Labels:
        """Those of ``labels`` (stored ``vectors``) whose entry in the index is missing or is
        not what indexing the stored vector gives: a damaged or foreign index."""
        positions = np.searchsorted(self.labels, labels)
        held = positions < len(self.labels)
        held[held] = self.labels[positions[held]] == labels[held]
        data = self.prepare(vectors[held])
        if self.space.quantization != "b1":  # the entry as the index's codec encodes it
            storage = self._faiss.storage
            data = storage.sa_decode(storage.sa_encode(data))
        entries = np.stack([self._faiss.reconstruct(int(p)) for p in positions[held]]) \
            if held.any() else data
        same = np.all(np.abs(entries.astype(np.float32) - data.astype(np.float32)) <= 1e-6,
                      axis=1)
        wrong: Labels = np.concatenate([labels[~held], labels[held][~same]])
        return wrong

    def _own_memory(self) -> None:
        """Swap a memory-mapped index for an owned copy before anything resizes it. The whole
        file is read anyway, so its full digest is checked first (``CorruptStore``)."""
        if self._mapped_from is not None:
            if self._file is not None:
                verify_fully(*self._file)
            try:
                self._faiss = faiss.read_index(str(self._mapped_from))
            except RuntimeError as exc:
                raise CorruptStore(f"cannot read {self._mapped_from}: {exc}") from exc
            self._faiss.hnsw.efConstruction = self.settings.ef_construction
            self._mapped_from = None

    def _unseen(self, labels: Labels, vectors: Matrix) -> tuple[Labels, Matrix]:
        """Drop labels the index already holds: a build that scans while a writer commits
        can see a vector that the next catch-up brings again. A label below the newest that
        the index does not hold was missed, which must never happen."""
        if not len(self.labels) or not len(labels) or labels[0] > self.labels[-1]:
            return labels, vectors
        old = labels <= self.labels[-1]
        if len(_positions_of(self.labels, labels[old])) != int(old.sum()):
            raise CorruptStore("vector labels went backwards; the index must be rebuilt")
        return labels[~old], vectors[~old]

    def remove(self, labels: Labels) -> None:
        """Tombstone the entries of ``labels``; labels not in the index are ignored."""
        self.dead[_positions_of(self.labels, labels)] = True
        self._alive_bitmap = None

    # -- search ----------------------------------------------------------------------------

    def search(self, query: Matrix, fetch: int, allowed: Labels | None) -> tuple[Labels, Matrix]:
        """Up to ``fetch`` live candidates for ``query`` (one row), best first, restricted to
        ``allowed`` labels when given. Scores are higher-is-better and approximate unless the
        quantization is ``f32``."""
        if not len(self.labels):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        data = self.prepare(query.reshape(1, -1))
        ef = max(self.settings.ef_search, fetch)
        # one query gains nothing from OpenMP, and on busy cores its spin-waits cost
        # milliseconds; callers hold the view lock, so builds get their threads back
        faiss.omp_set_num_threads(1)
        if self.space.quantization == "b1":
            return self._search_binary(data, fetch, ef, allowed)
        bitmap = self._bitmap(allowed)
        params = faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]
        if bitmap is not None:
            params.sel = faiss.IDSelectorBitmap(len(self.labels), faiss.swig_ptr(bitmap))
        distances, positions = self._faiss.search(data, min(fetch, len(self.labels)),
                                                  params=params)
        return self._results(positions[0], distances[0])

    def _search_binary(
        self, data: Any, fetch: int, ef: int, allowed: Labels | None
    ) -> tuple[Labels, Matrix]:
        # faiss binary HNSW ignores selectors: over-fetch, then drop what is not allowed
        self._faiss.hnsw.efSearch = ef * 2
        want = min(len(self.labels), fetch * 2 if allowed is None else fetch * 8)
        distances, positions = self._faiss.search(data, want)
        valid = positions[0] >= 0
        found, hamming = positions[0][valid], distances[0][valid]
        keep = ~self.dead[found]
        if allowed is not None:
            keep &= np.isin(self.labels[found], allowed)
        return self.labels[found[keep][:fetch]], -hamming[keep][:fetch].astype(np.float32)

    def _bitmap(self, allowed: Labels | None) -> npt.NDArray[np.uint8] | None:
        if allowed is None:
            if not self.dead.any():
                return None
            if self._alive_bitmap is None:
                self._alive_bitmap = np.packbits(~self.dead, bitorder="little")
            return self._alive_bitmap
        bits = np.zeros(len(self.labels), dtype=bool)
        bits[_positions_of(self.labels, allowed)] = True
        bits &= ~self.dead
        return np.packbits(bits, bitorder="little")

    def _results(self, positions: Any, distances: Any) -> tuple[Labels, Matrix]:
        ok = positions >= 0
        scores = distances[ok].astype(np.float32)
        if self.space.metric == "l2":
            scores = -np.sqrt(np.maximum(scores, 0))
        return self.labels[positions[ok]], scores

    # -- persistence -----------------------------------------------------------------------

    def save(self, directory: Path, store: str | None) -> None:
        """Write this index as a new generation, then point ``CURRENT`` at it atomically,
        stamped with the identity of the ``store`` it indexes and its files' digests."""
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"gen-{self.seq:012d}"
        write = faiss.write_index_binary if self.space.quantization == "b1" else faiss.write_index
        faiss_path, npz_path = directory / f"{stem}.faiss", directory / f"{stem}.npz"
        atomic_write(faiss_path, lambda p: write(self._faiss, str(p)))
        self._file = (faiss_path, file_record(faiss_path))
        if self._mapped_from is not None:
            self._mapped_from = faiss_path  # the old file is about to go
        atomic_write(npz_path, lambda p: _save_npz(p, self))
        current = {"format": FORMAT, "seq": self.seq, "stem": stem,
                   "space": _space_key(self.space), "trained_on": self.trained_on,
                   "store": store, "count": len(self.labels),
                   "files": {"faiss": self._file[1], "npz": file_record(npz_path)}}
        atomic_write(directory / "CURRENT", lambda p: _write_text(p, json.dumps(current)))
        for old in directory.glob("gen-*"):
            if not old.name.startswith(stem + "."):
                old.unlink(missing_ok=True)
        fsync_directory(directory)

    @staticmethod
    def read_stamp(directory: Path) -> int:
        """The seq the saved index in ``directory`` covers; ``CorruptStore`` if there is none."""
        try:
            return int(json.loads((directory / "CURRENT").read_text())["seq"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptStore(f"no readable vector index in {directory}") from exc

    @classmethod
    def load(cls, directory: Path, space: VectorSpace, settings: IndexSettings,
             store: str | None) -> HnswIndex:
        """The generation ``CURRENT`` names; ``CorruptStore`` if absent, unreadable, damaged
        (sizes, digests, entry counts), built for other space settings or for another
        ``store`` (the caller then rebuilds)."""
        try:
            current = json.loads((directory / "CURRENT").read_text())
            _check_current(current, space, store)
            index = cls(space, settings)
            index._read_files(directory, current)
            count, seq, trained_on = (int(current[key]) for key in ("count", "seq", "trained_on"))
        except UNREADABLE as exc:
            raise CorruptStore(f"cannot load vector index in {directory}: {exc}") from exc
        if not index._consistent(count):
            raise CorruptStore(f"vector index in {directory} disagrees with its labels")
        index.seq, index.trained_on = seq, trained_on
        return index

    def _read_files(self, directory: Path, current: dict[str, Any]) -> None:
        stem, files = current["stem"], current["files"]
        path, npz = directory / f"{stem}.faiss", directory / f"{stem}.npz"
        verify_at_load(path, files["faiss"])
        verify_at_load(npz, files["npz"])
        if self.space.quantization == "b1":
            self._faiss = faiss.read_index_binary(str(path))
        else:
            self._faiss = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
            self._mapped_from = path
        self._file = (path, files["faiss"])
        with np.load(npz) as arrays:
            self.labels, self.dead = arrays["labels"], arrays["dead"]

    def _consistent(self, count: int) -> bool:
        """Entries, labels and tombstones agree in number and type; labels strictly ascend."""
        return (self._faiss.ntotal == len(self.labels) == len(self.dead) == count
                and self.labels.dtype == np.int64 and self.dead.dtype == bool
                and bool(np.all(self.labels[1:] > self.labels[:-1])))


def _check_current(current: dict[str, Any], space: VectorSpace, store: str | None) -> None:
    """``CorruptStore`` unless ``CURRENT`` describes an index of ``space`` in ``store``."""
    if not isinstance(current, dict) or current.get("format") != FORMAT:
        raise CorruptStore("index was saved in another format")
    if current["space"] != _space_key(space):
        raise CorruptStore("index was built for other vector space settings")
    if current["store"] != store:
        raise CorruptStore("index was built for another store")


def _positions_of(labels: Labels, wanted: Labels) -> Labels:
    """Positions in the sorted ``labels`` of those ``wanted`` labels that are present."""
    if not len(labels) or not len(wanted):
        return np.zeros(0, dtype=np.int64)
    positions = np.minimum(np.searchsorted(labels, wanted), len(labels) - 1)
    found: Labels = positions[labels[positions] == wanted]
    return found


def _padded_bits(dim: int) -> int:
    return (dim + 7) // 8 * 8


def _space_key(space: VectorSpace) -> list[Any]:
    return [space.dim, space.metric, space.quantization]


def _write_text(path: Path, text: str) -> None:
    path.write_text(text)


def _save_npz(path: Path, index: HnswIndex) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, labels=index.labels, dead=index.dead)
