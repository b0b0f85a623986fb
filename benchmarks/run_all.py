"""Run the loomdb benchmarks and write docs/benchmarks.md.

Each module in BENCHMARK_MODULES (a file beside this one) exposes ``run(cfg) -> list[Section]``.
Results of each module are also stored under benchmarks/.work/results, so ``--only`` re-measures
one module and still renders the others from their last run.

Examples:
    python benchmarks/run_all.py                     # all, full sizes -> docs/benchmarks.md
    python benchmarks/run_all.py --quick             # smoke test -> .work/benchmarks-quick.md
    python benchmarks/run_all.py --only bench_peers  # re-measure one module, re-render page
    python benchmarks/run_all.py --render-only       # no measuring: page from stored results
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from common import (
    REPO_ROOT,
    WORK_DIR,
    BenchConfig,
    Row,
    Section,
    load_average,
    machine_info,
    markdown_machine,
    markdown_section,
)

BENCHMARK_MODULES = (
    "bench_core",
    "bench_search",  # after bench_core: searches the stores it built
    "bench_graph",
    "bench_embed",
    "bench_legacy",
    "bench_peers",
    "bench_graph_peers",
    "bench_extract",
    "bench_ingest",
    "bench_cache",
    "bench_query",
    "bench_eval",
    "bench_postgres",
    "bench_targets",  # last: reads the results of the others
)
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "benchmarks.md"
QUICK_OUTPUT = WORK_DIR / "benchmarks-quick.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: --only NAME (repeatable), --quick, --render-only, --output PATH."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        choices=BENCHMARK_MODULES,
        help="run only this module (repeatable); others are rendered from their last stored run",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, to check the pipeline end to end",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing; render the page from every module's stored results",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help=f"Markdown file to write (default {DEFAULT_OUTPUT.relative_to(REPO_ROOT)}, "
        f"or {QUICK_OUTPUT.relative_to(REPO_ROOT)} with --quick)",
    )
    return parser.parse_args(argv)


def results_path(module: str, quick: bool) -> Path:
    """Where a module's last sections are stored (quick and full runs kept apart)."""
    return WORK_DIR / "results" / ("quick" if quick else "full") / f"{module}.json"


def store_results(module: str, quick: bool, sections: list[Section], load: str = "") -> None:
    """Save a module's sections with the time they were measured and the machine load."""
    path = results_path(module, quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load": load,
        "sections": [asdict(s) for s in sections],
    }
    path.write_text(json.dumps(payload, indent=1, default=lambda v: v.item()))


def load_results(module: str, quick: bool) -> tuple[str, list[Section]] | None:
    """A module's stored sections and their measurement time, if it was run before."""
    path = results_path(module, quick)
    if not path.exists():
        return None
    payload = json.loads(path.read_text())
    return payload["measured"], [Section(**s) for s in payload["sections"]]


def module_summary(module: str) -> str:
    """First docstring line of a benchmark module, used as its heading."""
    doc = importlib.import_module(module).__doc__ or module
    return doc.strip().splitlines()[0].rstrip(".")


def run_module(module: str, cfg: BenchConfig) -> list[Section]:
    """Import a benchmark module, run it and store its sections."""
    print(f"== {module} ({'quick' if cfg.quick else 'full'})", file=sys.stderr)
    load_before = load_average()
    sections: list[Section] = importlib.import_module(module).run(cfg)
    store_results(module, cfg.quick, sections, f"{load_before:.1f} -> {load_average():.1f}")
    return sections


def stored_load(module: str, quick: bool) -> str:
    """The 1-minute load average at the start and end of a module's stored run, if recorded."""
    path = results_path(module, quick)
    load = json.loads(path.read_text()).get("load", "") if path.exists() else ""
    return str(load)


def collect(args: argparse.Namespace, cfg: BenchConfig) -> dict[str, tuple[str, list[Section]]]:
    """Sections per available module: freshly run, or stored from an earlier run (with --only)."""
    collected = {}
    for module in BENCHMARK_MODULES:
        if importlib.util.find_spec(module) is None:
            print(f"note: {module}.py does not exist yet, skipped", file=sys.stderr)
        elif not args.render_only and (args.only is None or module in args.only):
            collected[module] = ("", run_module(module, cfg))
        elif (stored := load_results(module, cfg.quick)) is not None:
            collected[module] = stored
        else:
            print(f"note: {module} was not run and has no stored results, skipped", file=sys.stderr)
    return collected


def render(collected: dict[str, tuple[str, list[Section]]], quick: bool) -> str:
    """The whole Markdown page: title, machine, then each module's sections."""
    mode = "quick mode, smoke-test sizes" if quick else "full sizes"
    parts = [
        "# loomdb benchmarks\n",
        f"Generated by `benchmarks/run_all.py` ({mode}); do not edit by hand.\n",
        "## Machine\n",
        markdown_machine(machine_info()) + "\n",
    ]
    for module, (measured, sections) in collected.items():
        parts.append(f"## {module_summary(module)}\n")
        load = stored_load(module, quick)
        parts.append(
            f"_Module `benchmarks/{module}.py`"
            + (f", measured {measured} (earlier run)" if measured else "")
            + (f"; 1-min load average {load} during the run" if load else "")
            + "._\n"
        )
        parts += [markdown_section(section) for section in sections]
    return "\n".join(parts)


def error_rows(collected: dict[str, tuple[str, list[Section]]]) -> list[Row]:
    """Rows that report a failed measurement."""
    return [
        row
        for _, sections in collected.values()
        for s in sections
        for row in s.rows
        if "error" in row
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and write the page; exit status 1 if a measurement failed."""
    args = parse_args(argv)
    cfg = BenchConfig(quick=args.quick)
    collected = collect(args, cfg)
    output: Path = args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(collected, args.quick))
    print(f"wrote {output}", file=sys.stderr)
    failures = error_rows(collected)
    for row in failures:
        print(f"error: {row}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
