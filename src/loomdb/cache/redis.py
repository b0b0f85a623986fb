"""RedisCache: the result cache shared by every server that points at one Redis.

Values are the JSON of ``codec`` (never pickle), stored with ``SET ... PX ttl``; keys are
``prefix`` + a hash of the whole ``CacheKey`` and the codec format, so two stores (namespaces),
tenants, users or loomdb versions never read each other's results. Invalidation needs nothing
from Redis: a write raises the store's seq, which is part of the key, so older entries become
unreachable and Redis drops them when their TTL ends (set ``maxmemory-policy volatile-lru`` on
the server to also bound its memory).

A cache must never fail or stall a query: timeouts are short (0.2 s by default) and there is
one immediate retry; on an error ``get`` is a miss and ``put`` is skipped, the error is counted
in ``stats().errors`` and logged once per outage, and Redis is left alone for
``retry_interval`` seconds (calls in that window are misses and errors too). ``ping()`` raises
``BackendUnavailable`` naming the server, for health checks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from typing import TYPE_CHECKING

from ..errors import BackendUnavailable, InvalidInput, MissingDependency
from ..model import Hit
from .base import (
    GENERAL_TTL,
    LATENCY_WINDOW,
    PERSONALIZED_TTL,
    CacheKey,
    ResultCache,
)
from .codec import FORMAT, MalformedValue, decode_hits, encode_hits

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["RedisCache"]

log = logging.getLogger(__name__)

SOCKET_TIMEOUT = 0.2
RETRY_INTERVAL = 1.0
PREFIX = "loomdb:cache:"
CLEAR_BATCH = 1000


class RedisCache(ResultCache):
    """A result cache in Redis, shared between processes and machines.

    Args:
        target: a ``redis://host:port/db`` (``rediss://``, ``unix://``) URL, or a ``redis.Redis``
            client (its own timeouts and retries then apply, and ``close()`` leaves it open).
        socket_timeout: seconds to connect, and to wait for each reply.
        retry_interval: seconds to leave Redis alone after an error.
        prefix: what every key of this cache starts with; ``clear()`` deletes those keys only.
        personalized_ttl, general_ttl, latency_window: as in ``ResultCache``.
    """

    def __init__(self, target: str | Redis, *, socket_timeout: float = SOCKET_TIMEOUT,
                 retry_interval: float = RETRY_INTERVAL, prefix: str = PREFIX,
                 personalized_ttl: float = PERSONALIZED_TTL, general_ttl: float = GENERAL_TTL,
                 latency_window: int = LATENCY_WINDOW) -> None:
        super().__init__(personalized_ttl=personalized_ttl, general_ttl=general_ttl,
                         latency_window=latency_window)
        if not socket_timeout > 0 or not retry_interval >= 0:
            raise InvalidInput("socket_timeout must be positive and retry_interval not negative")
        self.prefix = prefix
        self.retry_interval = retry_interval
        self._owned = isinstance(target, str)
        self._client = _connect(target, socket_timeout) if isinstance(target, str) else target
        self.where = _describe(self._client)
        self._resting_until = 0.0
        self._outage = False

    def ping(self) -> None:
        from redis.exceptions import RedisError

        try:
            self._client.ping()
        except RedisError as exc:
            raise BackendUnavailable(f"the Redis cache at {self.where} cannot be reached: "
                                     f"{exc}") from exc
        self._reached()

    def clear(self) -> None:
        """Delete this cache's keys (those under ``prefix``); the rest of the database stays.
        Raises ``BackendUnavailable`` if Redis cannot be reached."""
        from redis.exceptions import RedisError

        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "*"
        try:
            batch: list[bytes] = []
            for name in self._client.scan_iter(match=pattern, count=CLEAR_BATCH):
                batch.append(name)
                if len(batch) == CLEAR_BATCH:
                    self._client.unlink(*batch)
                    batch.clear()
            if batch:
                self._client.unlink(*batch)
        except RedisError as exc:
            raise BackendUnavailable(f"cannot clear the Redis cache at {self.where}: "
                                     f"{exc}") from exc

    def close(self) -> None:
        if self._owned:
            self._client.close()

    def redis_key(self, key: CacheKey) -> str:
        """The Redis key of a cache key: the prefix and a 128-bit hash of every part."""
        parts = [FORMAT, key.namespace, key.tenant, key.user, key.fingerprint, key.seq]
        digest = hashlib.blake2b(json.dumps(parts).encode(), digest_size=16).hexdigest()
        return self.prefix + digest

    def _fetch(self, key: CacheKey) -> list[Hit] | None:
        from redis.exceptions import RedisError

        if self._resting():
            return None
        try:
            data = self._client.get(self.redis_key(key))
        except RedisError as exc:
            self._failed(exc)
            return None
        self._reached()
        if data is None:
            return None
        try:
            return decode_hits(data)
        except MalformedValue as exc:
            self._counters.record_error()
            log.warning("ignoring an unreadable value in the Redis cache at %s: %s",
                        self.where, exc)
            return None

    def _store(self, key: CacheKey, hits: tuple[Hit, ...], ttl: float) -> bool:
        from redis.exceptions import RedisError

        if self._resting():
            return False
        payload = encode_hits(hits)
        try:
            self._client.set(self.redis_key(key), payload, px=max(1, round(ttl * 1000)))
        except RedisError as exc:
            self._failed(exc)
            return False
        self._reached()
        return True

    def _resting(self) -> bool:
        """True (and counted as an error) while Redis is left alone after a failure."""
        if time.monotonic() < self._resting_until:
            self._counters.record_error()
            return True
        return False

    def _failed(self, exc: Exception) -> None:
        self._counters.record_error()
        self._resting_until = time.monotonic() + self.retry_interval
        if not self._outage:
            self._outage = True
            log.warning("the Redis cache at %s cannot be reached (%s); queries run uncached, "
                        "retrying every %.1f s", self.where, exc, self.retry_interval)

    def _reached(self) -> None:
        if self._outage:
            self._outage = False
            log.warning("the Redis cache at %s is reachable again", self.where)


def _connect(url: str, socket_timeout: float) -> Redis:
    """A client for ``url`` with short timeouts and one immediate retry (redis-py's default
    retries ten times with backoff, which would stall queries for seconds)."""
    try:
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as exc:
        raise MissingDependency(f"the Redis cache needs the [redis] extra ({exc.name} is not "
                                "installed): pip install 'loomdb[redis]'") from exc
    try:
        return Redis.from_url(url, socket_timeout=socket_timeout,
                              socket_connect_timeout=socket_timeout, retry=Retry(NoBackoff(), 1))
    except ValueError as exc:
        raise InvalidInput(f"not a Redis URL: {exc}") from exc


def _describe(client: Redis) -> str:
    """``redis://host:port/db`` (or the socket path) of a client, never its password."""
    options = client.connection_pool.connection_kwargs
    db = options.get("db", 0)
    if "path" in options:
        return f"unix://{options['path']}?db={db}"
    return f"redis://{options.get('host', 'localhost')}:{options.get('port', 6379)}/{db}"
