"""``migrate`` and ``validate_migration``: the steps of a migration and what happens when one
fails (the package docstring has the design)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...config import StoreSettings
from ...database import Database
from ...database import open as open_store
from ...errors import Conflict, InvalidInput, NotFound
from ...storage.base import Backend
from .checkpoint import Checkpoint, read_checkpoint, write_checkpoint
from .copying import Copier, Progress, Survey, copy_jobs, survey
from .legacy_json import JSON_SPACE, export_json, json_space, load_legacy
from .report import MigrationReport
from .stores import (
    Created,
    Destination,
    Source,
    StoreSpec,
    as_created,
    open_backend,
    open_destination,
    open_source,
    parse_spec,
    remove_created,
)
from .validation import Tick, check_jobs, validate

__all__ = ["migrate", "validate_migration"]

DEFAULT_BATCH = 1_000
DEFAULT_SAMPLE = 20


def migrate(
    src: str | Path, dst: str | Path, *, dry_run: bool = False, batch: int = DEFAULT_BATCH,
    resume: bool = True, report: str | Path | None = None, progress: Progress | None = None,
    sample: int = DEFAULT_SAMPLE,
) -> MigrationReport:
    """Copy the store ``src`` into ``dst`` and validate the copy (see the package docstring).

    Stores are a directory (a SQLite store, or a legacy JSON directory when it holds
    ``concepts.json``), ``json:DIR``, ``sqlite:DIR`` or a ``postgresql://`` URL. The source is
    only read. The destination must be new or empty, or hold an interrupted migration of the
    same source, which ``resume`` continues (``resume=False`` starts it over).

    Args:
        dry_run: survey the source and the destination; write nothing.
        batch: rows per destination transaction (each with its checkpoint).
        report: where to write the JSON report (also written when the migration fails).
        progress: ``progress(stage, done, total)`` with stage ``copy``, ``validate``, ``index``.
        sample: nodes per tenant whose queries are compared.

    Returns the report: ``report.ok`` is False when a check failed, and then the destination
    was rolled back. Errors (``LoomError``) roll it back too, and are raised after the report
    is written; an interrupt (``KeyboardInterrupt``) keeps what was copied, to resume.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InvalidInput(f"batch must be a positive integer, got {batch!r}")
    source_spec = parse_spec(str(src), source=True)
    dest_spec = parse_spec(str(dst), source=False)
    _check_apart(source_spec, dest_spec)
    result = MigrationReport(source_spec.describe(), dest_spec.describe(),
                             mode="dry-run" if dry_run else "migrate")
    with _reporting(result, report), open_source(source_spec) as source:
        found = survey(source.backend)
        result.survey = found.to_dict()
        if dry_run:
            result.destination_state = _probe(dest_spec, source)
        elif dest_spec.kind == "json":
            _to_legacy(source, dest_spec, result, found, _Settings(batch, progress, sample))
        else:
            _to_store(source, dest_spec, result, found,
                      _Settings(batch, progress, sample, resume))
    return result


def validate_migration(
    src: str | Path, dst: str | Path, *, report: str | Path | None = None,
    progress: Progress | None = None, sample: int = DEFAULT_SAMPLE, batch: int = DEFAULT_BATCH,
) -> MigrationReport:
    """Validate again that ``dst`` holds what ``src`` holds, reading both, writing neither
    (nothing is rolled back whatever the checks find)."""
    source_spec, dest_spec = parse_spec(str(src), source=True), parse_spec(str(dst), source=True)
    result = MigrationReport(source_spec.describe(), dest_spec.describe(), mode="validate")
    with _reporting(result, report), open_source(source_spec) as source:
        found = survey(source.backend)
        result.survey = found.to_dict()
        with _opened_copy(dest_spec, source.db) as copy:
            tick = _meter(progress, "validate", found.rows)
            result.checks = validate(source.db, copy, legacy_dest=dest_spec.kind == "json",
                                     sample=sample, batch=batch, tick=tick)
            if dest_spec.kind != "json":
                result.checks.append(check_jobs(source.db, copy))
    return result


class _Settings:
    def __init__(self, batch: int, progress: Progress | None, sample: int,
                 resume: bool = True) -> None:
        self.batch, self.progress, self.sample, self.resume = batch, progress, sample, resume


@contextmanager
def _reporting(result: MigrationReport, path: str | Path | None) -> Iterator[None]:
    """Time the run, record an error, and write the report file however it ends."""
    try:
        yield
    except BaseException as exc:
        result.fail(exc)
        raise
    finally:
        result.seconds = time.time() - result.started
        if path is not None:
            result.write(path)


def _meter(progress: Progress | None, stage: str, total: int) -> Tick:
    done = 0

    def tick(rows: int) -> None:
        nonlocal done
        done += rows
        if progress is not None:
            progress(stage, done, max(total, done))

    return tick


def _check_apart(source: StoreSpec, dest: StoreSpec) -> None:
    same = (source.describe() == dest.describe() if "postgres" in (source.kind, dest.kind)
            else Path(source.location).resolve() == Path(dest.location).resolve())
    if same:
        raise InvalidInput(f"source and destination are the same store ({dest.describe()})")


# -- into a SQLite or PostgreSQL store ---------------------------------------------------------


def _to_store(source: Source, spec: StoreSpec, result: MigrationReport, found: Survey,
              settings: _Settings) -> None:
    with open_destination(spec) as dest:
        checkpoint, result.resumed = _begin(dest, source, settings)
        try:
            Copier(source.backend, dest.backend, checkpoint, settings.batch,
                   settings.progress, found.rows).run(list(found.tenants), found.spaces)
            result.copied = dict(checkpoint.copied)
            _check_unchanged(source, checkpoint.version)
            result.checks = validate(source.db, dest.db, sample=settings.sample,
                                     batch=settings.batch,
                                     tick=_meter(settings.progress, "validate", found.rows))
            if result.ok:
                _finish(source, dest, checkpoint, result)
            else:
                _roll_back(dest, settings.batch, result)
        except KeyboardInterrupt:
            result.notes.append("interrupted: the copy so far is kept; run again to resume")
            raise
        except BaseException:
            _roll_back(dest, settings.batch, result)
            raise
    if result.ok and spec.kind == "sqlite":
        _build_indexes(spec, settings.progress)


def _begin(dest: Destination, source: Source, settings: _Settings) -> tuple[Checkpoint, bool]:
    """The checkpoint to copy from, and whether it resumes an interrupted migration."""
    found = _assess(dest.backend, dest.spec, source, settings.resume)
    if found is not None:
        dest.created = as_created(found.created)  # a failure now removes what the first run created
        if settings.resume:
            return found, True
        _wipe(dest.backend, settings.batch)
    fresh = Checkpoint(source.identity, source.version, created=dest.created)
    write_checkpoint(dest.backend, fresh)
    return fresh, False


def _assess(backend: Backend, spec: StoreSpec, source: Source,
            resume: bool) -> Checkpoint | None:
    """The destination's checkpoint of an interrupted migration of this source, or None for
    an empty destination; ``Conflict`` for anything else."""
    found = read_checkpoint(backend)
    where = spec.describe()
    if found is None:
        if not _is_empty(backend):
            raise Conflict(f"{where} is not empty: a migration writes only into a new or empty "
                           "store (or resumes its own)")
        return None
    if found.source != source.identity:
        raise Conflict(f"{where} holds a migration from another source ({found.source})")
    if found.phase == "done":
        raise Conflict(f"{where} already holds a completed migration of this source (finished "
                       f"{time.ctime(found.finished or 0)}); check it with validate")
    if resume and found.version != source.version:
        raise Conflict(f"the source changed since the interrupted migration ({found.version} "
                       f"then, {source.version} now); start over with --no-resume")
    return found


def _is_empty(backend: Backend) -> bool:
    jobs = backend.job_counts()
    return not (backend.tenants() or backend.list_spaces()
                or any(jobs[status] for status in ("queued", "running", "failed")))


def _check_unchanged(source: Source, version: str) -> None:
    now = source.current_version()
    if now != version:
        raise Conflict(f"the source changed during the migration ({version} at the start, "
                       f"{now} now): a migration needs a source nobody writes to")


def _finish(source: Source, dest: Destination, checkpoint: Checkpoint,
            result: MigrationReport) -> None:
    """Queue the source's waiting jobs and mark the migration done, in one transaction."""
    with dest.backend.transaction():
        result.jobs_queued = copy_jobs(source.backend, dest.backend)
        check = check_jobs(source.db, dest.db)
        result.checks.append(check)
        if not check.ok:
            raise Conflict(f"the destination's job queue differs from the source's: "
                           f"{check.examples[:3]}")
        checkpoint.phase, checkpoint.finished = "done", time.time()
        write_checkpoint(dest.backend, checkpoint)


def _roll_back(dest: Destination, batch: int, result: MigrationReport) -> None:
    """Put the destination back as it was: a SQLite directory the migration created is
    removed (once closed); otherwise every row, space and the checkpoint are deleted."""
    if dest.created is not None:
        dest.remove_on_close = True
    else:
        _wipe(dest.backend, batch)
    result.rolled_back = True


def _wipe(backend: Backend, batch: int) -> None:
    """Delete every node (with its edges and vectors), every space and the checkpoint."""
    for tenant in backend.tenants():
        while page := backend.scan_nodes(tenant, 0, batch):
            backend.delete_nodes(tenant, [node.id for _, node in page])
    for space in backend.list_spaces():
        backend.delete_space(space.name)
    write_checkpoint(backend, None)
    backend.purge_log()


def _build_indexes(spec: StoreSpec, progress: Progress | None) -> None:
    """Build and save the vector indexes of a new SQLite store, so its first search is fast."""
    with open_store(spec.path, ml=None, weaver=False, cache=None) as db:
        db.reindex(progress=None if progress is None else
                   (lambda done, total: progress("index", done, total)))


# -- into a legacy JSON directory ------------------------------------------------------------


def _to_legacy(source: Source, spec: StoreSpec, result: MigrationReport, found: Survey,
               settings: _Settings) -> None:
    path = spec.path
    created: Created = "contents" if path.exists() else "directory"
    if path.exists() and any(path.iterdir()):
        raise Conflict(f"{path} is not empty: a legacy directory is written into a new or "
                       "empty one")
    json_space(source.db)  # refuse what the format cannot hold before writing anything
    try:
        counts = export_json(source.db, path)
        result.copied = {"nodes": counts["concepts"], "edges": counts["associations"],
                         "vectors": counts["embeddings"]}
        _report_copy(settings.progress, found.rows)
        _check_unchanged(source, source.version)
        with _opened_copy(spec, source.db) as copy:
            result.checks = validate(source.db, copy, legacy_dest=True, sample=settings.sample,
                                     batch=settings.batch,
                                     tick=_meter(settings.progress, "validate", found.rows))
        if not result.ok:
            remove_created(path, created)
            result.rolled_back = True
    except BaseException:
        remove_created(path, created)
        result.rolled_back = True
        raise


def _report_copy(progress: Progress | None, rows: int) -> None:
    if progress is not None:
        progress("copy", rows, rows)


@contextmanager
def _opened_copy(spec: StoreSpec, source: Database) -> Iterator[Database]:
    """A destination opened to be checked: read-only, or a legacy directory read back (into
    the vector space the source's vectors were exported from)."""
    if spec.kind != "json":
        with open_source(spec) as copy:
            yield copy.db
        return
    space = json_space(source)
    db = load_legacy(spec.path, space.name if space else JSON_SPACE)
    try:
        yield db
    finally:
        db.close()


def _probe(spec: StoreSpec, source: Source) -> str:
    """What a migration would find at the destination (a dry run: nothing is written)."""
    if spec.kind == "json":
        json_space(source.db)
        if spec.path.exists() and any(spec.path.iterdir()):
            raise Conflict(f"{spec.path} is not empty: a legacy directory is written into a "
                           "new or empty one")
        return "new legacy directory"
    if spec.kind == "sqlite" and (not spec.path.exists() or not any(spec.path.iterdir())):
        return "new store"
    if spec.kind == "sqlite" and not (spec.path / "loom.db").is_file():
        raise InvalidInput(f"destination {spec.path} holds other files and no loomdb store")
    return _probe_store(spec, source)


def _probe_store(spec: StoreSpec, source: Source) -> str:
    try:
        backend = open_backend(spec, StoreSettings(read_only=True))
    except NotFound:
        return "new store (no loomdb schema there yet)"
    try:
        found = _assess(backend, spec, source, resume=False)
        if found is None:
            return "empty store"
        rows = sum(found.copied.values())
        if found.version != source.version:
            return (f"interrupted migration of this source ({rows} rows copied), but the "
                    "source changed since: only --no-resume can start it over")
        return f"resumable: {rows} rows already copied"
    finally:
        backend.close()
