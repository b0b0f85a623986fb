"""numpy arrays to and from pgvector's ``vector`` type in its binary wire format.

Rows of vectors come back as numpy float32 arrays directly (one ``frombuffer`` each), and
numpy arrays (alone or in lists, as ``vector[]``) go out in binary, with no text formatting of
floats either way. The format: int16 dimension, int16 unused, then big-endian float32s.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import Dumper, Loader
from psycopg.pq import Format
from psycopg.types import TypeInfo

__all__ = ["fetch_vector_type", "register_vector_type"]

_HEADER = struct.Struct(">HH")
_BIG_ENDIAN = np.dtype(">f4")


class _VectorDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: npt.NDArray[Any]) -> Buffer:
        values = np.asarray(obj, dtype=_BIG_ENDIAN).reshape(-1)
        return _HEADER.pack(len(values), 0) + values.tobytes()


class _VectorTextDumper(Dumper):
    format = Format.TEXT

    def dump(self, obj: npt.NDArray[Any]) -> Buffer:
        values = np.asarray(obj, dtype=np.float32).reshape(-1)
        return ("[" + ",".join(f"{x:.9g}" for x in values.tolist()) + "]").encode()


class _VectorLoader(Loader):
    format = Format.BINARY

    def load(self, data: Buffer) -> npt.NDArray[np.float32]:
        return np.frombuffer(data, dtype=_BIG_ENDIAN, offset=_HEADER.size).astype(np.float32)


def fetch_vector_type(conn: psycopg.Connection[Any]) -> TypeInfo:
    """The ``vector`` type's OIDs in this database (the extension must exist)."""
    info = TypeInfo.fetch(conn, "vector")
    if info is None:
        raise psycopg.ProgrammingError("the vector type does not exist in this database")
    return info


def register_vector_type(conn: psycopg.Connection[Any], info: TypeInfo) -> None:
    """Dump numpy arrays as ``vector`` and load ``vector`` columns as float32 arrays."""
    info.register(conn)
    adapters = conn.adapters
    for dumper in (_VectorTextDumper, _VectorDumper):  # the last registered is the default
        adapters.register_dumper(np.ndarray, type(dumper.__name__, (dumper,), {"oid": info.oid}))
    adapters.register_loader(info.oid, _VectorLoader)
