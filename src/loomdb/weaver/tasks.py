"""The enrichment tasks the weaver runs, one function per task.

Each task runs in two phases so the writer lock is never held while a model works:
``prepare(ctx, jobs)`` reads and calls the models outside any transaction, and returns an
``apply()`` that the worker runs inside one transaction together with completing the jobs.
``apply()`` returns follow-up jobs, which commit in that same transaction: ``embed`` queues
``entities``, and ``entities`` queues ``cooccur`` for each entity it touched.

Every task is idempotent: it recomputes its result from the current store, so a job that is
replayed after a crash, or that finds its node deleted, does no harm.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from ..context import Context
from ..ml.bridge import Matrix
from ..model import Edge, Node, prop_int, prop_number
from ..storage.base import Job, JobSpec
from ..store import Store
from .activity import CONSOLIDATE, COOCCUR, EMBED, ENTITIES, SUMMARIZE
from .linking import recompute_cooccurrence, remove_orphan_entities, replace_mentions
from .novelty import Novelty, measure_novelty

__all__ = ["TASKS"]

Apply = Callable[[], list[JobSpec]]
NO_ENTITIES = frozenset({"entity", "document", "chat"})  # kinds whose text is not a passage


def _live(ctx: Context, jobs: Sequence[Job]) -> list[Node]:
    nodes = ctx.store.get_nodes([job.node_id for job in jobs])
    return [nodes[j.node_id] for j in jobs if j.node_id in nodes and nodes[j.node_id].text]


# -- embed ---------------------------------------------------------------------------------

def prepare_embed(ctx: Context, jobs: Sequence[Job]) -> Apply:
    nodes = _live(ctx, jobs)
    space = ctx.embedding_space()
    vectors = ctx.provider.embed([n.text or "" for n in nodes]) if nodes else None
    novelty = _gate(ctx, nodes, vectors) if vectors is not None else {}

    def apply() -> list[JobSpec]:
        if vectors is None:
            return []
        keep = [i for i, n in enumerate(nodes) if not _repeat(novelty.get(n.id))]
        if keep:
            ctx.store.set_vectors([nodes[i].id for i in keep], vectors[keep], space=space.name)
        for node in nodes:
            if node.id in novelty:
                _record_novelty(ctx.store, node, novelty[node.id])
        return [JobSpec(ENTITIES, nodes[i].id) for i in keep
                if nodes[i].kind not in NO_ENTITIES]

    return apply


def _repeat(novelty: Novelty | None) -> bool:
    return novelty is not None and novelty.repeat


def _gate(ctx: Context, nodes: list[Node], vectors: Matrix) -> dict[str, Novelty]:
    """Novelty of each gated node against the store and against the batch before it."""
    settings, found = ctx.enrichment, {}
    kept: list[tuple[str, str, Matrix]] = []  # (id, kind, vector) of earlier novel nodes
    for node, vector in zip(nodes, vectors, strict=True):
        if node.kind not in settings.gated_kinds or "novelty" in node.props:
            continue
        best = measure_novelty(ctx.store, vector, settings.gated_kinds,
                               settings.novelty_threshold, settings.space, exclude=node.id)
        for other, _kind, other_vector in kept:
            similarity = float(np.dot(vector, other_vector))
            if best.similarity is None or similarity > best.similarity:
                best = Novelty(round(1.0 - max(similarity, 0.0), 6), other, similarity,
                               similarity >= settings.novelty_threshold)
        found[node.id] = best
        if not best.repeat:
            kept.append((node.id, node.kind, vector))
    return found


def _record_novelty(store: Store, node: Node, novelty: Novelty) -> None:
    props = {**node.props, "novelty": novelty.score}
    if novelty.repeat and novelty.nearest is not None and store.has_node(novelty.nearest):
        props["duplicate_of"] = novelty.nearest
        store.add_edges([Edge(node.id, novelty.nearest, "reinforces",
                              weight=novelty.similarity or 1.0)], on_conflict="replace")
        _reinforce(store, novelty.nearest)
    store.update_node(node.id, props=props)


def _reinforce(store: Store, node_id: str) -> None:
    node, now = store.get_node(node_id), time.time()
    strength = (node.strength or 1.0) + 1.0
    store.update_node(node_id, strength=strength, access_count=node.access_count + 1,
                      last_accessed=now, props={**node.props, "peak_strength": strength})


# -- entities and co-occurrence -----------------------------------------------------------

def prepare_entities(ctx: Context, jobs: Sequence[Job]) -> Apply:
    nodes = [n for n in _live(ctx, jobs) if "duplicate_of" not in n.props]
    found = ctx.provider.extract_entities_many([n.text or "" for n in nodes])

    def apply() -> list[JobSpec]:
        touched: set[str] = set()
        for node, entities in zip(nodes, found, strict=True):
            if ctx.store.has_node(node.id):  # deleted while the model ran
                touched |= replace_mentions(ctx.store, node.id, entities)
        return [JobSpec(COOCCUR, entity) for entity in sorted(touched)]

    return apply


def prepare_cooccur(ctx: Context, jobs: Sequence[Job]) -> Apply:
    entities = [job.node_id for job in jobs]

    def apply() -> list[JobSpec]:
        alive = set(ctx.store.get_nodes(entities))
        gone = set(remove_orphan_entities(ctx.store, [e for e in entities if e in alive]))
        for entity in entities:
            if entity in alive and entity not in gone:
                recompute_cooccurrence(ctx.store, entity)
        return []

    return apply


# -- summaries -----------------------------------------------------------------------------

def prepare_summarize(ctx: Context, jobs: Sequence[Job]) -> Apply:
    """Documents are summarised from their chunks' sentences; chats from their messages,
    ranked by the vectors the messages already have (nothing is embedded again, so keeping a
    busy chat's summary current stays cheap)."""
    nodes = ctx.store.get_nodes([job.node_id for job in jobs])
    summaries: dict[str, str] = {}
    for node in nodes.values():
        parts = _parts_in_order(ctx.store, node)
        if not parts:
            continue
        texts = [p.text or "" for p in parts]
        if node.kind == "chat":
            stored = ctx.store.get_vectors([p.id for p in parts], space=ctx.enrichment.space)
            embedded = [i for i, p in enumerate(parts) if p.id in stored]
            if embedded:
                vectors = np.stack([stored[parts[i].id] for i in embedded]).astype(np.float32)
                summaries[node.id] = ctx.provider.summarize_embedded(
                    [texts[i] for i in embedded], vectors, ctx.enrichment.summary_words)
                continue
        summaries[node.id] = ctx.provider.summarize(texts, ctx.enrichment.summary_words)

    def apply() -> list[JobSpec]:
        current = ctx.store.get_nodes(list(summaries))
        for node_id, summary in summaries.items():
            if node_id in current:
                node = current[node_id]
                ctx.store.update_node(node_id, text=summary,
                                      props={**node.props, "summary": summary,
                                             "summarized_at": time.time()})
        return []

    return apply


def _parts_in_order(store: Store, node: Node) -> list[Node]:
    """The chunks of a document, or the messages of a chat, in order (repeats left out)."""
    if node.kind not in ("document", "chat"):
        return []
    edges = store.backend.get_edges(store.tenant_name, None, node.id, ["part_of"], 100_000, 0)
    parts = store.get_nodes([e.src for e in edges])
    ordered = sorted(parts.values(), key=lambda n: prop_int(n.props, "position") or 0)
    return [n for n in ordered if n.text and "duplicate_of" not in n.props]


# -- consolidation -------------------------------------------------------------------------

def prepare_consolidate(ctx: Context, jobs: Sequence[Job]) -> Apply:
    """Let unmet memories fade: extra strength above 1 halves every ``half_life`` seconds
    since the node was last met. Computed from the strength at that meeting
    (``props.peak_strength``), so running it twice changes nothing more."""
    now, half_life = time.time(), ctx.enrichment.half_life
    nodes = ctx.store.list_nodes(where={"strength": {"$gt": 1.0}}, limit=100_000)

    def apply() -> list[JobSpec]:
        for node in nodes:
            peak = prop_number(node.props, "peak_strength") or node.strength or 1.0
            met = node.last_accessed or node.updated or now
            strength = 1.0 + (peak - 1.0) * 0.5 ** (max(now - met, 0.0) / half_life)
            if abs(strength - (node.strength or 1.0)) > 1e-9:
                ctx.store.update_node(node.id, strength=strength,
                                      props={**node.props, "peak_strength": peak})
        return []

    return apply


TASKS: dict[str, Callable[[Context, Sequence[Job]], Apply]] = {
    EMBED: prepare_embed,
    ENTITIES: prepare_entities,
    COOCCUR: prepare_cooccur,
    SUMMARIZE: prepare_summarize,
    CONSOLIDATE: prepare_consolidate,
}
