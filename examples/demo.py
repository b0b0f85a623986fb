"""loomdb in one minute: real files (Markdown, HTML and a PDF) become a graph of documents,
chunks and entities with MiniLM vectors, enriched in the background, then answer with
citations; a chat's messages are linked to the same entities.

Run it with ``make demo`` (or ``HF_HUB_OFFLINE=1 .venv/bin/python examples/demo.py``); it
rebuilds ``./demo-store`` from ``examples/corpus`` each time. No API key, no network.
"""

from __future__ import annotations

import shutil
import time
from itertools import pairwise
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

import loomdb

CORPUS = Path(__file__).resolve().parent / "corpus"
STORE = Path("demo-store")
QUESTIONS = (
    "Who found that the atom has a small, dense core?",
    "Where was penicillin first mass-produced?",
    "Who was the first patient treated with insulin?",
)
console = Console()


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


def ingest(db: loomdb.Database) -> None:
    files = sorted(p for p in CORPUS.iterdir() if p.suffix in (".md", ".html", ".pdf"))
    with progress_bar() as bar:
        task = bar.add_task("ingesting", total=len(files))
        results = db.ingest(files, strict=True, progress=lambda r: bar.advance(task))
    table = Table(title="ingested", title_justify="left", title_style="bold")
    for header in ("file", "parser", "pages", "chunks", "seconds"):
        table.add_column(header)
    for result in results:
        parser = db.get_node(result.document or "").props["parser"]
        table.add_row(Path(result.source).name, parser, str(result.pages), str(result.chunks),
                      f"{result.seconds:.2f}")
    console.print(table)


def enrich(db: loomdb.Database) -> None:
    """Run the queued enrichment (embeddings, entities, co-occurrence, summaries) with a bar;
    a long-running application leaves this to the background weaver instead."""
    start = db.weaver_status()
    with progress_bar() as bar:
        task = bar.add_task("enriching", total=start.queue_size)
        while db.weaver.run_once():
            now = db.weaver_status()
            bar.update(task, completed=now.done - start.done,
                       total=now.done - start.done + now.queue_size)
    status = db.weaver_status()
    done = ", ".join(f"{task} {counts['done']}" for task, counts in sorted(status.by_task.items()))
    console.print(f"[green]✓[/] enrichment done: {done}; {status.failed} failed")


def stats_table(db: loomdb.Database) -> Table:
    stats = db.stats()
    table = Table(title=f"{STORE} · seq {stats['seq']}", title_justify="left",
                  title_style="bold")
    table.add_column("")
    table.add_column("by kind / type / space")
    table.add_column("total", justify="right")
    for what in ("nodes", "edges", "vectors"):
        counts: dict[str, int] = stats[what]
        detail = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
        table.add_row(what, detail, str(sum(counts.values())))
    return table


def fit(text: str | None, used: int) -> str:
    """``text`` on one line, cut to the terminal width left after ``used`` columns."""
    width = max(24, console.width - used)
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def cited_answers(db: loomdb.Database) -> None:
    """The best passage for each question, with where it comes from: file, page, span."""
    vectors = db.weaver.provider.embed(list(QUESTIONS))
    table = Table(title="cited answers (semantic search over chunks)", title_justify="left",
                  title_style="bold")
    for header in ("question", "source", "page", "span", "passage"):
        table.add_column(header, no_wrap=header != "passage")
    for question, vector in zip(QUESTIONS, vectors, strict=True):
        hit = db.vector_search(vector, k=1, kind="chunk")[0]
        cite = hit.citation
        assert cite is not None
        source = Path(db.get_node(cite.document).source or "").name
        table.add_row(fit(question, console.width - 40), source, str(cite.page),
                      f"{cite.start}–{cite.end}", Text(fit(hit.node.text, 110)))
    console.print(table)


def entity_graph(db: loomdb.Database) -> None:
    """The entities the weaver found, and who appears beside Marie Curie."""
    entities = db.list_nodes(kind="entity", limit=1000)
    mentioned = sorted(((len(db.get_edges(dst=e.id, types=["mentions"])), e) for e in entities),
                       key=lambda pair: (-pair[0], pair[1].text or ""))
    top = ", ".join(f"{e.text} ({e.category}, {n})" for n, e in mentioned[:10])
    console.print(Text(f"most mentioned entities: {top}"))
    curie = next((e for _, e in mentioned if e.text == "Marie Curie"), None)
    if curie is not None:
        near = db.neighbors(curie.id, types=["co_occurs"], direction="both", limit=6)
        names = ", ".join(f"{n.text} ({e.weight:.0f})" for n, e in near)
        console.print(Text(f"co-occurs with Marie Curie: {names}"))
        show_path(db, curie.id, "Alexander Fleming")


def show_path(db: loomdb.Database, start: str, goal_name: str) -> None:
    goal = next((e for e in db.list_nodes(kind="entity", limit=1000) if e.text == goal_name),
                None)
    path = None if goal is None else db.shortest_path(start, goal.id, direction="both",
                                                       max_depth=8)
    if path is None:
        return
    line = Text(path.nodes[0].text or "", style="bold cyan")
    for edge, (here, there) in zip(path.edges, pairwise(path.nodes), strict=True):
        arrow = f" -[{edge.type}]-> " if edge.src == here.id else f" <-[{edge.type}]- "
        line.append(arrow, style="green")
        line.append(fit(there.text, console.width - 20) if there.kind != "entity"
                    else there.text or "", style="bold cyan")
    console.print(Text(f"how Marie Curie connects to {goal_name}:", style="bold"))
    console.print(line)


def chat(db: loomdb.Database) -> None:
    """Messages join the same graph; a repeated message reinforces the first."""
    room = db.create_chat("History of science club", topic="science")
    first = db.add_message(room.id, "ada", "Marie Curie won two Nobel Prizes, in Paris.")
    db.add_message(room.id, "ben", "And Fleming found penicillin in London in 1928.",
                   reply_to=first.id)
    repeat = db.add_message(room.id, "cy", "Marie Curie won two Nobel Prizes, in Paris!")
    db.wait_for_enrichment(120)
    names = ", ".join(f"{e.text} ({e.props['label']})" for e in db.entities_mentioned_in(first.id))
    console.print(Text(f"chat message entities: {names}"))
    gated = db.get_node(repeat.id).props
    console.print(Text(f"repeated message: novelty {gated['novelty']:.3f}, reinforces "
                       f"{gated.get('duplicate_of')} (strength now "
                       f"{db.get_node(first.id).strength:.0f})"))
    console.print(Text(f"chat summary: {db.get_node(room.id).props.get('summary')}"))


def main() -> None:
    started = time.perf_counter()
    shutil.rmtree(STORE, ignore_errors=True)
    with loomdb.open(STORE, weaver=False) as db:
        with console.status("Loading the local models (MiniLM, spaCy; CPU, offline)…"):
            db.weaver.provider.embed(["warm up"])
        ingest(db)
        enrich(db)
        console.print(stats_table(db))
        cited_answers(db)
        hits = db.text_search("Cavendish Laboratory", k=3, kind="chunk")
        cites = [h.citation for h in hits if h.citation is not None]
        console.print(Text("BM25 'Cavendish Laboratory': "
                           + "; ".join(f"{c.document} p.{c.page}" for c in cites)))
        entity_graph(db)
        chat(db)
    console.print(f"[green]✓[/] closed {STORE}/ after {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
