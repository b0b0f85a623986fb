"""Interchange commands: import and export the legacy JSON format."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

import loomdb

from .common import JsonOpt, StoreOpt, TenantOpt, cell, open_store, print_json, stdout

__all__ = ["export", "import_"]

def import_(
    directory: Annotated[Path, typer.Argument(
        metavar="DIR", help="Folder holding the legacy JSON files.")],
    store: StoreOpt = None,
    tenant: TenantOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Import nodes, edges and vectors from a legacy JSON export folder.

    Example: loomdb import ./legacy-export --store ./notes-store
    """
    with open_store(store, tenant, write=True) as db:
        counts = loomdb.import_legacy(db, directory)
    _report(f"imported from {escape(str(directory))}", counts, as_json)


def export(
    directory: Annotated[Path, typer.Argument(
        metavar="DIR", help="Folder to write the legacy JSON files to.")],
    store: StoreOpt = None,
    tenant: TenantOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Export the tenant's nodes, edges and vectors as legacy JSON files.

    Example: loomdb export ./backup --store ./notes-store
    """
    with open_store(store, tenant) as db:
        counts = loomdb.export_legacy(db, directory)
    _report(f"exported to {escape(str(directory))}", counts, as_json)


def _report(title: str, counts: Mapping[str, object], as_json: bool) -> None:
    if as_json:
        print_json(counts)
        return
    table = Table(title=title, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for what, count in counts.items():
        table.add_row(cell(what), cell(f"{count:,}" if isinstance(count, int) else count))
    stdout().print(table)
