"""The JSON messages between a PDF worker and its parent (see ``worker.py``), by shape.

Both ends are ours, so a message read back is trusted to have the shape written here.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from ...model import JSONObject

__all__ = ["ErrorBody", "ParsedPdf", "PdfAnswer", "PdfRequest", "WorkerHeader"]


class PdfRequest(TypedDict):
    """One file to parse, with the limits its child process runs under."""

    path: str
    name: str  # what messages call the file
    password: str | None
    parser: str
    max_pages: int
    timeout: float
    max_memory: int


class WorkerHeader(TypedDict):
    """How the child ended; ``size`` bytes of its answer follow when it is ``done``."""

    status: Literal["done", "timeout", "signal", "exit"]
    size: NotRequired[int]
    signal: NotRequired[int]  # status "signal": the signal number
    code: NotRequired[int]  # status "exit": the exit status


class ParsedPdf(TypedDict):
    """What ``parse_pdf`` extracted: the parser used, the title, page texts and metadata."""

    parser: str
    title: str | None
    pages: list[str]
    metadata: JSONObject
    warnings: list[str]


class ErrorBody(TypedDict):
    """A loomdb error raised in the child: its ``code`` names the class to raise again."""

    code: str
    message: str


class PdfAnswer(TypedDict, total=False):
    """The child's answer: ``ok`` or ``error``."""

    ok: ParsedPdf
    error: ErrorBody
