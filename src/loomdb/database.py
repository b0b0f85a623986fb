"""The Database facade: one tenant's handle on a store.

``open()`` builds every part of a store once — the backend, the vector index view, the ML
provider slot, the weaver and the query engine — and ``Database`` composes them: its records
(nodes, edges, vectors, search, graph) come from its typed base ``Store``; ingestion, chats,
memories, enrichment and converged queries are thin calls into the pipelines, each given the
tenant's ``Context``, never the Database. A ``Database`` is safe to share between threads.
"""

from __future__ import annotations

import atexit
import logging
import re
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Unpack

from .cache import ResultCache, open_cache
from .config import DURABILITIES, Durability, EnrichmentSettings, IndexSettings, StoreSettings
from .context import Context, ProviderSlot
from .errors import InvalidInput, LoomError, MissingDependency, NotFound
from .eval.golden import GoldenQuery
from .eval.runner import EvalReport, ProgressCallback, evaluate
from .eval.strategies import DEFAULT_STRATEGIES, EvalStrategy
from .index import VectorIndex, open_index
from .ingest import pipeline
from .ingest.chunking import ChunkSettings
from .ingest.extract import ExtractLimits
from .ingest.watcher import DropFolder
from .memory import chats
from .memory.memories import Remembered, remember
from .memory.reasoning import ReasoningPath, strongest_paths
from .ml.bridge import MLProvider
from .model import Hit, JSONObject, Node, NodeRef
from .query.builder import QUERY_ARGUMENTS, QueryArguments, QueryBuilder, query_from_arguments
from .query.engine import QueryEngine, QueryResult, QueryStats
from .query.personalize import (
    UserPolicy,
    load_policy,
    record_feedback,
    save_policy,
    set_preferences,
)
from .query.plan import Plan, Query
from .similarity import Matrix
from .storage import postgres
from .storage.base import Backend, Job, JobSpec
from .storage.sqlite import SqliteBackend
from .store import Store
from .validation import check_id, check_limit, check_name, shown
from .weaver.activity import TASK_NAMES, ActivityLevel
from .weaver.worker import Weaver, WeaverStatus

__all__ = ["Database", "compose", "open"]

URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]+://")  # another scheme: not a directory name


def open(  # noqa: A001 - loomdb.open mirrors sqlite3.connect / io.open
    path: str | Path = ":memory:",
    *,
    durability: str = "full",
    read_only: bool = False,
    busy_timeout: float = 5.0,
    index: IndexSettings | None = None,
    ml: MLProvider | str | None = "local",
    weaver: bool = True,
    enrichment: EnrichmentSettings | None = None,
    cache: str | ResultCache | None = "memory",
) -> Database:
    """Open (creating if needed) the store in directory ``path``, or a memory store, or the
    PostgreSQL database of a ``postgresql://user@host:port/db`` URL (``loomdb[postgres]``).

    A second process opening the same directory for writing gets ``StoreLocked`` naming the
    holder; ``read_only=True`` opens without the lock. On PostgreSQL, ``durability`` sets
    ``synchronous_commit``, and of ``index`` only ``ef_search``, ``exact_threshold`` and the
    oversampling apply: pgvector searches in the server, with its own HNSW indexes.

    Args:
        ml: the ML provider for ingestion and enrichment: ``"local"`` (MiniLM, spaCy and an
            extractive summarizer; loaded on first use), an ``MLProvider``, or ``None`` for a
            store that never embeds or extracts by itself.
        weaver: run enrichment jobs in a background thread (started on the first write that
            queues jobs, or at once when jobs are waiting from an earlier run). With
            ``False`` jobs wait until ``wait_for_enrichment()`` runs them inline.
        enrichment: novelty threshold, summary length, embedding space and memory half-life.
        cache: the query result cache: ``"memory"`` (in-process), a ``redis://`` URL to share
            one between servers, a ``ResultCache``, or ``None``.
    """
    settings = StoreSettings(durability=_durability(durability), busy_timeout=busy_timeout,
                             read_only=read_only, index=index or IndexSettings())
    backend, directory = _open_backend(path, settings)
    db = compose(backend, open_index(backend, directory, settings), settings,
                 ml=ml, enrichment=enrichment, cache=cache, namespace=_namespace(path, backend),
                 background=weaver and not read_only)
    if db.parts.background and backend.job_counts()["queued"]:
        db.weaver.start()  # resume the enrichment an earlier process left queued
    return db


def _durability(value: str) -> Durability:
    if value not in DURABILITIES:
        raise InvalidInput(f"durability must be full, normal or off, got {value!r:.40}")
    return value  # narrowed to a Durability by the check above


def _open_backend(path: str | Path, settings: StoreSettings) -> tuple[Backend, Path | None]:
    """The backend of ``path`` and the folder for its index files (``None``: no files — a
    memory store, or PostgreSQL, whose pgvector indexes live in the database)."""
    if postgres.is_url(path):
        return postgres.open_backend(path, settings), None
    if not isinstance(path, str | PathLike) or (isinstance(path, str) and URL.match(path)):
        raise InvalidInput(f"a store is a directory, ':memory:' or a postgresql:// URL, got "
                           f"{shown(path, 80)}")
    sqlite = SqliteBackend(path, settings)
    return sqlite, None if sqlite.directory is None else sqlite.directory / "index"


def compose(
    backend: Backend, view: VectorIndex, settings: StoreSettings, *,
    ml: MLProvider | str | None = None, enrichment: EnrichmentSettings | None = None,
    cache: str | ResultCache | None = None, namespace: str = "", background: bool = False,
) -> Database:
    """A Database over an opened backend and its vector index (``loomdb.index.open_index``),
    every part built here, once (``open`` calls it; so do tools that open backends
    themselves, such as ``loomdb migrate``)."""
    root = Context(Store(backend, view, settings), ProviderSlot(_provider_factory(ml)),
                   enrichment or EnrichmentSettings())
    parts = Parts(root, Weaver(root), QueryEngine(backend, settings.index, open_cache(cache),
                                                  namespace),
                  owns_cache=not isinstance(cache, ResultCache),  # one passed in is the caller's
                  background=background)
    return _closed_at_exit(Database(parts))


_OPEN_STORES: weakref.WeakSet[Database] = weakref.WeakSet()


def _closed_at_exit(db: Database) -> Database:
    """Track ``db`` so that interpreter exit closes it if its owner did not: a script that
    ends without ``close()`` would otherwise kill the weaver's thread inside native code
    (ONNX Runtime, faiss) at finalization — the process aborts ("terminate called without an
    active exception", exit 134) — and leave its index unsaved."""
    atexit.unregister(_close_open_stores)  # registered once, however many stores are opened
    atexit.register(_close_open_stores)
    _OPEN_STORES.add(db)
    return db


def _close_open_stores() -> None:
    for db in list(_OPEN_STORES):
        try:
            db.close()
        except LoomError as exc:  # exiting anyway: say what could not be saved, close the rest
            logging.getLogger("loomdb").error("closing %s at exit: %s", db.backend, exc)


@dataclass(frozen=True)
class Parts:
    """What one open store is made of, built once by ``compose`` and shared by its tenant
    handles: the default tenant's context, the weaver, the query engine."""

    root: Context
    weaver: Weaver
    engine: QueryEngine
    owns_cache: bool = False
    background: bool = False


def _namespace(path: str | Path, backend: Backend) -> str:
    """The store's identity in a shared result cache: the id the store keeps for itself (so
    two machines' stores at the same path never share entries), else where it lives (never
    with its password)."""
    identity = backend.store_id()
    if identity is not None:
        return identity
    if isinstance(path, str) and "://" in path:
        scheme, _, rest = path.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"
    if str(path) == ":memory:":
        return f"memory:{id(backend):x}"
    return f"sqlite:{Path(path).resolve()}"


def _provider_factory(ml: MLProvider | str | None) -> Callable[[], MLProvider]:
    """How the weaver gets its provider: built on first use, so opening loads no model."""
    if isinstance(ml, MLProvider):
        return lambda: ml
    if ml is None:
        def refuse() -> MLProvider:
            raise MissingDependency("this store was opened with ml=None; open it with "
                                    "ml='local' or an MLProvider to ingest or enrich")
        return refuse
    if ml == "local":
        from .ml.defaults import default_provider

        return default_provider
    raise InvalidInput(f"ml must be 'local', an MLProvider or None, got {ml!r}")


class Database(Store):
    """One tenant's handle on a store. ``db.tenant(name)`` gives another tenant's."""

    def __init__(self, parts: Parts, tenant: str = "default", *, owner: bool = True) -> None:
        root = parts.root
        super().__init__(root.backend, root.view, root.settings, tenant)
        self.parts = parts
        self.context = root.for_tenant(tenant) if tenant != root.tenant else root
        self._owner = owner
        self._closed = False

    @property
    def weaver(self) -> Weaver:
        """The store's enrichment worker (shared by every tenant handle)."""
        return self.parts.weaver

    @property
    def engine(self) -> QueryEngine:
        """The store's query engine: statistics, planner, executor and result cache."""
        return self.parts.engine

    # -- lifecycle -------------------------------------------------------------------------

    def tenant(self, name: str) -> Database:
        """A handle scoped to tenant ``name``; nothing it does reads or touches other tenants."""
        return Database(self.parts, check_name(name, "tenant"), owner=False)

    def close(self) -> None:
        """Save the vector indexes and release the store. Tenant handles close nothing."""
        if self._owner and not self._closed:
            self._closed = True
            self.weaver.stop()  # after its batch in progress; queued jobs stay in the store
            if self.engine.cache is not None and self.parts.owns_cache:
                self.engine.cache.close()
            try:
                if not self.settings.read_only:
                    self.checkpoint()
            finally:
                self.backend.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def checkpoint(self) -> None:
        """Save changed vector indexes now and purge the change log they cover (an index the
        database keeps itself, as on PostgreSQL, has no files: its whole log is covered)."""
        self.view.save()

    # -- ingestion, chats, memories -----------------------------------------------------------

    def ingest(
        self, sources: str | PathLike[str] | Iterable[str | PathLike[str]] | None = None, *,
        text: str | None = None, title: str | None = None, id: str | None = None,  # noqa: A002
        chunking: ChunkSettings | None = None, limits: ExtractLimits | None = None,
        password: str | None = None, strict: bool = False,
        progress: Callable[[pipeline.IngestResult], None] | None = None,
    ) -> list[pipeline.IngestResult]:
        """Ingest files, directories (their PDF, text, Markdown and HTML files) or, with
        ``text=``, a text; one result per source. Unchanged files are skipped; a file that
        fails is reported in its result (raised with ``strict``). ``limits`` bounds each file
        and a ``text=`` (``LimitExceeded`` past ``max_chars``). Enrichment (embeddings,
        entities, summaries) is queued for the weaver in the same transaction."""
        if text is not None and not isinstance(text, str):
            raise InvalidInput("text= must be a string")
        if text is not None:
            results = [pipeline.ingest_text(self.context, text, title=title, document_id=id,
                                            chunking=chunking, limits=limits)]
        else:
            if sources is None:
                raise InvalidInput("ingest() needs paths or text=")
            paths = _paths(sources)
            results = pipeline.ingest_sources(self.context, paths, chunking=chunking,
                                              limits=limits, password=password, strict=strict,
                                              progress=progress)
        self._kick()
        return results

    def delete_document(self, id: NodeRef) -> int:  # noqa: A002
        """Delete a document, its chunks and the entities only they mentioned."""
        return pipeline.delete_document(self.context.store, check_id(id))

    def create_chat(self, title: str, topic: str | None = None, *, id: str | None = None,  # noqa: A002
                    props: JSONObject | None = None) -> Node:
        return chats.create_chat(self.context.store, title, topic, chat_id=id, props=props)

    def add_message(self, chat: NodeRef, sender: str, content: str, role: str = "user", *,
                    reply_to: NodeRef | None = None, id: str | None = None,  # noqa: A002
                    props: JSONObject | None = None, created: float | None = None) -> Node:
        """Append a message to ``chat`` (``next`` from the one before, ``reply_to`` if given);
        its embedding, entities and the chat's summary follow in the background."""
        answered = None if reply_to is None else check_id(reply_to)
        ref = chats.add_message(self.context.store, check_id(chat), sender, content, role,
                                reply_to=answered, message_id=id, props=props, created=created)
        self._kick()
        return self.get_node(ref.id)

    def entities_mentioned_in(self, id: NodeRef) -> list[Node]:  # noqa: A002
        """The entities a message or chunk mentions (once the weaver has linked them)."""
        return chats.entities_mentioned_in(self.context.store, check_id(id))

    def remember(self, text: str, *, kind: str = "memory", props: JSONObject | None = None,
                 id: str | None = None) -> Remembered:  # noqa: A002
        """Keep a fact; a repeat of a known one reinforces it instead (novelty gating)."""
        found = remember(self.context, text, kind=kind, props=props, memory_id=id)
        self._kick()
        return found

    def watch(self, directory: str | PathLike[str], *, settle: float = 1.0,
              max_bytes: int = 200 * 2**20,
              on_result: Callable[[pipeline.IngestResult], None] | None = None) -> DropFolder:
        """A drop folder over ``directory``: what lands there is ingested (and what leaves
        it deleted) once it has settled; ``start()`` it, ``stop()`` it (``loomdb[ingest]``)."""
        return DropFolder(self, directory, settle=settle, max_bytes=max_bytes,
                          on_result=on_result)

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Vectors of ``texts`` from the store's ML provider (the one ingestion, the weaver
        and text queries use), one unit-length row each."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InvalidInput("embed() takes a list of strings")
        return self.context.provider.embed(list(texts))

    # -- enrichment (the weaver) -----------------------------------------------------------

    def enrich(self, ids: Sequence[NodeRef], tasks: Sequence[str] = ("embed",)) -> int:
        """Queue enrichment of your own nodes: ``embed`` (then entities follow),
        ``entities``, ``summarize``. Returns the jobs queued."""
        unknown = set(tasks) - set(TASK_NAMES)
        if unknown:
            raise InvalidInput(f"unknown task(s) {sorted(unknown)}; tasks: {TASK_NAMES}")
        wanted = [check_id(i) for i in ids]
        missing = set(wanted) - set(self.get_nodes(wanted))
        if missing:
            raise NotFound(f"no node(s) {sorted(missing)[:5]} in tenant {self.tenant_name!r}")
        count = self.backend.enqueue_jobs(self.tenant_name,
                                          [JobSpec(t, i) for i in wanted for t in tasks])
        self._kick()
        return count

    def weaver_status(self) -> WeaverStatus:
        """Workers, this tenant's queue size and failed count, its jobs' latency and its last
        event (or the store's own, a change of activity level say); ``done`` is the store's,
        as done jobs are totalled per task, not per tenant."""
        return self.weaver.status(self.tenant_name)

    def set_activity_level(self, level: ActivityLevel) -> None:
        """``high``: embeddings only; ``normal``: everything but consolidation; ``sleep``:
        everything, consolidation included (queued now for this tenant)."""
        self.weaver.set_activity(level)
        if level == "sleep":
            self.backend.enqueue_jobs(self.tenant_name, [JobSpec("consolidate", "*")])
            self._kick()

    def wait_for_enrichment(self, timeout: float = 300.0) -> bool:
        """Block until no job of the current activity level is ready to run (running them in
        this thread when there is no background worker). ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.weaver.run_until_idle(max(deadline - time.monotonic(), 0.0))
            if self.weaver.pending() == 0:
                return True
            time.sleep(0.05)
        return False

    def jobs(self, id: NodeRef | None = None, *, status: str | None = None,  # noqa: A002
             limit: int = 100) -> list[Job]:
        """Enrichment jobs not yet done (queued, running, failed with their error), of one
        node or all of this tenant's."""
        if status not in (None, "queued", "running", "failed"):
            raise InvalidInput(f"status must be queued, running or failed, got {status!r}")
        node = None if id is None else check_id(id)
        return self.backend.list_jobs(self.tenant_name, node, status, check_limit(limit))

    def _kick(self) -> None:
        if self.parts.background:
            self.weaver.start()
            self.weaver.notify()

    def _as_query(self, query: Query | str | None, arguments: QueryArguments) -> Query:
        unknown = set(arguments) - QUERY_ARGUMENTS
        if unknown:
            raise InvalidInput(f"unknown query argument(s) {sorted(unknown)}; known: "
                               f"{sorted(QUERY_ARGUMENTS)}")
        if isinstance(query, str):  # db.query("words", ...): the text of the query
            if "text" in arguments:
                raise InvalidInput("give the query text once, positionally or as text=")
            query, arguments = None, {**arguments, "text": query}
        if query is not None and arguments:
            raise InvalidInput("pass a Query or keyword arguments, not both")
        if query is not None and not isinstance(query, Query):
            raise InvalidInput(f"expected a loomdb Query, got {type(query).__name__}")
        built = query if query is not None else query_from_arguments(**arguments)
        check_limit(built.limit, "k", 10_000)
        if isinstance(built.offset, bool) or not isinstance(built.offset, int) \
                or not 0 <= built.offset <= 100_000:
            raise InvalidInput("offset must be an integer from 0 to 100,000")
        return built

    def query(self, query: Query | str | None = None, /,
              **arguments: Unpack[QueryArguments]) -> list[Hit]:
        """Answer a converged query: a ``Query``, its text, or its keywords (``text``, ``vector``,
        ``lexical``, ``where``, ``kind``, ``near``, ``matching``, ``hops``, ``edge_types``,
        ``direction``, ``restrict``, ``k``, ``offset``, ``threshold``, ``user``, ``strategy``,
        ``weights``, ``multi_hop``, ``cache``). Hits carry each retriever's score, the fused
        score (``rrf``), how many retrievers agreed, and a citation for chunks."""
        built = self._as_query(query, arguments)
        return self.engine.run(self.context, built).hits

    def find(self) -> QueryBuilder:
        """A fluent query: ``db.find().similar_to("...").near("x").limit(5).run()``."""
        return QueryBuilder(self)

    def explain(self, query: Query | str | None = None, /, *, execute: bool = True,
                **arguments: Unpack[QueryArguments]) -> Plan:
        """The plan for a query: the chosen strategy and why, its steps with estimated costs,
        the alternatives weighed, and (executed by default) each step's actual time. The
        result cache is bypassed, so the plan shown is the one a cache miss would run."""
        built = replace(self._as_query(query, arguments), use_cache=False)
        return self.engine.run(self.context, built, execute_plan=execute).plan

    def query_stats(self) -> QueryStats:
        """This tenant's query latency per strategy; the result cache's hit rate and latency
        and the planner's learned cost corrections, which are the store's (shared by every
        tenant)."""
        return self.engine.stats(self.tenant_name)

    def evaluate(
        self, golden: Sequence[GoldenQuery],
        strategies: Sequence[str | EvalStrategy] = DEFAULT_STRATEGIES, *, k: int = 10,
        kind: str | None = "chunk", progress: ProgressCallback | None = None,
    ) -> EvalReport:
        """Retrieval quality on a golden set (``loomdb.read_golden``): every query through
        every strategy (``dense``, ``bm25``, ``hybrid``, ``hybrid+graph``...) with the result
        cache off, scored by recall@k, MRR, nDCG@10 and citation accuracy, and timed."""
        def ask(query: Query) -> QueryResult:
            return self.engine.run(self.context, query)

        return evaluate(ask, self.context.store, golden, strategies, k=k, kind=kind,
                        progress=progress)

    # -- reasoning -------------------------------------------------------------------------

    def reason(self, a: NodeRef, b: NodeRef, *, paths: int = 3,
               max_hops: int = 4) -> list[ReasoningPath]:
        """The strongest paths between two entities or concepts, each step with the edge and
        the source passages that support it."""
        return strongest_paths(self.context.store, check_id(a), check_id(b), paths=paths,
                               max_hops=max_hops)

    # -- personalisation -------------------------------------------------------------------

    def user_policy(self, user: str) -> UserPolicy:
        return load_policy(self.context.store, user)

    def set_user_policy(
        self, user: str, *, boosts: dict[str, dict[str, float]] | None = None,
        exclude: dict[str, list[str]] | None = None,
        recency_half_life: float | None = None, recency_weight: float | None = None,
    ) -> UserPolicy:
        """Set a user's boosts (positive) and penalties (negative) by kind, category and
        source, hard exclusions, and recency preference; unspecified parts are kept."""
        policy = set_preferences(load_policy(self.context.store, user), boosts=boosts,
                                 exclude=exclude, recency_half_life=recency_half_life,
                                 recency_weight=recency_weight)
        save_policy(self.context.store, policy)
        return policy

    def feedback(self, user: str, id: NodeRef, event: str) -> UserPolicy:  # noqa: A002
        """Learn from ``event`` (``clicked``, ``useful``, ``not_useful``) on node ``id``."""
        return record_feedback(self.context.store, user, check_id(id), event)

    # -- maintenance -----------------------------------------------------------------------

    def reindex(
        self, space: str | None = None, *, progress: Callable[[int, int], None] | None = None
    ) -> dict[tuple[str, str], int]:
        """Rebuild the vector index of ``space`` (or all) from the stored vectors and save it;
        ``progress(done, total)`` follows each index's build."""
        spaces = [self.space(space)] if space else self.spaces()
        return self.view.rebuild(spaces, progress)  # {} where the database keeps its own

    def warm_up(self, space: str | None = None) -> int:
        """Load the vector indexes of ``space`` (or all) into memory now, so the first queries
        after opening a large store run at full speed. Returns the bytes read from disk.

        Opening is instant because indexes are memory-mapped; without this, pages come in as
        queries touch them, which makes early queries on a cold cache slow."""
        spaces = [self.space(space)] if space else self.spaces()
        return self.view.warm_up(spaces)

    def check(self) -> list[str]:
        """Problems found: backend integrity, and index entries that differ from the tables."""
        return self.backend.check_integrity() + self.view.check(self.spaces())


def _paths(sources: object) -> list[str | PathLike[str]]:
    """``sources`` as a list of paths: one path, or an iterable of them."""
    if isinstance(sources, (str, PathLike)):
        return [sources]
    if isinstance(sources, bytes) or not isinstance(sources, Iterable):
        raise InvalidInput("ingest() takes a path or a list of paths (text= for a text)")
    paths = list(sources)
    if not all(isinstance(p, (str, PathLike)) for p in paths):
        raise InvalidInput("ingest() paths must be strings or path objects")
    return paths
