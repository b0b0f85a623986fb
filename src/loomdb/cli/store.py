"""Store commands: init, stats, reindex, check."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Table
from rich.text import Text

from loomdb import CorruptStore, MiniLMEmbedder, default_store_path

from .common import (
    JsonOpt,
    StoreOpt,
    TenantOpt,
    cell,
    open_store,
    print_json,
    stdout,
    store_path,
)

__all__ = ["check", "init", "reindex", "stats"]


class MetricChoice(StrEnum):
    cosine = "cosine"
    ip = "ip"
    l2 = "l2"


class QuantizationChoice(StrEnum):
    f32 = "f32"
    f16 = "f16"
    i8 = "i8"
    b1 = "b1"


def init(
    path: Annotated[str | None, typer.Argument(
        show_default=False, help="Store directory or postgresql:// URL to create (default: "
                                 "--store).")] = None,
    space: Annotated[str, typer.Option(help="Vector space to create.")] = "text",
    dim: Annotated[int, typer.Option(help="Dimension of the space's vectors.")] = 384,
    model: Annotated[str, typer.Option(help="Model id of the space's vectors.")] = (
        MiniLMEmbedder.model_id),
    metric: Annotated[MetricChoice, typer.Option(help="Similarity metric.")] = (
        MetricChoice.cosine),
    quantization: Annotated[QuantizationChoice, typer.Option(
        help="Index quantization (stored vectors stay exact).")] = QuantizationChoice.f32,
    no_space: Annotated[bool, typer.Option(
        "--no-space", help="Create the store without a vector space.")] = False,
    store: StoreOpt = None,
) -> None:
    """Create a store (or open an existing one) with a vector space for MiniLM vectors.

    Store-wide: vector spaces are shared by all tenants.

    Example: loomdb init ./notes-store --space text --dim 384 --quantization f16
    """
    if path is not None and store is not None and store_path(path, create=True) != store_path(
            store, create=True):
        raise typer.BadParameter("give the store directory once: PATH or --store")
    target = path or store or default_store_path()
    with open_store(target, "default", write=True, create=True) as db:
        if no_space:
            stdout().print(f"Store ready at [bold]{escape(str(target))}[/]")
            return
        created = db.create_space(space, dim, model=model, metric=metric.value,
                                  quantization=quantization.value)
    stdout().print(
        f"Store ready at [bold]{escape(str(target))}[/] with space [cyan]{created.name}[/] "
        f"({created.dim}-d, {created.model}, {created.metric}, {created.quantization})"
    )


def stats(store: StoreOpt = None, tenant: TenantOpt = "default", as_json: JsonOpt = False) -> None:
    """Count the tenant's nodes by kind, edges by type and vectors by space.

    Example: loomdb stats --store ./notes-store --json
    """
    with open_store(store, tenant) as db:
        counts = db.stats()
        spaces = db.spaces()
    if as_json:
        print_json({**counts, "spaces": [dataclasses.asdict(s) for s in spaces]})
        return
    table = Table(title=f"tenant {counts['tenant']} · seq {counts['seq']}", title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("name", style="cyan")
    table.add_column("count", justify="right")
    for what in ("nodes", "edges", "vectors"):
        group: dict[str, int] = counts[what]
        for row, (name, count) in enumerate(sorted(group.items())):
            table.add_row("" if row else what, cell(name), f"{count:,}")
        table.add_row("" if group else what, "[dim]total[/]", f"[bold]{sum(group.values()):,}[/]",
                      end_section=True)
    console = stdout()
    console.print(table)
    for space in spaces:
        console.print(f"space [cyan]{space.name}[/]: {space.dim}-d, {space.model}, "
                      f"{space.metric}, index {space.quantization}, stored {space.storage}")


def reindex(
    space: Annotated[str | None, typer.Option(
        show_default=False, help="Only this vector space (default: all).")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild the vector indexes (of every tenant) from the stored vectors and save them.

    Example: loomdb reindex --space text
    """
    with open_store(store, "default", write=True) as db, Progress(
        *Progress.get_default_columns(), MofNCompleteColumn(), console=stdout(),
        transient=True, disable=as_json,
    ) as bar:
        task = bar.add_task("rebuilding vector indexes", total=None)
        sizes = db.reindex(space, progress=lambda done, total: bar.update(
            task, completed=done, total=total))
    if as_json:
        print_json([{"space": s, "tenant": t, "vectors": n} for (s, t), n in sizes.items()])
        return
    table = Table(title="rebuilt indexes", title_justify="left")
    for column in ("space", "tenant", "vectors"):
        table.add_column(column, justify="right" if column == "vectors" else "left")
    for (name, owner), size in sorted(sizes.items()):
        table.add_row(cell(name), cell(owner), f"{size:,}")
    stdout().print(table)


def check(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Check the whole store's integrity and that every tenant's vector indexes match the
    stored vectors.

    Exits with status 1 (error code corrupt_store) when a problem is found.

    Example: loomdb check --store ./notes-store
    """
    with open_store(store, "default") as db:
        problems = db.check()
    report: dict[str, object] = {"ok": not problems, "problems": problems}
    if as_json:
        print_json(report)
    elif not problems:
        stdout().print("[green]ok[/]: no problems found")
    else:
        for problem in problems:
            stdout().print(Text.assemble(("- ", "red"), problem))
    if problems:
        raise CorruptStore(f"{len(problems)} problem(s) found")

