"""The in-process result cache: a TLRU map with a per-namespace index, so ``prune`` and
``clear`` act on one store's entries at once."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from cachetools import TLRUCache

from ..errors import InvalidInput
from ..model import Hit
from .base import GENERAL_TTL, LATENCY_WINDOW, MAX_ENTRIES, PERSONALIZED_TTL, CacheKey, ResultCache

__all__ = ["MemoryCache"]


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
