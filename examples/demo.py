"""loomdb in one minute: a small corpus becomes a graph of documents, chunks and entities with
MiniLM vectors, then answers semantic, BM25, filtered and graph queries.

Run it with ``make demo`` (or ``HF_HUB_OFFLINE=1 .venv/bin/python examples/demo.py``); it
rebuilds ``./demo-store`` from ``examples/corpus`` each time.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

import loomdb
from loomdb.ml import MiniLMEmbedder

CORPUS = Path(__file__).resolve().parent / "corpus"
STORE = Path("demo-store")
console = Console()


@dataclass(frozen=True)
class Entity:
    """A hand-declared entity; a chunk mentions it when one of its aliases appears as words."""

    id: str
    name: str
    type: str
    aliases: tuple[str, ...]


ENTITIES = (
    Entity("wilhelm-rontgen", "Wilhelm Röntgen", "person", ("Röntgen",)),
    Entity("henri-becquerel", "Henri Becquerel", "person", ("Becquerel",)),
    Entity("marie-curie", "Marie Curie", "person", ("Marie Curie", "Marie")),
    Entity("pierre-curie", "Pierre Curie", "person", ("Pierre Curie", "Pierre")),
    Entity("j-j-thomson", "J. J. Thomson", "person", ("Thomson",)),
    Entity("ernest-rutherford", "Ernest Rutherford", "person", ("Rutherford",)),
    Entity("niels-bohr", "Niels Bohr", "person", ("Bohr",)),
    Entity("rosalind-franklin", "Rosalind Franklin", "person", ("Franklin",)),
    Entity("james-watson", "James Watson", "person", ("Watson",)),
    Entity("francis-crick", "Francis Crick", "person", ("Crick",)),
    Entity("alexander-fleming", "Alexander Fleming", "person", ("Fleming",)),
    Entity("dorothy-hodgkin", "Dorothy Hodgkin", "person", ("Hodgkin",)),
    Entity("paris", "Paris", "place", ("Paris",)),
    Entity("cambridge", "Cambridge", "place", ("Cambridge",)),
    Entity("manchester", "Manchester", "place", ("Manchester",)),
    Entity("copenhagen", "Copenhagen", "place", ("Copenhagen",)),
    Entity("oxford", "Oxford", "place", ("Oxford",)),
    Entity("sorbonne", "the Sorbonne", "organisation", ("Sorbonne",)),
    Entity("cavendish-laboratory", "Cavendish Laboratory", "organisation", ("Cavendish",)),
    Entity("kings-college-london", "King's College London", "organisation",
           ("King's College London",)),
    Entity("x-rays", "X-rays", "concept", ("X-ray", "X-rays")),
    Entity("nobel-prize", "Nobel Prize", "award", ("Nobel Prize",)),
)

SEMANTIC_QUERIES = (
    "Who found that the atom has a small, dense core?",
    "How was the structure of DNA discovered?",
    "Who noticed a mould killing bacteria?",
)
BM25_QUERY = "Cavendish Laboratory"
BM25_FILTER = {"kind": "chunk", "props.document": "dna"}


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    paragraphs: list[str]


def read_document(path: Path) -> Document:
    """A corpus file: the first line is its title (``# `` optional); blank lines split
    paragraphs."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", path.read_text(encoding="utf-8"))]
    blocks = [" ".join(b.split()) for b in blocks if b]
    return Document(path.stem, blocks[0].lstrip("# ").strip(), blocks[1:])


def chunk_id(document: Document, position: int) -> str:
    return f"{document.id}#{position:02d}"


def add_documents(db: loomdb.Database, documents: list[Document]) -> dict[str, str]:
    """Document and chunk nodes, ``part_of`` and ``next`` edges; returns chunk id -> text."""
    chunks: dict[str, str] = {}
    edges: list[dict[str, str]] = []
    for document in documents:
        body = "\n\n".join(document.paragraphs)
        db.add_node(document.id, kind="document", text=body, source=f"corpus/{document.id}",
                    props={"title": document.title})
        start = 0
        for position, paragraph in enumerate(document.paragraphs):
            cid = chunk_id(document, position)
            db.add_node(cid, kind="chunk", text=paragraph, source=f"corpus/{document.id}",
                        props={"document": document.id, "position": position, "start": start,
                               "end": start + len(paragraph)})
            start += len(paragraph) + 2
            chunks[cid] = paragraph
            edges.append({"src": cid, "dst": document.id, "type": "part_of"})
            if position:
                edges.append({"src": chunk_id(document, position - 1), "dst": cid,
                              "type": "next"})
    db.add_edges(edges)
    return chunks


def add_entities(db: loomdb.Database, chunks: dict[str, str]) -> int:
    """Entity nodes, and a ``mentions`` edge from every chunk that names one of them."""
    db.add_nodes({"id": e.id, "kind": "entity", "text": e.name, "category": e.type}
                 for e in ENTITIES)
    mentions = []
    for entity in ENTITIES:
        pattern = re.compile("|".join(rf"(?<!\w){re.escape(a)}(?!\w)" for a in entity.aliases))
        mentions += [{"src": cid, "dst": entity.id, "type": "mentions"}
                     for cid, text in chunks.items() if pattern.search(text)]
    return db.add_edges(mentions)


def embed_chunks(db: loomdb.Database, chunks: dict[str, str]) -> None:
    """Every chunk's MiniLM vector, computed in one batch and stored in the ``text`` space."""
    embedder = MiniLMEmbedder()
    started = time.perf_counter()
    with console.status("Loading all-MiniLM-L6-v2 (CPU, offline)…"):
        embedder.load()
    loaded = time.perf_counter()
    with console.status(f"Embedding {len(chunks)} chunks…"):
        vectors = embedder.embed(list(chunks.values()))
        db.set_vectors(list(chunks), vectors, space="text", model=embedder.model_id)
    console.print(f"[green]✓[/] model loaded in {loaded - started:.1f} s, "
                  f"{len(chunks)} chunks embedded in {time.perf_counter() - loaded:.1f} s")


def fit(text: str | None, used: int) -> str:
    """``text`` on one line, cut to the terminal width left after ``used`` columns."""
    width = max(24, console.width - used)
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def hits_table(title: str, hits: list[loomdb.Hit]) -> Table:
    id_width = max((len(h.id) for h in hits), default=2)
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column("score", justify="right")
    table.add_column("id", style="cyan", no_wrap=True, min_width=id_width)
    table.add_column("text")
    for hit in hits:
        table.add_row(f"{hit.score:.3f}", hit.id, Text(fit(hit.node.text, id_width + 16)))
    return table


def stats_table(db: loomdb.Database) -> Table:
    stats = db.stats()
    table = Table(title=f"demo-store · seq {stats['seq']}", title_justify="left",
                  title_style="bold")
    table.add_column("")
    table.add_column("by kind / type / space")
    table.add_column("total", justify="right")
    for what in ("nodes", "edges", "vectors"):
        counts: dict[str, int] = stats[what]
        detail = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
        table.add_row(what, detail, str(sum(counts.values())))
    return table


def show_searches(db: loomdb.Database) -> None:
    embedder = MiniLMEmbedder()
    vectors = embedder.embed(list(SEMANTIC_QUERIES))
    for query, vector in zip(SEMANTIC_QUERIES, vectors, strict=True):
        hits = db.vector_search(vector, k=3, kind="chunk", model=embedder.model_id)
        console.print(hits_table(f"semantic: {query}", hits))
    console.print(hits_table(f"BM25: {BM25_QUERY}", db.text_search(BM25_QUERY, k=5)))
    filtered = db.text_search(BM25_QUERY, k=5, where=BM25_FILTER)
    console.print(hits_table(f"BM25: {BM25_QUERY}  where={json.dumps(BM25_FILTER)}", filtered))


def show_graph(db: loomdb.Database) -> None:
    found = db.neighbors("cavendish-laboratory", types=["mentions"], direction="in")
    table = Table(title="chunks that mention the Cavendish Laboratory", title_justify="left",
                  title_style="bold")
    id_width = max((len(n.id) for n, _ in found), default=5)
    table.add_column("chunk", style="cyan", no_wrap=True, min_width=id_width)
    table.add_column("text")
    for node, _edge in found:
        table.add_row(node.id, Text(fit(node.text, id_width + 7)))
    console.print(table)
    show_path(db, "marie-curie", "rosalind-franklin")


def show_path(db: loomdb.Database, start: str, goal: str) -> None:
    path = db.shortest_path(start, goal, direction="both", max_depth=8)
    if path is None:
        console.print(f"no path from {start} to {goal}")
        return
    line = Text(path.nodes[0].id, style="bold cyan")
    for edge, (here, there) in zip(path.edges, pairwise(path.nodes), strict=True):
        arrow = f" -[{edge.type}]-> " if edge.src == here.id else f" <-[{edge.type}]- "
        line.append(arrow, style="green")
        line.append(there.id, style="bold cyan")
    console.print(Text(f"shortest path {start} → {goal} ({len(path)} edges)", style="bold"))
    console.print(line)
    id_width = max(len(n.id) for n in path.nodes)
    for node in path.nodes:
        console.print(Text(f"  {node.id:>{id_width}}  {node.kind:<8} "
                           f"{fit(node.text, id_width + 13)}"))


def main() -> None:
    started = time.perf_counter()
    shutil.rmtree(STORE, ignore_errors=True)
    documents = [read_document(p) for p in sorted(CORPUS.iterdir()) if p.suffix in (".md", ".txt")]
    with loomdb.open(STORE) as db:
        db.create_space("text", MiniLMEmbedder.dim, model=MiniLMEmbedder.model_id,
                        metric="cosine")
        with db.transaction():
            chunks = add_documents(db, documents)
            mentions = add_entities(db, chunks)
        console.print(f"[green]✓[/] {len(documents)} documents, {len(chunks)} chunks, "
                      f"{len(ENTITIES)} entities, {mentions} mentions")
        embed_chunks(db, chunks)
        console.print(stats_table(db))
        show_searches(db)
        show_graph(db)
    console.print(f"[green]✓[/] closed {STORE}/ after {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
