"""Ingestion commands: ingest, watch, weaver."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loomdb import Database, IngestResult, expand_sources

from .common import JsonOpt, StoreOpt, TenantOpt, cell, open_store, print_json, stdout

__all__ = ["ingest", "watch", "weaver"]

STATUS_STYLES = {"added": "green", "updated": "cyan", "unchanged": "dim", "failed": "red",
                 "deleted": "yellow"}
WaitOpt = Annotated[bool, typer.Option(
    "--wait/--no-wait", help="Run the enrichment (embeddings, entities, summaries) before "
                             "returning, with a progress bar.")]


def _result_dict(result: IngestResult) -> dict[str, object]:
    error = None if result.error is None else result.error.to_dict()
    return {"source": result.source, "status": result.status, "document": result.document,
            "pages": result.pages, "chunks": result.chunks, "added": result.chunks_added,
            "removed": result.chunks_removed, "seconds": round(result.seconds, 3),
            "error": error}


def _summary(results: list[IngestResult]) -> Table:
    table = Table(title="ingested", title_justify="left")
    for header in ("file", "status", "pages", "chunks", "new", "seconds"):
        table.add_column(header, no_wrap=True)
    for r in results:
        table.add_row(cell(Path(r.source).name), cell(r.status, STATUS_STYLES[r.status]),
                      str(r.pages), str(r.chunks), str(r.chunks_added), f"{r.seconds:.2f}")
    return table


def ingest(
    paths: Annotated[list[Path], typer.Argument(
        help="Files or directories (PDF, text, Markdown, HTML).")],
    password: Annotated[str | None, typer.Option(help="Password for encrypted PDFs.")] = None,
    wait: WaitOpt = True,
    store: StoreOpt = None, tenant: TenantOpt = "default", json: JsonOpt = False,
) -> None:
    """Ingest files: extract, chunk, and queue embeddings, entities and summaries.

    Unchanged files are skipped; a file that fails is reported and the rest go on. Exits 1
    if any file failed.

    Example: loomdb ingest ./papers ./notes.md --store ./kb
    """
    files = list(expand_sources(paths))
    with open_store(store, tenant, write=True, create=True) as db:
        with _bar(not json) as progress:
            task = progress.add_task("ingesting", total=len(files))
            results = db.ingest(files, password=password,
                                progress=lambda r: progress.update(task, advance=1))
        if wait:
            _drain(db, show=not json)
    if json:
        print_json([_result_dict(r) for r in results])
    else:
        console = stdout()
        console.print(_summary(results))
        for r in results:
            if r.error is not None:
                console.print(cell(f"{r.source}: [{r.error.code}] {r.error.message}", "red"))
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


def _bar(show: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), disable=not show, transient=False)


def _drain(db: Database, show: bool) -> None:
    """Run the queued enrichment in this process, showing jobs done against jobs queued."""
    start = db.weaver_status()
    total = start.queue_size
    with _bar(show) as progress:
        task = progress.add_task("enriching", total=total)
        while db.weaver.run_once():
            status = db.weaver_status()
            progress.update(task, total=max(total, status.done - start.done
                                            + status.queue_size),
                            completed=status.done - start.done + status.failed - start.failed)


def watch(
    directory: Annotated[Path, typer.Argument(help="The drop folder to watch.")],
    settle: Annotated[float, typer.Option(
        help="Seconds a file must stay unchanged before it is ingested.")] = 1.0,
    max_mb: Annotated[float, typer.Option(help="Refuse files larger than this (MiB).")] = 200.0,
    store: StoreOpt = None, tenant: TenantOpt = "default", json: JsonOpt = False,
) -> None:
    """Watch a folder and ingest each file once it has settled (Ctrl-C stops).

    Regular files only: symlinks and paths leading outside the folder are refused. A file's
    error is printed and watching goes on; a deleted file's document is deleted.

    Example: loomdb watch ./inbox --store ./kb
    """
    console = stdout()

    def report(result: IngestResult) -> None:
        if json:
            print_json(_result_dict(result))
            return
        error = "" if result.error is None else f"  [{result.error.code}] {result.error.message}"
        console.print(cell(f"{result.status:>9}  {result.source}{error}",
                           STATUS_STYLES.get(result.status, "")))

    with open_store(store, tenant, write=True, create=True) as db:
        folder = db.watch(directory, settle=settle, max_bytes=int(max_mb * 2**20),
                          on_result=report)
        folder.start()
        if not json:
            console.print(f"watching {folder.root} (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            folder.stop()


def weaver(
    run: Annotated[bool, typer.Option(
        "--run", help="Run the queued jobs now, in this process, until none is ready.")] = False,
    activity: Annotated[str, typer.Option(
        help="Activity level for --run: high, normal or sleep.")] = "normal",
    store: StoreOpt = None, tenant: TenantOpt = "default", json: JsonOpt = False,
) -> None:
    """Show the enrichment queue (or run it with --run), and the jobs that failed.

    Example: loomdb weaver --run --activity sleep
    """
    with open_store(store, tenant, write=run) as db:
        if run:
            db.set_activity_level(activity)  # type: ignore[arg-type]
            _drain(db, show=not json)
        status = db.weaver_status()
        failed = db.jobs(status="failed", limit=50)
    if json:
        print_json({"status": dataclasses.asdict(status),
                    "failed": [dataclasses.asdict(job) for job in failed]})
        return
    table = Table(title="weaver", title_justify="left")
    for header in ("task", "queued", "running", "done", "failed"):
        table.add_column(header)
    for task, counts in sorted(status.by_task.items()):
        table.add_row(task, *(str(counts[k]) for k in ("queued", "running", "done", "failed")))
    console = stdout()
    console.print(table)
    for job in failed:
        console.print(cell(f"failed {job.task} {job.node_id}: {job.error}", "red"))
