"""The migrate command: copy a store into another and validate the copy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from loomdb import MigrationReport, validate_migration
from loomdb import migrate as run_migration

from .common import JsonOpt, cell, print_json, stdout

OnProgress = Callable[[str, int, int], None]  # (stage, done, total)

__all__ = ["migrate"]

STAGES = {"copy": "copying", "validate": "validating", "index": "building indexes"}
SpecArg = Annotated[str, typer.Argument(
    help="A store: a SQLite store directory, a legacy JSON directory (json:DIR, or any "
         "directory holding concepts.json) or a postgresql:// URL.")]


def migrate(
    source: SpecArg,
    destination: SpecArg,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Count what would be copied and check the destination; write "
                          "nothing.")] = False,
    batch: Annotated[int, typer.Option(
        "--batch", min=1, help="Rows per destination transaction, each with its "
                               "checkpoint.")] = 1_000,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Write the JSON report (counts, every check) to this file.")] = None,
    no_resume: Annotated[bool, typer.Option(
        "--no-resume", help="Start an interrupted migration over instead of resuming "
                            "it.")] = False,
    validate_only: Annotated[bool, typer.Option(
        "--validate-only", help="Only validate an earlier migration's destination against "
                                "the source.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy a store into another (SQLite, PostgreSQL, legacy JSON) and validate the copy.

    The source is only read. The copy is batched and resumable: run the same command again
    after an interruption. A failure, or a failed check, leaves the destination as it was.
    Exits 1 when a check fails.

    Example: loomdb migrate ./notes-store postgresql://loomdb@localhost/notes --report m.json
    """
    with _progress(not as_json) as on_progress:
        if validate_only:
            result = validate_migration(source, destination, report=report,
                                        progress=on_progress)
        else:
            result = run_migration(source, destination, dry_run=dry_run, batch=batch,
                                   resume=not no_resume, report=report, progress=on_progress)
    if as_json:
        print_json(result.to_dict())
    else:
        _summary(result)
    if not result.ok:
        raise typer.Exit(1)


@contextmanager
def _progress(show: bool) -> Iterator[OnProgress | None]:
    """A bar per stage, made when the stage starts (``None`` when nothing is shown)."""
    if not show:
        yield None
        return
    bars = Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=stdout(), transient=False)
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(STAGES.get(stage, stage), total=total)
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        yield update


def _summary(result: MigrationReport) -> None:
    console = stdout()
    title = {"dry-run": "dry run (nothing written)", "validate": "validation"}.get(
        result.mode, "migration")
    counts = Table(title=escape(f"{title}: {result.source} -> {result.destination}"),
                   title_justify="left")
    for header in ("rows", "in the source", "copied"):
        counts.add_column(header, justify="right" if header != "rows" else "left")
    totals = result.survey.get("totals", {})
    for kind, count in totals.items():
        copied = result.copied.get(kind)
        counts.add_row(kind, f"{count:,}", "—" if copied is None else f"{copied:,}")
    jobs = result.survey.get("jobs", {})
    counts.add_row("jobs waiting", f"{jobs.get('queued', 0) + jobs.get('running', 0):,}",
                   f"{result.jobs_queued:,}" if result.mode == "migrate" else "—")
    console.print(counts)
    if result.checks:
        console.print(_checks_table(result))
    for line in _outcome(result):
        console.print(line)


def _checks_table(result: MigrationReport) -> Table:
    table = Table(title="checks", title_justify="left")
    for header in ("check", "result", "compared", "problems", "first problem"):
        table.add_column(header, justify="right" if header in ("compared", "problems")
                         else "left")
    for check in result.checks:
        table.add_row(check.name, cell("ok", "green") if check.ok else cell("FAILED", "red"),
                      f"{check.compared:,}", f"{check.problems:,}",
                      cell(check.examples[0] if check.examples else ""))
    return table


def _outcome(result: MigrationReport) -> list[str]:
    lines = []
    if result.destination_state:
        lines.append(f"destination: {escape(result.destination_state)}")
    if result.resumed:
        lines.append("resumed an interrupted migration")
    if result.rolled_back:
        lines.append("[red]validation failed: the destination was rolled back[/red]")
    lines.append(f"{'[green]ok[/green]' if result.ok else '[red]failed[/red]'} in "
                 f"{result.seconds:.1f} s")
    return lines
