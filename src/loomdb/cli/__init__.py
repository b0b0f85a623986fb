"""The ``loomdb`` command line: a thin layer over the ``Database`` API (typer + rich).

One module per command group; this module builds the app and lists every command once::

    store.py        init, stats, reindex, check
    nodes.py        add, link, get
    search.py       search
    query.py        query (converged, with --explain)
    graph.py        neighbors, path
    interchange.py  import, export
    migrate.py      migrate
    ingest.py       ingest, watch, weaver
    eval.py         eval

A ``LoomError`` becomes one red ``error [code]: message`` line on stderr and exit code 1;
usage errors exit with 2, as click does.
"""

from __future__ import annotations

import typer

from . import eval as evaluation
from . import graph, ingest, interchange, migrate, nodes, query, search, store
from .common import LoomGroup

__all__ = ["app", "main"]

COMMANDS = (
    ("init", store.init),
    ("stats", store.stats),
    ("add", nodes.add),
    ("link", nodes.link),
    ("get", nodes.get),
    ("search", search.search),
    ("query", query.query),
    ("neighbors", graph.neighbors),
    ("path", graph.path),
    ("import", interchange.import_),
    ("export", interchange.export),
    ("migrate", migrate.migrate),
    ("reindex", store.reindex),
    ("check", store.check),
    ("ingest", ingest.ingest),
    ("watch", ingest.watch),
    ("weaver", ingest.weaver),
    ("eval", evaluation.eval_),
)

app = typer.Typer(
    cls=LoomGroup,
    name="loomdb",
    help="loomdb: an embedded hybrid graph + vector database.\n\n"
         "Example: loomdb init ./notes-store && loomdb --help",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for _name, _function in COMMANDS:
    app.command(_name)(_function)


def main() -> None:
    """Entry point of the ``loomdb`` console script."""
    app()
