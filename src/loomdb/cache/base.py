"""The result cache's contract: the key (whose ``seq`` makes any write invalidate exactly),
the statistics every cache reports, and the ``ResultCache`` base class."""

from __future__ import annotations

import statistics
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from loomdb.errors import InvalidInput
from loomdb.model import Hit

__all__ = [
    "GENERAL_TTL",
    "LATENCY_WINDOW",
    "MAX_ENTRIES",
    "PERSONALIZED_TTL",
    "CacheKey",
    "CacheStats",
    "Counters",
    "ResultCache",
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


class Counters:
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
        self._counters = Counters(latency_window)

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
