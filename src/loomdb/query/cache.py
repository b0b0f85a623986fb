"""The query result cache: a derived view of the store, invalidated exactly by its seq.

A result is cached under ``CacheKey(namespace, tenant, user, fingerprint, seq)``. ``seq`` is the
store's change seq when the result was computed, so any write (which raises the seq) makes every
older entry unreachable: a reader asking with the current seq can only find results computed
after the last write. Unreachable entries then age out by TTL (and by LRU in memory);
``MemoryCache.prune`` drops them at once.

Personalised results (which depend on the user) live ``personalized_ttl`` seconds (5 minutes by
default), others ``general_ttl`` (1 hour). ``MemoryCache`` serves one process; ``RedisCache``
(in ``cache_redis``, also importable from here) lets servers share one cache. A cache never
fails a query: implementations that can fail (Redis) return a miss on ``get`` and skip ``put``
on a transient error, and count it in ``stats().errors``.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cachetools import TLRUCache

from loomdb.errors import InvalidInput
from loomdb.model import Hit

if TYPE_CHECKING:
    from loomdb.query.cache_redis import RedisCache

__all__ = [
    "GENERAL_TTL",
    "PERSONALIZED_TTL",
    "CacheKey",
    "CacheStats",
    "MemoryCache",
    "RedisCache",
    "ResultCache",
    "open_cache",
]

PERSONALIZED_TTL = 300.0
GENERAL_TTL = 3600.0
LATENCY_WINDOW = 1024
MAX_ENTRIES = 1_000  # a result of ten 500-character chunks holds ~22 KB: ~22 MB


@dataclass(frozen=True)
class CacheKey:
    """What a cached result depends on; equal keys mean the same result.

    Attributes:
        namespace: the store's identity, so two stores sharing one Redis never collide.
        tenant: the tenant the query ran in.
        user: the user a personalised query ran for, else ``None``.
        fingerprint: the hash of the normalised query.
        seq: the store's change seq when the result was computed.
    """

    namespace: str
    tenant: str
    user: str | None
    fingerprint: str
    seq: int


@dataclass(frozen=True)
class CacheStats:
    """Counters since the cache was made, and get latency over the recent ``LATENCY_WINDOW``.

    ``errors`` counts gets and puts that could not reach the cache (a get error is also a miss).
    ``evictions`` (entries pushed out to make room) and ``size`` are ``None`` where the cache
    cannot know them cheaply (a shared Redis). Latencies are ``None`` before the first get.
    """

    hits: int
    misses: int
    hit_rate: float
    puts: int
    errors: int
    evictions: int | None
    size: int | None
    get_p50_ms: float | None
    get_p99_ms: float | None


class _Counters:
    """Thread-safe counters and a bounded window of get latencies."""

    def __init__(self, window: int) -> None:
        self._lock = threading.Lock()
        self._latencies: deque[float] = deque(maxlen=window)
        self.hits = self.misses = self.puts = self.errors = 0

    def record_get(self, seconds: float, hit: bool) -> None:
        with self._lock:
            self._latencies.append(seconds)
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def record_put(self) -> None:
        with self._lock:
            self.puts += 1

    def record_error(self) -> None:
        with self._lock:
            self.errors += 1

    def snapshot(self, evictions: int | None, size: int | None) -> CacheStats:
        with self._lock:
            latencies = list(self._latencies)
            hits, misses, puts, errors = self.hits, self.misses, self.puts, self.errors
        p50, p99 = _percentiles_ms(latencies)
        return CacheStats(hits=hits, misses=misses, hit_rate=hits / max(1, hits + misses),
                          puts=puts, errors=errors, evictions=evictions, size=size,
                          get_p50_ms=p50, get_p99_ms=p99)


def _percentiles_ms(seconds: list[float]) -> tuple[float | None, float | None]:
    if not seconds:
        return None, None
    if len(seconds) == 1:
        return seconds[0] * 1e3, seconds[0] * 1e3
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return cuts[49] * 1e3, cuts[98] * 1e3


class ResultCache(ABC):
    """A cache of search results by ``CacheKey``; safe to share between threads.

    ``get`` and ``put`` time and count every call here; implementations only store and fetch.
    Hits handed out may be shared with the cache (the model's dataclasses are frozen): callers
    must not mutate a hit's ``props`` or ``scores`` in place.

    Args:
        personalized_ttl: seconds a personalised result lives.
        general_ttl: seconds any other result lives.
        latency_window: how many recent gets the latency percentiles cover.
    """

    def __init__(self, *, personalized_ttl: float = PERSONALIZED_TTL,
                 general_ttl: float = GENERAL_TTL, latency_window: int = LATENCY_WINDOW) -> None:
        for name, ttl in (("personalized_ttl", personalized_ttl), ("general_ttl", general_ttl)):
            if not ttl > 0:
                raise InvalidInput(f"{name} must be a positive number of seconds, got {ttl!r}")
        if latency_window < 1:
            raise InvalidInput(f"latency_window must be at least 1, got {latency_window!r}")
        self.personalized_ttl = float(personalized_ttl)
        self.general_ttl = float(general_ttl)
        self._counters = _Counters(latency_window)

    def get(self, key: CacheKey) -> list[Hit] | None:
        """The hits cached under ``key``, or ``None`` on a miss (or a transient error)."""
        start = time.perf_counter()
        hits = self._fetch(key)
        self._counters.record_get(time.perf_counter() - start, hits is not None)
        return hits

    def put(self, key: CacheKey, hits: Sequence[Hit], personalized: bool) -> None:
        """Cache ``hits`` under ``key`` for the TTL its kind gets (skipped on a transient
        error)."""
        ttl = self.personalized_ttl if personalized else self.general_ttl
        if self._store(key, tuple(hits), ttl):
            self._counters.record_put()

    def stats(self) -> CacheStats:
        """Hits, misses, hit rate, puts, errors, evictions, size and get latency."""
        return self._counters.snapshot(self._evictions(), self._size())

    def ping(self) -> None:  # noqa: B027 - an in-process cache is always reachable
        """Check that the cache can be reached; raises ``BackendUnavailable`` if not."""

    @abstractmethod
    def clear(self) -> None:
        """Drop every entry this cache holds (counters are kept)."""

    @abstractmethod
    def close(self) -> None:
        """Release what the cache holds; it is not used afterwards."""

    @abstractmethod
    def _fetch(self, key: CacheKey) -> list[Hit] | None:
        """The cached hits, or ``None``; never raises for an unreachable cache."""

    @abstractmethod
    def _store(self, key: CacheKey, hits: tuple[Hit, ...], ttl: float) -> bool:
        """Store the hits for ``ttl`` seconds; ``False`` if a transient error skipped it."""

    def _evictions(self) -> int | None:
        return None

    def _size(self) -> int | None:
        return None


class _Entries(TLRUCache[CacheKey, tuple[tuple[Hit, ...], float], float]):
    """A TLRU cache of ``(hits, ttl)`` that reports every entry it drops by itself (evicted for
    room, or expired), so ``MemoryCache`` keeps its namespace index exact."""

    def __init__(self, maxsize: int, on_drop: Callable[[CacheKey, bool], None]) -> None:
        super().__init__(maxsize, ttu=_expires_at, timer=time.monotonic)
        self._on_drop = on_drop

    def popitem(self) -> tuple[CacheKey, tuple[tuple[Hit, ...], float]]:
        key, value = super().popitem()
        self._on_drop(key, True)
        return key, value

    def expire(self, time: float | None = None) -> list[tuple[CacheKey,
                                                                tuple[tuple[Hit, ...], float]]]:
        expired = super().expire(time)
        for key, _ in expired:
            self._on_drop(key, False)
        return expired


def _expires_at(_key: CacheKey, value: tuple[tuple[Hit, ...], float], now: float) -> float:
    return now + value[1]


class MemoryCache(ResultCache):
    """An in-process cache: at most ``max_entries`` results, least recently used evicted first,
    each entry expiring after its own TTL. Hits are shared, not copied (a get costs
    microseconds).

    Args:
        max_entries: how many results to keep (a result of ten 500-character chunks takes
            about 22 KB of memory).
        personalized_ttl, general_ttl, latency_window: as in ``ResultCache``.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES, *,
                 personalized_ttl: float = PERSONALIZED_TTL, general_ttl: float = GENERAL_TTL,
                 latency_window: int = LATENCY_WINDOW) -> None:
        super().__init__(personalized_ttl=personalized_ttl, general_ttl=general_ttl,
                         latency_window=latency_window)
        if max_entries < 1:
            raise InvalidInput(f"max_entries must be at least 1, got {max_entries!r}")
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries = _Entries(max_entries, self._forget)
        self._by_namespace: dict[str, set[CacheKey]] = {}
        self._evicted = 0

    def prune(self, namespace: str, before_seq: int) -> int:
        """Drop the entries of ``namespace`` computed before ``before_seq`` (unreachable once
        the store's seq passed it); returns how many. Costs one step per entry dropped."""
        with self._lock:
            self._entries.expire()
            stale = [k for k in self._by_namespace.get(namespace, ()) if k.seq < before_seq]
            for key in stale:
                with contextlib.suppress(KeyError):  # raised if it expired just now: gone too
                    del self._entries[key]
                self._forget(key, False)
            return len(stale)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_namespace.clear()

    def close(self) -> None:
        self.clear()

    def _fetch(self, key: CacheKey) -> list[Hit] | None:
        with self._lock:
            entry = self._entries.get(key)
        return None if entry is None else list(entry[0])

    def _store(self, key: CacheKey, hits: tuple[Hit, ...], ttl: float) -> bool:
        with self._lock:
            self._entries[key] = (hits, ttl)
            self._by_namespace.setdefault(key.namespace, set()).add(key)
        return True

    def _forget(self, key: CacheKey, evicted: bool) -> None:
        """Called under the lock when an entry leaves the cache."""
        self._evicted += evicted
        keys = self._by_namespace.get(key.namespace)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_namespace[key.namespace]

    def _evictions(self) -> int | None:
        return self._evicted

    def _size(self) -> int | None:
        with self._lock:
            self._entries.expire()
            return len(self._entries)


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
        from loomdb.query.cache_redis import RedisCache

        return RedisCache(spec, **options)
    raise InvalidInput(f"unknown cache {spec!r}: use 'memory' or a redis:// URL")


def __getattr__(name: str) -> Any:
    # RedisCache lives in cache_redis (which imports this module); exported here lazily
    if name == "RedisCache":
        from loomdb.query.cache_redis import RedisCache

        return RedisCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
