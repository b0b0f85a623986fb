"""Verified migration between stores: SQLite directories, PostgreSQL databases and legacy JSON
directories, in any direction.

    >>> from loomdb.interchange.migrate import migrate
    >>> report = migrate("./notes-store", "postgresql://loomdb@db:5432/notes",
    ...                  report="migration.json")                       # doctest: +SKIP
    >>> report.ok                                                      # doctest: +SKIP
    True

**Copy** (``copying.py``). Everything a store holds: every tenant's nodes (every column:
created, updated, strength, access counts, props) and edges (every field), the vector spaces
(name, dim, model, metric, quantization, storage) and every vector in its space's storage
dtype (exact values), and the jobs the weaver has waiting (queued and running ones, queued
afresh; failed ones are not carried over: they record the source's give-ups). Derived state
is not copied: the change log, index stamps and ANN indexes are rebuilt by the destination
(a new SQLite store gets its indexes built at the end). Rows are read by keyset pages and
written in the source's order, ``batch`` rows per destination transaction.

**Checkpoints** (``checkpoint.py``). Each batch commits together with the checkpoint (meta key
``migration``): per tenant, the source position of the last node, edge and vector copied;
the source's identity and version (its seq); what the migration created on disk. A migration
killed at any point (SIGKILL included) resumes after the last committed batch; a checkpoint is
only resumed for the same source, unchanged (else ``Conflict``: start over with
``resume=False``). A finished migration leaves its checkpoint marked ``done``.

**Rollback**. The source is opened read-only (SQLite ``mode=ro``, PostgreSQL read-only
transactions, JSON files only read) and never written. The destination must be new or empty
(no node in any tenant, no vector space, no job) or hold this migration's checkpoint; anything
else is refused before a write. When a migration fails (an error, a failed check, a source
that changed under it), the destination is put back as it was before the migration began:

- a SQLite destination directory the migration created (or found empty) is removed (or
  emptied) once the store is closed;
- an existing SQLite store, and a PostgreSQL database, lose every row the migration wrote:
  nodes (with their edges and vectors), vector spaces (with their ANN indexes) and the
  checkpoint. What remains is an empty store: the loomdb schema (created on first use of a
  database), its store id, and a seq that has moved on (the log of the deletions is purged);
- a legacy directory the migration wrote is removed (or emptied).

An interrupt (Ctrl-C, ``KeyboardInterrupt``) is not a failure: it keeps the copy so far, to
resume. A migration into a legacy directory is not batched (each file is written atomically)
and is not resumable: run it again.

**Validation** (``validation.py``), after the copy and before the migration is marked done:
the same spaces; counts per tenant of nodes by kind, edges by type and vectors by space; a
checksum of every node and every edge (equal edge sets); every vector's cosine to the source
>= 0.9999 and its exact values; and the same answers for a sample of nodes per tenant (exact
vector search, text search, neighbours), then the job queue. The report (``report.py``) holds
every check with examples of what differs; ``validate_migration`` runs the checks again at
any time, writing nothing.
"""

from .checks import Check
from .migration import migrate, validate_migration
from .report import MigrationReport

__all__ = ["Check", "MigrationReport", "migrate", "validate_migration"]
