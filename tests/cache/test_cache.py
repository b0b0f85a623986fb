"""The result cache: one suite over the in-process cache and a real Redis server."""

from __future__ import annotations

import math
import random
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from loomdb.cache import CacheKey, MemoryCache, RedisCache, ResultCache, open_cache
from loomdb.cache.codec import MalformedValue, decode_hits, encode_hits
from loomdb.errors import BackendUnavailable, InvalidInput, MissingDependency
from loomdb.model import Citation, Hit, Node

from ..redis_server import RedisServer, start_server

KINDS = ["memory", "redis"]
KEY = CacheKey(namespace="store-a", tenant="acme", user=None, fingerprint="f" * 16, seq=7)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_server()
    yield server
    server.remove()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server of this test's own, which it may stop, pause and restart."""
    server = start_server()
    yield server
    server.remove()


MakeCache = Callable[..., ResultCache]


@pytest.fixture(params=KINDS)
def make_cache(request: pytest.FixtureRequest) -> Iterator[MakeCache]:
    """Builds caches of the parametrized kind; Redis ones get a prefix of their own."""
    made: list[ResultCache] = []

    def make(**options: Any) -> ResultCache:
        if request.param == "memory":
            cache: ResultCache = MemoryCache(**options)
        else:
            url = request.getfixturevalue("redis_server").url
            cache = RedisCache(url, prefix=f"test:{uuid.uuid4().hex}:", **options)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.clear()
        cache.close()


def chunk_hit(i: int, text: str = "lorem ipsum ") -> Hit:
    node = Node(id=f"chunk-{i}", kind="chunk", text=text * 40, tenant="acme",
                props={"document": "doc-1", "page": i, "start": 10 * i, "end": 10 * i + 480,
                       "tags": ["a", "b"], "meta": {"lang": "en", "ratio": 0.1 + 0.2}},
                created=1_717_000_000.123456, updated=1_717_000_001.5, confidence=None)
    return Hit.of(node, score=1 / (i + 3), scores={"vector": 0.8125 - i / 7, "bm25": 12.5})


HITS = [chunk_hit(i) for i in range(10)]


def test_miss_then_hit(make_cache: MakeCache) -> None:
    cache = make_cache()
    assert cache.get(KEY) is None
    cache.put(KEY, HITS, personalized=False)
    assert cache.get(KEY) == HITS
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.puts, stats.errors) == (1, 1, 1, 0)
    assert stats.hit_rate == 0.5


@pytest.mark.parametrize("change", [{"seq": 8}, {"seq": 6}, {"user": "u1"}, {"tenant": "other"},
                                    {"namespace": "store-b"}, {"fingerprint": "g" * 16}])
def test_any_other_key_misses(make_cache: MakeCache, change: dict[str, Any]) -> None:
    cache = make_cache()
    cache.put(KEY, HITS, personalized=False)
    assert cache.get(replace(KEY, **change)) is None
    assert cache.get(KEY) == HITS


def test_users_do_not_share_personalised_results(make_cache: MakeCache) -> None:
    cache = make_cache()
    alice, bob = replace(KEY, user="alice"), replace(KEY, user="bob")
    cache.put(alice, HITS[:3], personalized=True)
    cache.put(bob, HITS[3:], personalized=True)
    assert cache.get(alice) == HITS[:3]
    assert cache.get(bob) == HITS[3:]


def test_personalised_results_expire_sooner(make_cache: MakeCache) -> None:
    cache = make_cache(personalized_ttl=0.2, general_ttl=30)
    personal = replace(KEY, user="alice")
    cache.put(personal, HITS, personalized=True)
    cache.put(KEY, HITS, personalized=False)
    assert cache.get(personal) == HITS
    time.sleep(0.35)
    assert cache.get(personal) is None
    assert cache.get(KEY) == HITS


def test_general_results_expire_too(make_cache: MakeCache) -> None:
    cache = make_cache(personalized_ttl=30, general_ttl=0.2)
    cache.put(KEY, HITS, personalized=False)
    time.sleep(0.35)
    assert cache.get(KEY) is None


def test_putting_again_replaces(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.put(KEY, HITS, personalized=False)
    cache.put(KEY, HITS[:2], personalized=False)
    assert cache.get(KEY) == HITS[:2]


def test_empty_results_are_cached(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.put(KEY, [], personalized=False)
    assert cache.get(KEY) == []


def test_hits_round_trip_exactly(make_cache: MakeCache) -> None:
    cache = make_cache()
    odd = Node(id="ent/ß-🙂", kind="entity", text="עברית and 中文 and \x00 and \u2028",
               props={"nested": {"list": [1, 2.5, None, True, "x", {"deep": [-0.0, 1e-300]}]},
                      "emoji 🙂": "✓", "big": 2**62, "empty": {}},
               source=None, category="people", confidence=0.1 + 0.2, strength=1e308,
               access_count=3, created=1.0, updated=None, last_accessed=2.25, tenant="acme")
    hits = [*HITS, Hit(node=odd, score=-1.5e-12, scores={}, citation=None),
            Hit(node=odd, score=0.0, scores={"x": 1.0},
                citation=Citation(document="d", page=None, start=0, end=None))]
    cache.put(KEY, hits, personalized=False)
    back = cache.get(KEY)
    assert back == hits
    assert back is not None and back[0].citation == Citation("doc-1", 0, 0, 480)
    assert [type(v) for v in back[-2].node.props["nested"]["list"]] == \
        [int, float, type(None), bool, str, dict]


def test_scores_keep_nan_and_infinity(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.put(KEY, [Hit(Node("n"), score=math.inf, scores={"a": math.nan, "b": -math.inf})],
              personalized=False)
    (hit,) = cache.get(KEY) or []
    assert hit.score == math.inf and math.isnan(hit.scores["a"]) and hit.scores["b"] == -math.inf


def test_concurrent_gets_and_puts(make_cache: MakeCache) -> None:
    """Threads hammer a few keys: every hit is exactly what was put under its key."""
    cache = make_cache()
    keys = [replace(KEY, seq=seq) for seq in range(20)]
    expected = {key: [chunk_hit(key.seq)] for key in keys}
    failures: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            key = rng.choice(keys)
            if rng.random() < 0.3:
                cache.put(key, expected[key], personalized=bool(seed % 2))
            elif (got := cache.get(key)) is not None and got != expected[key]:
                failures.append(f"{key.seq}: {got!r}")

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    stats = cache.stats()
    assert stats.hits + stats.misses + stats.puts == 8 * 300
    assert stats.hits > 0 and stats.errors == 0


def test_stats_report_hit_rate_and_latency(make_cache: MakeCache) -> None:
    cache = make_cache(latency_window=50)
    assert cache.stats().get_p50_ms is None
    cache.put(KEY, HITS, personalized=False)
    for _ in range(99):
        cache.get(KEY)
    cache.get(replace(KEY, seq=99))
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.hit_rate) == (99, 1, 0.99)
    assert stats.get_p50_ms is not None and stats.get_p99_ms is not None
    assert 0 < stats.get_p50_ms <= stats.get_p99_ms < 1_000


def test_clear_drops_entries(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.put(KEY, HITS, personalized=False)
    cache.clear()
    assert cache.get(KEY) is None


@pytest.mark.parametrize("bad", [{"personalized_ttl": 0}, {"general_ttl": -1},
                                 {"general_ttl": math.nan}, {"latency_window": 0}])
def test_bad_settings_are_refused(make_cache: MakeCache, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        make_cache(**bad)


# ----------------------------------------------------------------------------- memory only


def test_memory_is_bounded_least_recently_used_first() -> None:
    cache = MemoryCache(max_entries=3)
    keys = [replace(KEY, seq=seq) for seq in range(5)]
    for key in keys[:3]:
        cache.put(key, HITS[:1], personalized=False)
    assert cache.get(keys[0]) is not None  # now keys[1] is the least recently used
    cache.put(keys[3], HITS[:1], personalized=False)
    cache.put(keys[4], HITS[:1], personalized=False)
    assert [cache.get(key) is not None for key in keys] == [True, False, False, True, True]
    stats = cache.stats()
    assert (stats.size, stats.evictions) == (3, 2)


def test_memory_prune_drops_older_entries_of_one_store() -> None:
    cache = MemoryCache()
    for seq in (1, 2, 3):
        cache.put(replace(KEY, seq=seq), HITS[:1], personalized=False)
    other = replace(KEY, namespace="store-b", seq=1)
    cache.put(other, HITS[:1], personalized=False)
    assert cache.prune(KEY.namespace, before_seq=3) == 2
    assert cache.get(replace(KEY, seq=3)) is not None and cache.get(other) is not None
    assert cache.get(replace(KEY, seq=2)) is None
    assert cache.stats().size == 2
    assert cache.prune("no-such-store", 10) == 0


def test_memory_prune_after_expiry_and_eviction() -> None:
    """Entries that left by themselves are not counted again, nor tripped over."""
    cache = MemoryCache(max_entries=2, general_ttl=0.1)
    for seq in range(4):
        cache.put(replace(KEY, seq=seq), HITS[:1], personalized=False)
    time.sleep(0.2)
    assert cache.prune(KEY.namespace, before_seq=100) == 0
    assert cache.stats().size == 0 and cache.stats().evictions == 2


def test_memory_bounds_are_checked() -> None:
    with pytest.raises(InvalidInput):
        MemoryCache(max_entries=0)


# ----------------------------------------------------------------------------- redis only


def test_redis_server_down_makes_misses_not_errors(own_redis: RedisServer) -> None:
    cache = RedisCache(own_redis.url, retry_interval=0)
    cache.put(KEY, HITS, personalized=False)
    assert cache.get(KEY) == HITS
    own_redis.stop()
    assert cache.get(KEY) is None
    cache.put(KEY, HITS, personalized=False)  # skipped, not raised
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.puts, stats.errors) == (1, 1, 1, 2)
    with pytest.raises(BackendUnavailable, match=re.escape(f"127.0.0.1:{own_redis.port}/0")):
        cache.ping()
    own_redis.start()  # same port, empty: the cache recovers by itself
    assert cache.get(KEY) is None
    cache.put(KEY, HITS, personalized=False)
    assert cache.get(KEY) == HITS
    cache.ping()
    cache.close()


def test_redis_that_stops_answering_costs_one_timeout(own_redis: RedisServer) -> None:
    cache = RedisCache(own_redis.url, socket_timeout=0.2, retry_interval=30)
    cache.put(KEY, HITS, personalized=False)
    own_redis.pause()
    start = time.perf_counter()
    assert cache.get(KEY) is None  # timed out: a miss
    first = time.perf_counter() - start
    start = time.perf_counter()
    assert cache.get(KEY) is None  # left alone for retry_interval: no wait at all
    cache.put(KEY, HITS, personalized=False)
    second = time.perf_counter() - start
    assert 0.15 < first < 1.5 and second < 0.05
    assert cache.stats().errors == 3
    own_redis.resume()
    cache.close()


def test_redis_unreachable_url_fails_ping_with_the_address() -> None:
    cache = open_cache("redis://127.0.0.1:1/0")
    assert cache is not None
    assert cache.get(KEY) is None
    with pytest.raises(BackendUnavailable, match=re.escape("redis://127.0.0.1:1/0")) as raised:
        cache.ping()
    assert raised.value.code == "backend_unavailable"
    cache.close()


def test_redis_password_stays_out_of_messages(redis_server: RedisServer) -> None:
    cache = RedisCache(f"redis://bob:s3cret@127.0.0.1:{redis_server.port}/0")
    with pytest.raises(BackendUnavailable) as raised:
        cache.ping()  # the server has no user bob: AUTH fails
    assert "s3cret" not in str(raised.value) and cache.where.endswith(f":{redis_server.port}/0")
    cache.close()


def test_redis_unreadable_value_is_a_miss(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url, prefix=f"test:{uuid.uuid4().hex}:")
    with redis.Redis.from_url(redis_server.url) as client:
        client.set(cache.redis_key(KEY), b"\x80\x04 not json, and never unpickled")
    assert cache.get(KEY) is None
    assert cache.stats().errors == 1
    cache.clear()
    cache.close()


def test_redis_clear_leaves_other_keys(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url, prefix="test:clear[1]*:")
    with redis.Redis.from_url(redis_server.url) as client:
        client.set("someone-else", b"1")
        client.set("test:clear1:x", b"1")  # would match the prefix if the glob were unescaped
        for seq in range(2500):
            cache.put(replace(KEY, seq=seq), [], personalized=False)
        cache.clear()
        assert client.keys("test:clear*") == [b"test:clear1:x"]
        assert client.get("someone-else") == b"1"
        client.delete("someone-else", "test:clear1:x")
    cache.close()


def test_redis_entries_carry_their_ttl(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url, prefix=f"test:{uuid.uuid4().hex}:")
    personal = replace(KEY, user="alice")
    cache.put(personal, HITS, personalized=True)
    cache.put(KEY, HITS, personalized=False)
    with redis.Redis.from_url(redis_server.url) as client:
        assert 299_000 < client.pttl(cache.redis_key(personal)) <= 300_000
        assert 3_599_000 < client.pttl(cache.redis_key(KEY)) <= 3_600_000
    cache.clear()
    cache.close()


def test_redis_from_a_client_leaves_it_open(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        cache = open_cache(RedisCache(client, prefix=f"test:{uuid.uuid4().hex}:"))
        assert cache is not None
        cache.put(KEY, HITS, personalized=False)
        assert cache.get(KEY) == HITS
        cache.clear()
        cache.close()
        assert client.ping()


def test_redis_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(MissingDependency, match=r"loomdb\[redis\]"):
        RedisCache("redis://127.0.0.1:1/0")


def test_redis_server_starts_quickly(own_redis: RedisServer) -> None:
    assert own_redis.startup_seconds < 5


# ----------------------------------------------------------------------------- open_cache


def test_open_cache_by_name() -> None:
    memory = open_cache("memory", max_entries=5, personalized_ttl=1)
    assert isinstance(memory, MemoryCache) and memory.max_entries == 5
    assert memory.personalized_ttl == 1 and memory.general_ttl == 3600
    assert open_cache(memory) is memory
    assert open_cache(None) is None
    remote = open_cache("redis://127.0.0.1:1/2", socket_timeout=0.1)
    assert isinstance(remote, RedisCache) and remote.where == "redis://127.0.0.1:1/2"
    remote.close()
    with pytest.raises(InvalidInput, match="unknown cache"):
        open_cache("memcached://x")


def test_redis_cache_is_exported_from_the_cache_module() -> None:
    import loomdb.cache as cache

    assert cache.RedisCache is RedisCache


# ----------------------------------------------------------------------------- codec

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
FLOATS = st.floats(allow_nan=False)
NODES = st.builds(Node, id=st.text(min_size=1), kind=st.text(), text=st.none() | st.text(),
                  props=st.dictionaries(st.text(), JSON, max_size=4),
                  confidence=st.none() | FLOATS, created=st.none() | FLOATS)
HIT_LISTS = st.lists(st.builds(
    Hit, node=NODES, score=FLOATS, scores=st.dictionaries(st.text(), FLOATS, max_size=3),
    citation=st.none() | st.builds(Citation, document=st.text(),
                                   page=st.none() | st.integers(0, 10_000))), max_size=5)


@settings(max_examples=200, deadline=None)
@given(HIT_LISTS)
def test_codec_round_trips_any_hits(hits: list[Hit]) -> None:
    assert decode_hits(encode_hits(hits)) == hits


@pytest.mark.parametrize("data", [b"", b"{}", b"[1]", b'[{"node": {}}]', b"\xff\xfe",
                                  b'[{"node": {"id": "x", "bogus": 1}, "score": 1, "scores": {},'
                                  b' "citation": null}]'])
def test_codec_refuses_what_it_did_not_write(data: bytes) -> None:
    with pytest.raises(MalformedValue):
        decode_hits(data)
