"""The query result cache: a derived view of the store, invalidated exactly by its seq.

A result is cached under ``CacheKey(namespace, tenant, user, fingerprint, seq)``. ``seq`` is the
store's change seq when the result was computed, so any write (which raises the seq) makes every
older entry unreachable: a reader asking with the current seq can only find results computed
after the last write. Unreachable entries then age out by TTL (and by LRU in memory);
``MemoryCache.prune`` drops them at once.

Personalised results (which depend on the user) live ``personalized_ttl`` seconds (5 minutes by
default), others ``general_ttl`` (1 hour). ``MemoryCache`` serves one process; ``RedisCache``
lets servers share one cache. A cache never fails a query: implementations that can fail
(Redis) return a miss on ``get`` and skip ``put`` on a transient error, and count it in
``stats().errors``.

    base.py     CacheKey, CacheStats and the ResultCache contract
    memory.py   MemoryCache (in process)
    redis.py    RedisCache (shared; ``loomdb[redis]``)
    codec.py    the versioned encoding of hits that RedisCache stores
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from .base import CacheKey, CacheStats, ResultCache
from .memory import MemoryCache
from .redis import RedisCache

__all__ = ["CacheKey", "CacheStats", "MemoryCache", "RedisCache", "ResultCache", "open_cache"]


def open_cache(spec: str | ResultCache | None, **options: Any) -> ResultCache | None:
    """The cache a store was asked for: ``"memory"``, a ``redis://``, ``rediss://`` or
    ``unix://`` URL, an instance (returned as is) or ``None`` (no cache). ``options`` go to the
    constructor (TTLs, ``max_entries``, timeouts). Nothing is connected here: call ``ping()``
    to check a Redis is reachable."""
    if spec is None or isinstance(spec, ResultCache):
        return spec
    if spec == "memory":
        return MemoryCache(**options)
    if spec.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisCache

        return RedisCache(spec, **options)
    raise InvalidInput(f"unknown cache {spec!r}: use 'memory' or a redis:// URL")
