"""Writing legacy files: JSON streamed in the layout of ``json.dump(indent=2)``, which the
legacy system wrote, so a large store never sits in memory as one document; each file is
replaced atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from ...files import atomic_write
from ...model import JSONValue

__all__ = ["Rendered", "render", "render_numbers", "streamed_object", "write_document"]

Write = Callable[[str], object]
Rendered = str | Callable[[Write], None]  # a value's JSON text, or a writer that streams it


def render(value: JSONValue, depth: int) -> str:
    """``value`` as json.dump(indent=2) writes it ``depth`` levels deep."""
    return json.dumps(value, indent=2, allow_nan=False).replace("\n", "\n" + "  " * depth)


def render_numbers(values: list[float], depth: int) -> str:
    """A vector as json.dump(indent=2) would write it (repr is json's float format), fast."""
    inner = "\n" + "  " * (depth + 1)
    return "[" + inner + ("," + inner).join(map(repr, values)) + "\n" + "  " * depth + "]"


def streamed_object(pairs: Iterable[tuple[str, Rendered]], depth: int) -> Rendered:
    """A writer streaming ``{key: value, ...}`` as a value ``depth`` levels deep."""
    return partial(_write_object, pairs=pairs, depth=depth)


def write_document(path: Path, pairs: Iterable[tuple[str, Rendered]]) -> None:
    """Replace ``path`` atomically with the JSON object ``{key: value, ...}``."""
    def fill(temp: Path) -> None:
        with temp.open("w", encoding="utf-8", buffering=1 << 20) as file:
            _write_object(file.write, pairs)

    atomic_write(path, fill)


def _write_object(write: Write, pairs: Iterable[tuple[str, Rendered]], depth: int = 0) -> None:
    """Stream ``{key: value, ...}`` in json.dump(indent=2) layout."""
    inner = "\n" + "  " * (depth + 1)
    first = True
    for key, value in pairs:
        write(("{" if first else ",") + inner + json.dumps(key) + ": ")
        if isinstance(value, str):
            write(value)
        else:
            value(write)
        first = False
    write("{}" if first else "\n" + "  " * depth + "}")
