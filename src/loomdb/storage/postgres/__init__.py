"""The PostgreSQL + pgvector backend: ``loomdb.open("postgresql://user@host:5432/db")``.

The same Backend protocol and contract suite as SQLite, on one database (PostgreSQL 14+,
pgvector 0.8+; tested on 18 and 0.8.6). ``PostgresBackend(url, settings)`` connects, enables
``vector`` if the role may (else says how), and migrates the schema (``schema.py``).

Design, and where it differs from SQLite:

- **Connections** (``connection.py``): a ``psycopg_pool`` pool of autocommit connections;
  ``transaction()`` holds one per thread, nested blocks are savepoints, and every backend call
  inside one is a savepoint too (a failed call undoes only itself, as on SQLite). A call
  outside a transaction is retried as a whole (tenacity, 4 attempts) after a serialization
  failure, a deadlock or a connection lost before COMMIT; never inside a caller's transaction,
  and never when the connection broke during COMMIT (the outcome is unknown: it says so).
  An unreachable server is ``BackendUnavailable`` naming host:port, at once.
- **Tenancy, twice**: every query filters by tenant, and row-level security enforces it
  (``FORCE``d, so it binds the tables' owner). Each transaction starts with
  ``set_config('loomdb.tenant', t, true)``; policies admit rows of that tenant only, or every
  row when ``loomdb.all_tenants`` is on, which only the cross-tenant calls set (the job queue,
  ``seq``, ``purge_log``, ``vector_tenants``, spaces). A connection without the setting sees
  nothing. Superusers and BYPASSRLS roles skip RLS: ``rls_enforced`` is then False and a
  warning is logged; connect as an ordinary role (the owner of the database is fine).
- **Change log**: statement-level triggers over transition tables write ``changes`` (one
  INSERT per statement); ``seq()`` is the largest committed ``seq`` (or the purge floor), so
  a rolled-back transaction never moves it. Under concurrent writers a smaller ``seq`` can
  commit after a larger one (sequences are not commit-ordered); nothing on PostgreSQL needs
  log order, since searches do not go through the index view. Labels are identity values:
  never reused.
- **Vectors** (``vectors.py``): ``vector`` (float32) in one table; float64 spaces also keep
  their exact bytes. One partial HNSW index per space: ``(vec::halfvec(dim))`` with
  ``halfvec_<metric>_ops`` for ``f32``/``f16``/``i8`` (pgvector has no int8 index: ``i8`` is
  served at half precision), ``binary_quantize(vec)::bit(dim)`` with ``bit_hamming_ops`` for
  ``b1``. Spaces wider than 4,000 dimensions get no halfvec index and are searched exactly
  (``b1`` spaces are indexed at any width pgvector stores: up to 16,000).
  ``m=16, ef_construction=64`` (pgvector's defaults: inserts are row-at-a-time, and
  IndexSettings' faiss-tuned 32/80 made them 4x slower); ``ef_search``, ``exact_threshold``
  and the oversampling of ``IndexSettings`` apply; the index view, its files and
  ``compact_ratio`` do not.
- **Search**: ``native_vectors`` makes ``loomdb.index.open_index`` choose ``PgvectorIndex``,
  whose searches call ``search_vectors``: the index proposes ``k x oversample`` candidates
  with an iterative scan (``hnsw.iterative_scan = relaxed_order``) that skips other tenants
  and filtered-out rows, then the stored float32 vectors are re-scored with ``exact_scores``:
  cosine similarity, inner product or minus L2 distance, higher is better, the same numbers
  as on SQLite.
  Selective filters (at most ``exact_threshold`` matches), unindexed spaces and short index
  answers fall back to an exact scan, so k matches always give k hits.
- **Graph** (``graph.py``): ``native_graph`` makes ``loomdb.graph`` run the k-hop expansion
  and the unweighted shortest path as recursive CTEs, one statement each (one round trip
  instead of one per hop). The expansion is the generic walk with its bounds (identical
  results); the path search is a one-sided breadth-first search without a fan-out cap, so it
  explores more than the generic two-sided one (on localhost it is slower: ~18 ms against
  ~11 ms for 6 hops over 20,000 edges; it pays off where round trips are dear). Weighted
  paths stay generic.
- **Full text**: a generated ``tsvector`` column (``to_tsvector('simple', text)``: lowercased
  words, no stemming and no stop words, like SQLite's unicode61 tokenizer; but accents are
  kept, and URLs, e-mail addresses and hyphenated words are tokens of their own too) with a
  GIN index, over the first 250,000 characters of a text (a tsvector holds at most 1 MB).
  A query is its ``\\w+`` words, each quoted as a lexeme and OR-ed (nothing in it is
  syntax), ranked by ``ts_rank_cd`` (cover density: how many query words a node holds, and
  how close together). Higher is better, as with SQLite's BM25, but the scale differs (no
  IDF, no length normalization): compare scores within one backend only.
- **Props** are ``json``, not ``jsonb``: jsonb reorders keys and respells numbers, and a
  store gives back what it was given. Filters (``filters.py``) keep SQLite's semantics.
- **Text** cannot hold NUL in PostgreSQL: such ids, texts and props are ``InvalidInput``
  here (SQLite stores them); a filter value with NUL matches as it would against NUL-free
  text.
- **Jobs**: claims use ``FOR UPDATE SKIP LOCKED``, so workers in any process never collide.
- ``durability`` sets ``synchronous_commit`` (full: on, normal: local, off: off);
  ``busy_timeout`` the lock and pool timeouts; ``read_only`` makes transactions read-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeGuard

from ...config import StoreSettings
from ...errors import MissingDependency

if TYPE_CHECKING:
    from .backend import PostgresBackend

__all__ = ["URL_SCHEMES", "PostgresBackend", "is_url", "open_backend"]


URL_SCHEMES = ("postgresql://", "postgres://")  # a store path that starts so is this backend's


def is_url(path: object) -> TypeGuard[str]:
    """Whether ``path`` names a PostgreSQL store (a ``postgresql://`` URL)."""
    return isinstance(path, str) and path.startswith(URL_SCHEMES)


def open_backend(url: str, settings: StoreSettings) -> PostgresBackend:
    """``PostgresBackend(url, settings)``, or ``MissingDependency`` with the install hint
    when the ``[postgres]`` extra is not installed."""
    try:
        from .backend import PostgresBackend
    except ImportError as exc:
        raise MissingDependency(f"the postgres backend needs the [postgres] extra ({exc.name} "
                                "is not installed): pip install 'loomdb[postgres]'") from exc
    return PostgresBackend(url, settings)


def __getattr__(name: str) -> Any:
    # psycopg is imported on first use, so `import loomdb` works without the extra
    if name == "PostgresBackend":
        from .backend import PostgresBackend

        return PostgresBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
