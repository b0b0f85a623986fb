"""Props as JSON text, the same for every backend: refused with a clear ``InvalidInput`` when
a database could not give them back unchanged (non-finite numbers, NUL, lone surrogates)."""

from __future__ import annotations

import json
import re

from ..errors import InvalidInput

__all__ = ["encode_props"]

ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # \u0000 after an even run of backslashes


def encode_props(value: object, nul_reason: str) -> str:
    """``value`` as compact JSON (``ensure_ascii=False``: SQLite's JSON paths do not match
    keys written as \\uXXXX escapes). ``nul_reason`` says why this backend refuses NUL."""
    if not value:
        return "{}"  # most edges and many nodes: skip the encoder
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"props must be a JSON object of finite values: {exc}") from exc
    if "\\u0000" in text and ESCAPED_NUL.search(text):
        raise InvalidInput(f"props strings must not contain NUL ({nul_reason})")
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise InvalidInput("props hold a string that is not valid Unicode (a lone "
                               "surrogate)") from None
    return text
