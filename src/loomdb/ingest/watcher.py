"""A drop folder: files that appear in a directory are ingested once they stop changing.

watchdog reports file events; a settle loop ingests a file only after its size and mtime have
not changed for ``settle`` seconds (so a file still being copied is not read half-written).
Only regular files inside the folder count: symlinks, and paths that resolve outside the
folder, are refused, as are files over ``max_bytes``. A file's failure is reported through
``on_result`` and never stops the watcher. A file deleted from the folder has its document
deleted too.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import InvalidInput, LimitExceeded, MissingDependency, NotFound
from .pipeline import SUPPORTED_SUFFIXES, IngestResult, document_id_for

if TYPE_CHECKING:
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers.api import BaseObserver

__all__ = ["DropFolder", "Ingester"]


class Ingester(Protocol):
    """What a drop folder feeds: the facade's ``ingest`` and ``delete_document``."""

    def ingest(self, sources: list[str | os.PathLike[str]]) -> list[IngestResult]: ...

    def delete_document(self, id: str) -> int: ...  # noqa: A002

DEFAULT_MAX_BYTES = 200 * 2**20


@dataclass
class _Pending:
    size: int
    mtime: float
    stable_since: float


class DropFolder:
    """Watch ``directory`` and ingest what lands in it (see the module docstring).

    Args:
        db: the tenant's handle to ingest into.
        settle: seconds a file must stay unchanged before it is ingested.
        max_bytes: larger files are refused with ``limit_exceeded``.
        on_result: called with each file's ``IngestResult`` (or deletion result).
    """

    def __init__(self, db: Ingester, directory: str | os.PathLike[str], *,
                 settle: float = 1.0, max_bytes: int = DEFAULT_MAX_BYTES,
                 on_result: Callable[[IngestResult], None] | None = None) -> None:
        if importlib.util.find_spec("watchdog") is None:
            raise MissingDependency('watching a folder needs watchdog: pip install '
                                    '"loomdb[ingest]"')
        self.root = Path(directory).resolve()
        if not self.root.is_dir():
            raise NotFound(f"{directory} is not a directory")
        self.db, self.settle, self.max_bytes = db, settle, max_bytes
        self.on_result = on_result or (lambda result: None)
        self._pending: dict[Path, _Pending] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._observer: BaseObserver | None = None
        self._settler: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Queue the files already there, then follow new events in the background."""
        from watchdog.observers import Observer

        for path in sorted(self.root.rglob("*")):
            self.offer(path)
        self._observer = Observer()
        self._observer.schedule(_handler(self), str(self.root), recursive=True)
        self._observer.start()
        self._settler = threading.Thread(target=self._settle_loop, name="loomdb-dropfolder",
                                         daemon=True)
        self._settler.start()

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(10)
        if self._settler is not None:
            self._settler.join(10)

    # -- events ----------------------------------------------------------------------------

    def offer(self, path: Path) -> None:
        """Consider ``path`` for ingestion (it waits until it has settled)."""
        if path.suffix.lower() not in SUPPORTED_SUFFIXES or path.is_dir():
            return
        try:
            info = path.lstat()
        except OSError:
            return
        with self._lock:
            self._pending[path] = _Pending(info.st_size, info.st_mtime, time.monotonic())

    def removed(self, path: Path) -> None:
        """``path`` left the folder: delete its document, if it had one."""
        with self._lock:
            self._pending.pop(path, None)
        try:
            self.db.delete_document(document_id_for(path))
        except NotFound:
            return
        self.on_result(IngestResult(str(path), "deleted", document_id_for(path)))

    def _settle_loop(self) -> None:
        while not self._stop.wait(min(self.settle / 4, 0.25)):
            for path in self._settled():
                self.on_result(self._ingest(path))

    def _settled(self) -> list[Path]:
        ready, now = [], time.monotonic()
        with self._lock:
            for path, seen in list(self._pending.items()):
                try:
                    info = path.lstat()
                except OSError:
                    del self._pending[path]
                    continue
                if (info.st_size, info.st_mtime) != (seen.size, seen.mtime):
                    self._pending[path] = _Pending(info.st_size, info.st_mtime, now)
                elif now - seen.stable_since >= self.settle:
                    ready.append(path)
                    del self._pending[path]
        return ready

    def _ingest(self, path: Path) -> IngestResult:
        try:
            self._check(path)
        except (InvalidInput, LimitExceeded) as exc:
            return IngestResult(str(path), "failed", error=exc)
        [result] = self.db.ingest([path])
        return result

    def _check(self, path: Path) -> None:
        """Refuse symlinks, escapes from the folder, non-regular files and big files."""
        if path.is_symlink():
            raise InvalidInput(f"{path}: symbolic links are not followed in a drop folder")
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(self.root):
            raise InvalidInput(f"{path}: resolves outside the drop folder {self.root}")
        if not real.is_file():
            raise InvalidInput(f"{path}: not a regular file")
        size = real.stat().st_size
        if size > self.max_bytes:
            raise LimitExceeded(f"{path}: {size:,} bytes is over the {self.max_bytes:,} limit")


def _handler(folder: DropFolder) -> FileSystemEventHandler:
    """A watchdog event handler that forwards file events to ``folder``."""
    from watchdog.events import FileSystemEventHandler

    def path_of(raw: str | bytes) -> Path:
        return Path(os.fsdecode(raw))

    class Handler(FileSystemEventHandler):
        def on_created(self, event: FileSystemEvent) -> None:
            folder.offer(path_of(event.src_path))

        def on_modified(self, event: FileSystemEvent) -> None:
            folder.offer(path_of(event.src_path))

        def on_moved(self, event: FileSystemEvent) -> None:
            folder.removed(path_of(event.src_path))
            folder.offer(path_of(event.dest_path))

        def on_deleted(self, event: FileSystemEvent) -> None:
            if not event.is_directory:
                folder.removed(path_of(event.src_path))

    return Handler()
