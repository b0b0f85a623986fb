"""PDF extraction: the router's choices, pages/s per parser, text similarity to ground truth.

Every PDF under ../shared/data/pdfs is extracted by loomdb.ingest.extract with the router
(``parser="auto"``), then once more with each parser forced, one file at a time through the
fork-server worker (so each time includes the fork, the limits and the JSON round trip). Where
docling ships reference Markdown, the text is compared with it. A last table measures what
the worker process costs per file against the alternatives.
"""

from __future__ import annotations

import difflib
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from common import BenchConfig, Row, Section, print_sections, shared_data_dir

from loomdb.errors import LoomError
from loomdb.ingest.extract import ExtractedDocument, ExtractLimits, extract
from loomdb.ingest.extract.pdf import extract_pdf
from loomdb.ingest.extract.pool import BOOTSTRAP, PACKAGE_ROOT, WorkerPool
from loomdb.ingest.extract.router import pymupdf_available

PASSWORDS = {"2206.01062_pg3.pdf": "1234", "libreoffice-writer-password.pdf": "openpassword"}
MODES = ("auto", "pypdf", "pdfplumber", "pymupdf")
QUICK_FILES = 10
OVERHEAD_RUNS = 20
LONG_FILE_PAGES = 10  # per-file costs (a fork, PyMuPDF's import) matter less past this
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}.*$", re.MULTILINE)
_MARKUP = re.compile(r"<!--.*?-->", re.DOTALL)


def pdf_files(quick: bool) -> list[Path]:
    files = sorted((shared_data_dir() / "pdfs").glob("*/*.pdf"))
    return files[::max(1, len(files) // QUICK_FILES)] if quick else files


def extract_one(path: Path, parser: str) -> tuple[ExtractedDocument | LoomError, float]:
    """One extraction and its wall time; an expected error is an outcome, not a failure."""
    start = time.perf_counter()
    try:
        outcome: ExtractedDocument | LoomError = extract(
            path, parser=parser, password=PASSWORDS.get(path.name))
    except LoomError as exc:
        outcome = exc
    return outcome, time.perf_counter() - start


def file_row(path: Path, outcome: ExtractedDocument | LoomError, seconds: float) -> Row:
    row: Row = {"category": path.parent.name, "file": path.name}
    if isinstance(outcome, LoomError):
        return {**row, "parser": "—", "pages": None, "s": seconds, "pages/s": None,
                "outcome": outcome.code, "router reason": ""}
    pages = len(outcome.pages)
    empty = sum(1 for w in outcome.warnings if w.endswith("has no text layer"))
    return {**row, "parser": outcome.parser, "pages": pages, "s": seconds,
            "pages/s": pages / seconds, "outcome": "text" + (f" ({empty} empty)" if empty else ""),
            "router reason": str(outcome.metadata["router"]["reason"])}


def words(text: str) -> list[str]:
    """Lower-cased word sequence, Markdown table rules and HTML comments removed."""
    return re.findall(r"\w+", _TABLE_RULE.sub(" ", _MARKUP.sub(" ", text)).lower())


def similarity(got: str, reference: str) -> tuple[float, float]:
    """(word F1, order similarity): F1 of the word multisets says what was extracted; difflib's
    ratio over the two word sequences also says whether it came out in reading order."""
    a, b = words(got), words(reference)
    overlap = sum((Counter(a) & Counter(b)).values())
    f1 = 2 * overlap / (len(a) + len(b)) if a or b else 1.0
    return f1, difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def run_mode(files: list[Path], mode: str) -> list[tuple[Path, ExtractedDocument | LoomError,
                                                         float]]:
    return [(path, *extract_one(path, mode)) for path in files]


def totals_row(mode: str, results: list[tuple[Path, ExtractedDocument | LoomError, float]]) -> Row:
    docs = [(o, s) for _, o, s in results if isinstance(o, ExtractedDocument)]
    text_pages = sum(len(o.pages) for o, _ in docs)
    text_seconds = sum(s for _, s in docs)
    long_docs = [(o, s) for o, s in docs if len(o.pages) >= LONG_FILE_PAGES]
    long_pages = sum(len(o.pages) for o, _ in long_docs)
    long_seconds = sum(s for _, s in long_docs)
    codes = Counter(o.code for _, o, _ in results if isinstance(o, LoomError))
    chosen = Counter(o.parser for o, _ in docs)
    return {"mode": mode, "files": len(results), "with text": len(docs),
            "errors": ", ".join(f"{c} {n}" for c, n in sorted(codes.items())) or "—",
            "pages": text_pages, "s (files with text)": text_seconds,
            "pages/s": text_pages / text_seconds if text_seconds else None,
            f"pages/s (files >= {LONG_FILE_PAGES} pages)":
                long_pages / long_seconds if long_seconds else None,
            "median s/file": statistics.median(s for _, _, s in results),
            "parsers used": ", ".join(f"{p} {n}" for p, n in sorted(chosen.items()))}


def similarity_rows(by_mode: dict[str, list[tuple[Path, ExtractedDocument | LoomError,
                                                   float]]]) -> list[Row]:
    truth = shared_data_dir() / "pdfs" / "docling" / "groundtruth"
    rows: list[Row] = []
    for reference in sorted(truth.glob("*.md")):
        row: Row = {"file": f"{reference.stem}.pdf"}
        for mode, results in by_mode.items():
            outcome = next((o for p, o, _ in results if p.stem == reference.stem), None)
            if isinstance(outcome, ExtractedDocument):
                if mode == "auto":
                    row["auto parser"] = outcome.parser
                f1, order = similarity(outcome.text, reference.read_text())
                row[f"{mode} F1"], row[f"{mode} order"] = f1, order
        if len(row) > 1:  # quick runs extract only some of the files
            rows.append(row)
    if rows:
        rows.append({"file": "mean", **{key: statistics.fmean(
            float(r[key]) for r in rows if isinstance(r.get(key), float))
            for key in rows[0] if key.endswith(("F1", "order"))}})
    return rows


def timed_runs(command: list[str], runs: int) -> float:
    """Median wall seconds of running a command to completion."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def overhead_rows(tiny: Path, runs: int) -> list[Row]:
    """What isolating a parse in a process costs per file, measured on a one-page PDF."""
    from loomdb.ingest.extract.parse import parse_pdf

    request = {"path": str(tiny), "name": tiny.name, "max_pages": 2000, "parser": "pypdf"}
    in_process = statistics.median(_seconds(lambda: parse_pdf(request)) for _ in range(runs))
    pool = WorkerPool(size=1)
    cold = _seconds(lambda: _pool_extract(pool, tiny))
    warm = statistics.median(_seconds(lambda: _pool_extract(pool, tiny)) for _ in range(runs))
    pool.close()
    imports_only = BOOTSTRAP.replace("serve()\n", "import pypdf, pdfplumber\n")
    spawn = timed_runs([sys.executable, "-c", imports_only, str(PACKAGE_ROOT)], runs // 2)
    full = timed_runs([sys.executable, "-c", "import loomdb, pypdf, pdfplumber"], runs // 2)
    return [
        {"mechanism": "in-process parse (no isolation), parser=pypdf", "ms/file": in_process * 1e3},
        {"mechanism": "fork server, warm: fork + limits + JSON round trip + parse",
         "ms/file": warm * 1e3},
        {"mechanism": "fork server, first file (starts the server: interpreter + imports)",
         "ms/file": cold * 1e3},
        {"mechanism": "alternative: new interpreter per file importing pypdf + pdfplumber "
         "(before any parsing)", "ms/file": spawn * 1e3},
        {"mechanism": "alternative: same through `python -m loomdb...` (loads numpy, faiss)",
         "ms/file": full * 1e3},
    ]


def _pool_extract(pool: WorkerPool, path: Path) -> None:
    extract_pdf(str(path), path.name, password=None, parser="pypdf", limits=ExtractLimits(),
                pool=pool)


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(cfg: BenchConfig) -> list[Section]:
    files = pdf_files(cfg.quick)
    if not files:
        return [Section("PDF extraction", "No shared PDFs found; set LOOMDB_SHARED_DATA.", [])]
    modes = [m for m in MODES if m != "pymupdf" or pymupdf_available()]
    by_mode = {mode: run_mode(files, mode) for mode in modes}
    tiny = shared_data_dir() / "pdfs" / "pypdf_samples" / "crazyones-pdfa.pdf"
    return [
        Section("Router choice per file", (
            f"{len(files)} PDFs, `extract(path)` with the router, sequentially through one "
            "fork-server worker; `s` is the wall time seen by the caller (fork, limits, "
            "parse, JSON back). Scans end in `no_text_layer` (no OCR); `(n empty)` counts "
            "pages without a text layer in an otherwise textual file."),
            [file_row(*result) for result in by_mode["auto"]]),
        Section("Totals per parser", (
            "The same files with the router (`auto`) and with each parser forced. pages/s is "
            "over the files that gave text. Every worker child that uses PyMuPDF imports it "
            "(about 0.6 s on an idle machine; the fork server cannot preload it, since the "
            "import starts threads and a threaded process must not fork), so its total is "
            "mostly imports; the column over the longer files shows its parsing speed, and "
            "why the router picks it only for long documents."),
            [totals_row(mode, results) for mode, results in by_mode.items()]),
        Section("Similarity to docling's reference Markdown", (
            "F1 of the word multisets (what was extracted) and difflib.SequenceMatcher ratio of "
            "the word sequences (whether it came out in reading order), both on lower-cased "
            "words with Markdown table rules and HTML comments removed. difflib, because "
            "rapidfuzz is not installed. The reference is docling's layout-model output, so "
            "its own reading-order choices count against every parser alike."),
            similarity_rows(by_mode)),
        Section("Cost of process isolation per file", (
            f"Median of {OVERHEAD_RUNS} runs on {tiny.name} (1 page). The fork server imports "
            "pypdf and pdfplumber once; each file is parsed in a fresh forked child with "
            "RLIMIT_AS, RLIMIT_CPU and a wall-clock kill. The alternatives start a new "
            "interpreter per file."),
            overhead_rows(tiny, OVERHEAD_RUNS // (4 if cfg.quick else 1))),
    ]


if __name__ == "__main__":
    print_sections(run(BenchConfig(quick="--quick" in sys.argv)))
