"""The ingestion pipeline: a file or a text becomes a document node, chunk nodes with their
``part_of`` and ``next`` edges, and the enrichment jobs that embed them and link their
entities, all in one transaction.

Idempotent by content: a file whose bytes did not change is skipped before it is parsed. A
changed file keeps the chunks whose text it still contains (their ids are content-addressed,
so their vectors and entity links stay), removes the ones it lost, and adds the new ones;
nothing else is rebuilt. Deleting a document removes its chunks, and the entities that only
its chunks mentioned.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from ..context import Context
from ..errors import LoomError, NotFound
from ..ml.bridge import Embedder, Matrix, MLProvider
from ..model import Edge, JSONObject, Node, prop_int
from ..storage.base import JobSpec
from ..store import Store
from ..weaver.activity import COOCCUR, EMBED, SUMMARIZE
from ..weaver.linking import mentioned_entities, remove_orphan_entities
from .chunking import Chunk, ChunkSettings, chunk_pages
from .extract import ExtractedDocument, ExtractLimits, extract, extract_text
from .extract.source import file_hash

__all__ = [
    "SUPPORTED_SUFFIXES",
    "IngestResult",
    "delete_document",
    "document_id_for",
    "ingest_sources",
]

SUPPORTED_SUFFIXES = frozenset({".pdf", ".txt", ".text", ".log", ".md", ".markdown", ".html",
                                ".htm"})
PART_OF, NEXT = "part_of", "next"


@dataclass(frozen=True)
class IngestResult:
    """What happened to one source: ``added``, ``updated``, ``unchanged`` or ``failed``
    (then ``error`` holds the ``LoomError``). ``stages`` is seconds per stage."""

    source: str
    status: str
    document: str | None = None
    pages: int = 0
    chunks: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    error: LoomError | None = None
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.stages.values())


class _TokenCounter:
    """An Embedder view of a provider that has no tokenizer of its own (a remote one):
    tokens are estimated from words, which is all chunk sizing needs."""

    def __init__(self, provider: MLProvider) -> None:
        self.provider, self.model_id, self.dim = provider, provider.model_id, provider.dim

    def embed(self, texts: Sequence[str]) -> Matrix:
        return self.provider.embed(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [int(len(t.split()) * 1.3) + 1 for t in texts]


def embedder_of(provider: MLProvider) -> Embedder:
    inner = getattr(provider, "embedder", None)
    return inner if isinstance(inner, Embedder) else _TokenCounter(provider)


def document_id_for(path: Path) -> str:
    """A readable, stable id for a file: its name plus a hash of its absolute path."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    return f"doc:{path.name[:80]}:{digest}"


def expand_sources(sources: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Files to ingest: each file given, and the supported files under each directory."""
    for source in sources:
        path = Path(source)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*")
                              if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        else:
            yield path


@dataclass
class _Ingestion:
    """One ingestion call: where it writes, what it embeds with, and its settings."""

    store: Store
    provider: MLProvider
    chunking: ChunkSettings
    limits: ExtractLimits | None
    password: str | None


def ingest_sources(
    ctx: Context, sources: Iterable[str | os.PathLike[str]], *,
    chunking: ChunkSettings | None = None, limits: ExtractLimits | None = None,
    password: str | None = None, strict: bool = False,
    progress: Callable[[IngestResult], None] | None = None,
) -> list[IngestResult]:
    """Ingest files and directories; each file's failure is reported in its result (or
    raised at once with ``strict``), never fatal to the others."""
    run = _Ingestion(ctx.store, ctx.provider, chunking or ChunkSettings(), limits, password)
    results = []
    for path in expand_sources(sources):
        result = _ingest_file(run, path)
        if strict and result.error is not None:
            raise result.error
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def ingest_text(
    ctx: Context, text: str, *, title: str | None = None,
    document_id: str | None = None, media_type: str = "text/plain",
    chunking: ChunkSettings | None = None, props: JSONObject | None = None,
    limits: ExtractLimits | None = None,
) -> IngestResult:
    """Ingest a text given directly; its id is its content hash unless ``document_id``.
    ``LimitExceeded`` for a text over ``limits.max_chars``, before any work is done."""
    run = _Ingestion(ctx.store, ctx.provider, chunking or ChunkSettings(), limits, None)
    started = time.perf_counter()
    document = extract_text(text, media_type=media_type, title=title, limits=limits)
    stages = {"extract": time.perf_counter() - started}
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    doc_id = document_id or f"doc:text:{digest[:16]}"
    return _store(run, doc_id, "<text>", digest, document, stages, props or {})


def _ingest_file(run: _Ingestion, path: Path) -> IngestResult:
    stages: dict[str, float] = {}
    try:
        started = time.perf_counter()
        digest = file_hash(str(path), run.limits or ExtractLimits())
        doc_id = document_id_for(path)
        existing = run.store.get_nodes([doc_id]).get(doc_id)
        if existing is not None and existing.props.get("content_hash") == digest:
            return IngestResult(str(path), "unchanged", doc_id,
                                prop_int(existing.props, "pages") or 0,
                                prop_int(existing.props, "chunks") or 0,
                                stages={"hash": time.perf_counter() - started})
        document = extract(path, password=run.password, limits=run.limits)
        stages["extract"] = time.perf_counter() - started
        return _store(run, doc_id, str(path), digest, document, stages, {})
    except LoomError as exc:
        return IngestResult(str(path), "failed", error=exc, stages=stages)


def _store(run: _Ingestion, doc_id: str, source: str, digest: str, document: ExtractedDocument,
           stages: dict[str, float], extra: JSONObject) -> IngestResult:
    started = time.perf_counter()
    chunks = chunk_pages(document.pages, embedder_of(run.provider), run.chunking)
    stages["chunk"] = time.perf_counter() - started
    started = time.perf_counter()
    store = run.store
    with store.transaction():
        existed = store.has_node(doc_id)
        store.upsert_nodes([_document_node(doc_id, source, digest, document, len(chunks), extra)])
        added, removed = _replace_chunks(store, doc_id, source, chunks)
        store.backend.enqueue_jobs(store.tenant_name, [JobSpec(EMBED, c) for c in added]
                                   + [JobSpec(SUMMARIZE, doc_id)])
    stages["write"] = time.perf_counter() - started
    return IngestResult(source, "updated" if existed else "added", doc_id, len(document.pages),
                        len(chunks), len(added), removed, stages=stages)


def _document_node(doc_id: str, source: str, digest: str, document: ExtractedDocument,
                   chunks: int, extra: JSONObject) -> Node:
    props: JSONObject = {
        **extra, "title": document.title, "content_hash": digest,
        "media_type": document.media_type, "parser": document.parser,
        "pages": len(document.pages), "chunks": chunks, "chars": len(document.text),
        "warnings": [*document.warnings[:50]]}
    return Node(doc_id, kind="document", text=document.title or Path(source).name,
                source=source, category=document.media_type, props=props)


def _chunk_ids(doc_id: str, chunks: Sequence[Chunk]) -> list[str]:
    """Content-addressed: the same passage keeps its id (and vector) across versions."""
    ids, seen = [], dict[str, int]()
    for chunk in chunks:
        digest = hashlib.sha1(chunk.text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        seen[digest] = seen.get(digest, 0) + 1
        ids.append(f"{doc_id}#{digest}" + (f"-{seen[digest]}" if seen[digest] > 1 else ""))
    return ids


def _replace_chunks(store: Store, doc_id: str, source: str,
                    chunks: Sequence[Chunk]) -> tuple[list[str], int]:
    ids = _chunk_ids(doc_id, chunks)
    old = chunk_ids_of(store, doc_id)
    gone = [c for c in old if c not in set(ids)]
    _delete_chunks(store, gone)
    store.backend.delete_edges(store.tenant_name, [(a, b, NEXT) for a, b in _chain(ids_in_order(
        store, old))])
    store.upsert_nodes([
        Node(cid, kind="chunk", text=c.text, source=source, props={
            "document": doc_id, "page": c.page, "start": c.start, "end": c.end,
            "doc_start": c.doc_start, "doc_end": c.doc_end, "position": c.index,
            "tokens": c.tokens})
        for cid, c in zip(ids, chunks, strict=True)])
    store.add_edges([Edge(cid, doc_id, PART_OF) for cid in ids]
                    + [Edge(a, b, NEXT) for a, b in _chain(ids)], on_conflict="ignore")
    return [cid for cid in ids if cid not in set(old)], len(gone)


def _chain(ids: Sequence[str]) -> list[tuple[str, str]]:
    return list(pairwise(ids))


def chunk_ids_of(store: Store, doc_id: str) -> list[str]:
    return [e.src for e in store.backend.get_edges(store.tenant_name, None, doc_id, [PART_OF],
                                                   1_000_000, 0)]


def ids_in_order(store: Store, ids: Sequence[str]) -> list[str]:
    nodes = store.get_nodes(ids)
    return sorted(nodes, key=lambda i: prop_int(nodes[i].props, "position") or 0)


def _delete_chunks(store: Store, ids: Sequence[str]) -> None:
    """Delete chunks; entities only they mentioned go too, the rest get their co-occurrence
    recomputed by the weaver."""
    if not ids:
        return
    touched = {e for cid in ids for e in mentioned_entities(store, cid)}
    store.delete_nodes(ids)
    survivors = touched - set(remove_orphan_entities(store, touched))
    store.backend.enqueue_jobs(store.tenant_name, [JobSpec(COOCCUR, e) for e in sorted(survivors)])


def delete_document(store: Store, doc_id: str) -> int:
    """Delete a document, its chunks and what only they supported; returns chunks deleted.
    ``NotFound`` if there is no such document."""
    node = store.get_nodes([doc_id]).get(doc_id)
    if node is None or node.kind != "document":
        raise NotFound(f"no document {doc_id!r} in tenant {store.tenant_name!r}")
    with store.transaction():
        chunks = chunk_ids_of(store, doc_id)
        _delete_chunks(store, chunks)
        store.delete_nodes([doc_id])
    return len(chunks)
