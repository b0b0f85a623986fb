"""The two ends of a migration: store specs (``./dir``, ``postgresql://...``, ``json:./dir``)
and the stores they open, the source read-only and the destination for writing.

Stores are opened as bare backends behind a ``Database`` whose vector index view keeps no
files: a migration writes tables only, and its searches are exact, so no index is built,
saved, or left behind by a migration that rolls back.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ...config import StoreSettings
from ...database import Database, compose
from ...errors import InvalidInput, NotFound
from ...index import open_index
from ...storage import postgres
from ...storage.base import Backend
from ...storage.sqlite import SqliteBackend
from ..legacy.records import ASSOCIATIONS, CONCEPTS, EMBEDDINGS
from .legacy_json import load_legacy

__all__ = [
    "Destination",
    "Source",
    "StoreSpec",
    "as_created",
    "facade",
    "open_backend",
    "open_destination",
    "open_source",
    "parse_spec",
    "remove_created",
]

Kind = Literal["sqlite", "postgres", "json"]
Created = Literal["directory", "contents"] | None
LEGACY_FILES = (CONCEPTS, ASSOCIATIONS, EMBEDDINGS)


@dataclass(frozen=True)
class StoreSpec:
    """Where a store lives: ``kind`` and its directory or connection URL."""

    kind: Kind
    location: str

    @property
    def path(self) -> Path:
        return Path(self.location)

    def describe(self) -> str:
        """The spec for messages and reports, never with a password."""
        if self.kind != "postgres":
            return f"{self.kind}:{self.location}"
        from ...storage.postgres.connection import describe

        return f"postgresql://{describe(self.location)}"


def parse_spec(text: str, *, source: bool) -> StoreSpec:
    """A store spec: a ``postgresql://`` URL, ``json:DIR`` or ``sqlite:DIR``, or a directory
    (legacy JSON when it holds ``concepts.json``, else a SQLite store). A source must exist."""
    if postgres.is_url(text):
        return StoreSpec("postgres", text)
    kind: Kind | None = None
    for prefix in ("json", "sqlite"):
        if text.startswith(prefix + ":"):
            kind, text = prefix, text[len(prefix) + 1:]
    if not text or text == ":memory:":
        raise InvalidInput(f"{text or 'an empty spec'!r} is not a store a migration can reach: "
                           "give a directory, json:DIR or a postgresql:// URL")
    path = Path(text)
    if kind is None:
        kind = "json" if (path / CONCEPTS).is_file() else "sqlite"
    if source:
        _check_source(kind, path)
    elif path.exists() and not path.is_dir():
        raise InvalidInput(f"destination {path} exists and is not a directory")
    return StoreSpec(kind, str(path))


def _check_source(kind: Kind, path: Path) -> None:
    if not path.is_dir():
        raise NotFound(f"no source store at {path} (no such directory)")
    wanted = CONCEPTS if kind == "json" else "loom.db"
    if not (path / wanted).is_file():
        what = "legacy JSON directory" if kind == "json" else "loomdb store"
        raise NotFound(f"{path} is not a {what}: it holds no {wanted}")


def facade(backend: Backend, settings: StoreSettings) -> Database:
    """A ``Database`` over ``backend`` whose index view is in memory only (never saved)."""
    return compose(backend, open_index(backend, None, settings), settings)


def open_backend(spec: StoreSpec, settings: StoreSettings) -> Backend:
    if spec.kind == "postgres":
        from ...storage.postgres import open_backend

        return open_backend(spec.location, settings)
    return SqliteBackend(spec.path, settings)


@dataclass
class Source:
    """The source, open read-only: ``identity`` names it, ``version`` is its state (the change
    log's seq, or a hash of the legacy files) so a changed source is noticed."""

    spec: StoreSpec
    db: Database
    identity: str
    version: str

    @property
    def backend(self) -> Backend:
        return self.db.backend

    def current_version(self) -> str:
        return _version(self.spec, self.backend)


def _version(spec: StoreSpec, backend: Backend) -> str:
    if spec.kind != "json":
        return f"seq {backend.seq()}"
    digest = hashlib.sha256()
    for name in LEGACY_FILES:
        if (spec.path / name).exists():
            digest.update((spec.path / name).read_bytes())
    return f"sha256 {digest.hexdigest()}"


def _identity(spec: StoreSpec, backend: Backend) -> str:
    if spec.kind == "postgres":
        return f"{spec.describe()} {backend.store_id() or ''}".strip()
    return f"{spec.kind}:{spec.path.resolve()}"


@contextmanager
def open_source(spec: StoreSpec) -> Iterator[Source]:
    """The source, read-only: a SQLite store without its writer lock, a PostgreSQL database
    in read-only transactions, or a legacy directory read into a memory store."""
    settings = StoreSettings(read_only=True)
    if spec.kind == "json":
        db = load_legacy(spec.path)
        version = _version(spec, db.backend)  # after reading: a file that failed never counts
    else:
        db = facade(open_backend(spec, settings), settings)
        version = _version(spec, db.backend)
    try:
        yield Source(spec, db, _identity(spec, db.backend), version)
    finally:
        db.backend.close()


@dataclass
class Destination:
    """The destination, open for writing. ``created`` says what the migration made of a
    SQLite destination's directory (all of it, or its contents), to remove on rollback."""

    spec: StoreSpec
    db: Database
    created: Created = None
    remove_on_close: bool = field(default=False)

    @property
    def backend(self) -> Backend:
        return self.db.backend


@contextmanager
def open_destination(spec: StoreSpec) -> Iterator[Destination]:
    """The destination store, created if needed (a PostgreSQL database must exist; loomdb
    adds its schema). On leaving, a destination marked ``remove_on_close`` loses what the
    migration created on disk, after the store is closed."""
    created: Created = None
    if spec.kind == "sqlite":
        if not spec.path.exists():
            created = "directory"
        elif not any(spec.path.iterdir()):
            created = "contents"
        elif not (spec.path / "loom.db").is_file():
            raise InvalidInput(f"destination {spec.path} is a directory that holds other "
                               "files and no loomdb store; give an empty or new directory")
    settings = StoreSettings()
    destination = Destination(spec, facade(open_backend(spec, settings), settings), created)
    try:
        yield destination
    finally:
        destination.backend.close()
        if destination.remove_on_close:
            remove_created(spec.path, destination.created)


def as_created(value: str | None) -> Created:
    """What a checkpoint recorded the migration created (unknown values: nothing)."""
    return "directory" if value == "directory" else "contents" if value == "contents" else None


def remove_created(path: Path, created: Created) -> None:
    """Undo what a migration created on disk: the whole directory, or what is inside it."""
    if created == "directory":
        shutil.rmtree(path, ignore_errors=True)
    elif created == "contents":
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
