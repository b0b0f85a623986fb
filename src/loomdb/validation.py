"""Checks on everything users hand the facade, so bad input fails early with a clear error."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from .errors import DimensionMismatch, InvalidInput, InvalidVector, ModelMismatch
from .model import DIRECTIONS, Direction, Node, VectorSpace

__all__ = [
    "check_direction",
    "check_id",
    "check_limit",
    "check_name",
    "check_offset",
    "check_unicode",
    "check_vectors",
    "unique",
]

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
MAX_ID_LENGTH = 512
MAX_LIMIT = 100_000
MAX_MAGNITUDE = 1e15  # squared and summed over 16k dims this stays finite in float32


def check_name(value: object, what: str) -> str:
    """Tenant and space names: 1-64 of ``A-Z a-z 0-9 _ . -``, not starting with a dot."""
    if not isinstance(value, str) or not NAME.match(value):
        raise InvalidInput(
            f"{what} name {value!r} is invalid: use 1-64 letters, digits, '_', '.', '-' "
            "(not starting with '.' or '-')"
        )
    return value


def check_id(value: object) -> str:
    """A node id, or the id of a ``Node`` the API returned, checked."""
    if isinstance(value, Node):
        value = value.id
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH or "\x00" in value:
        raise InvalidInput(
            f"node id {value!r:.80} is invalid: ids are non-empty strings of at most "
            f"{MAX_ID_LENGTH} characters without NUL"
        )
    return value


def check_limit(value: object, what: str = "limit", maximum: int = MAX_LIMIT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
        raise InvalidInput(f"{what} must be an integer from 1 to {maximum}, got {value!r:.40}")
    return value


def check_unicode(owner: object, names: Sequence[str], values: Sequence[object]) -> None:
    """Refuse strings UTF-8 cannot encode (lone surrogates), naming the owner and field.

    Cheap for the common case: ASCII strings are skipped without encoding anything.
    """
    for name, value in zip(names, values, strict=True):
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                shown = str(owner).encode(errors="replace").decode()
                raise InvalidInput(f"{shown}: {name} is not valid Unicode (it holds a lone "
                                   "surrogate)") from None


def check_offset(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"offset must be a non-negative integer, got {value!r:.40}")
    return value


def check_direction(value: object) -> Direction:
    if value not in DIRECTIONS:
        raise InvalidInput(f"direction must be one of {DIRECTIONS}, got {value!r:.40}")
    return cast(Direction, value)  # one of DIRECTIONS, checked just above


def check_vectors(
    space: VectorSpace, vectors: object, model: str | None = None, count: int | None = None
) -> npt.NDArray[Any]:  # float64 for a float64 space, float32 otherwise
    """``vectors`` as a matrix of the space's dimension, every value finite: float64 for a
    space that stores float64 (so nothing is rounded), float32 otherwise."""
    if model is not None and model != space.model:
        raise ModelMismatch(
            f"vectors from model {model!r} cannot go in space {space.name!r} "
            f"(model {space.model!r})"
        )
    try:
        dtype = np.float64 if space.storage == "float64" else np.float32
        matrix = np.asarray(vectors, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidVector(f"vectors must be numbers: {exc}") from exc
    given = matrix.shape
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or matrix.shape[1] != space.dim:
        raise DimensionMismatch(
            f"space {space.name!r} holds {space.dim}-d vectors, got shape {tuple(given)}")
    if count is not None and len(matrix) != count:
        raise InvalidInput(f"got {len(matrix)} vectors for {count} ids")
    if not np.isfinite(matrix).all():
        raise InvalidVector("vectors must not contain NaN or infinity")
    if matrix.size and float(np.abs(matrix).max()) > MAX_MAGNITUDE:
        raise InvalidVector(f"vector values must lie within ±{MAX_MAGNITUDE:g} (the index "
                            "computes in float32, where larger ones overflow)")
    return matrix


def unique(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))
