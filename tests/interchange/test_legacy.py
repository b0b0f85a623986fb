"""The legacy JSON layout: exact round trips, atomic imports, clear errors on bad files.

``db`` is the shared fixture: a memory store and a file store in tmp_path.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loomdb
from loomdb import (
    Conflict,
    Database,
    DimensionMismatch,
    InvalidInput,
    LoomError,
    ModelMismatch,
)
from loomdb.interchange import export_legacy, import_legacy, legacy

FILES = ("concepts.json", "associations.json", "embeddings.json")
ASSOC_TYPES = ("semantic", "causal", "temporal", "hierarchical", "compositional")


def write_legacy(directory: Path, concepts: Any, associations: Any = None,
                 embeddings: Any = None) -> Path:
    """Write a legacy directory the way the legacy system did (json.dump, indent=2)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in zip(FILES, (concepts, associations, embeddings), strict=True):
        if document is not None:
            with (directory / name).open("w") as file:
                json.dump(document, file, indent=2)
    return directory


def read_legacy(directory: Path) -> list[Any]:
    return [json.loads((directory / name).read_text()) for name in FILES]


def sample() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A small legacy directory as the legacy system wrote it, with its usual oddities."""
    concepts = {
        "c1": {"id": "c1", "content": "Paris is the capital of France",
               "created": 1700000000.123, "access_count": 3, "strength": 1.0404,
               "last_accessed": 1700000100.5, "source": "wiki", "category": None,
               "confidence": 1.0},
        "a:b": {"id": "a:b", "content": "Ünïcödé ✓", "created": 1700000000,
                "access_count": 0, "strength": 1, "last_accessed": "2024-01-02T03:04:05Z",
                "source": None, "category": "geo", "confidence": 0.9, "tags": ["x"]},
        "c3": {"id": "c3-old", "content": "no timestamps", "created": None,
               "access_count": 0, "strength": -0.0, "last_accessed": None},
    }
    associations = {
        "c1:a:b": {"source_id": "c1", "target_id": "a:b", "assoc_type": "semantic",
                   "weight": 1.1, "confidence": 1.0, "created": 1700000000.5,
                   "last_used": 1700000000.5},
        "a:b:c1": {"source_id": "a:b", "target_id": "c1", "assoc_type": 3, "weight": 2,
                   "confidence": 0.5, "created": "2024-01-01", "last_used": None},
        "renamed": {"source_id": "c3", "target_id": "c1", "assoc_type": "causal",
                    "weight": 0.5, "confidence": 1.0, "created": 1.0},
    }
    embeddings = {
        "provider": "sentence-transformers/all-MiniLM-L6-v2",
        "embeddings": {"c1": [0.1, 0.2, 0.30000000000000004, 0],
                       "a:b": [1e-300, -2.5, 3.0, -0.0]},
        "vocabulary": {},
    }
    return concepts, associations, embeddings


# -- round trips ----------------------------------------------------------------------------


def test_hand_written_directory_round_trips_byte_for_byte(db: Database, tmp_path: Path) -> None:
    source = write_legacy(tmp_path / "in", *sample())
    assert import_legacy(db, source) == {"concepts": 3, "associations": 3, "embeddings": 2}
    counts = export_legacy(db, tmp_path / "out")
    assert counts == {"concepts": 3, "associations": 3, "embeddings": 2, "skipped_edges": 0}
    for name in FILES:
        assert (tmp_path / "out" / name).read_text() == (source / name).read_text(), name
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES)


def test_mapping_to_nodes_edges_and_vectors(db: Database, tmp_path: Path) -> None:
    import_legacy(db, write_legacy(tmp_path / "in", *sample()))
    paris = db.get_node("c1")
    assert (paris.kind, paris.text, paris.created, paris.access_count) == (
        "concept", "Paris is the capital of France", 1700000000.123, 3)
    assert (paris.source, paris.confidence) == ("wiki", 1.0)
    assert paris.props == {"_legacy": {"vector_ints": [3]}}  # its embedding's JSON integer 0
    odd = db.get_node("a:b")
    assert odd.created == 1700000000.0
    assert odd.last_accessed == 1704164645.0  # the ISO string, as Unix seconds (UTC)
    assert odd.props["_legacy"]["raw"] == {"created": 1700000000, "strength": 1,
                                           "last_accessed": "2024-01-02T03:04:05Z",
                                           "tags": ["x"]}
    [edge] = db.get_edges(src="a:b", dst="c1")
    assert (edge.type, edge.weight) == ("hierarchical", 2.0)  # the Rust number 3
    [renamed] = db.get_edges(src="c3", dst="c1")
    assert renamed.props["_legacy"]["key"] == "renamed"
    space = db.space("text")
    assert (space.dim, space.model, space.metric, space.storage) == (
        4, "sentence-transformers/all-MiniLM-L6-v2", "cosine", "float64")
    assert db.get_vector("c1").tolist() == [0.1, 0.2, 0.30000000000000004, 0.0]


def test_reopened_store_exports_the_same(tmp_path: Path) -> None:
    source = write_legacy(tmp_path / "in", *sample())
    with loomdb.open(tmp_path / "store") as db:
        import_legacy(db, source)
    with loomdb.open(tmp_path / "store") as db:
        export_legacy(db, tmp_path / "out")
    with loomdb.open(tmp_path / "store", read_only=True) as db:
        export_legacy(db, tmp_path / "out-read-only")
    assert read_legacy(tmp_path / "out") == read_legacy(source)
    assert read_legacy(tmp_path / "out-read-only") == read_legacy(source)


def test_changes_made_in_loomdb_win_over_the_legacy_originals(
    db: Database, tmp_path: Path
) -> None:
    import_legacy(db, write_legacy(tmp_path / "in", *sample()))
    db.update_node("a:b", last_accessed=1800000000.5, access_count=7)
    [edge] = db.get_edges(src="a:b", dst="c1")
    db.upsert_edges([replace(edge, weight=4.5)])  # props (with _legacy) kept
    export_legacy(db, tmp_path / "out")
    concepts, associations, _ = read_legacy(tmp_path / "out")
    assert concepts["a:b"]["last_accessed"] == 1800000000.5
    assert concepts["a:b"]["access_count"] == 7
    assert concepts["a:b"]["created"] == 1700000000  # untouched: still the original int
    assert associations["a:b:c1"]["weight"] == 4.5
    assert associations["a:b:c1"]["assoc_type"] == 3


def test_native_nodes_and_edges_survive_legacy_and_back(tmp_path: Path) -> None:
    with loomdb.open(tmp_path / "a") as db:
        db.add_node("doc", kind="document", text="a report", props={"pages": 3})
        db.add_node("x", text="plain")
        db.add_edge("doc", "x", "mentions", weight=0.5, props={"span": [1, 4]})
        db.add_edge("doc", "x", "cites", weight=2.0)  # same pair: the heaviest is written
        counts = export_legacy(db, tmp_path / "legacy")
    assert counts["skipped_edges"] == 1 and counts["associations"] == 1
    concepts, associations, embeddings = read_legacy(tmp_path / "legacy")
    assert concepts["doc"]["_loomdb"] == {"kind": "document", "props": {"pages": 3}}
    assert "_loomdb" not in concepts["x"]
    assert associations["doc:x"]["assoc_type"] == "cites"
    assert embeddings == {"provider": None, "embeddings": {}}
    with loomdb.open(tmp_path / "b") as db:
        import_legacy(db, tmp_path / "legacy")
        doc = db.get_node("doc")
        assert (doc.kind, doc.text, doc.props) == ("document", "a report", {"pages": 3})
        export_legacy(db, tmp_path / "again")
    assert read_legacy(tmp_path / "again") == read_legacy(tmp_path / "legacy")


def test_space_with_float32_storage_reports_rounding(db: Database, tmp_path: Path) -> None:
    concepts, associations, embeddings = sample()
    db.create_space("text", 4, model=embeddings["provider"])
    counts = import_legacy(db, write_legacy(tmp_path / "in", concepts, associations, embeddings))
    assert counts["rounded_embeddings"] == 2
    float32_exact = {"provider": embeddings["provider"], "embeddings": {"z": [0.5, 1, 2, 0.25]}}
    source = write_legacy(tmp_path / "exact", {"z": {"content": "z"}}, None, float32_exact)
    assert import_legacy(db, source) == {"concepts": 1, "associations": 0, "embeddings": 1}


def test_tenants_import_and_export_apart(db: Database, tmp_path: Path) -> None:
    source = write_legacy(tmp_path / "in", *sample())
    import_legacy(db.tenant("legacy"), source)
    assert db.count() == 0
    assert export_legacy(db, tmp_path / "default")["concepts"] == 0
    export_legacy(db.tenant("legacy"), tmp_path / "out")
    assert read_legacy(tmp_path / "out") == read_legacy(source)


def test_integers_inside_embeddings_stay_integers(db: Database, tmp_path: Path) -> None:
    embeddings = {"provider": "p", "embeddings": {"a": [0, 1.5, -3, 2.0]}}
    source = write_legacy(tmp_path / "in", {"a": {"id": "a", "content": "a"}}, {}, embeddings)
    import_legacy(db, source)
    export_legacy(db, tmp_path / "out")
    assert read_legacy(tmp_path / "out")[2]["embeddings"]["a"] == [0, 1.5, -3, 2.0]
    assert [type(x) for x in read_legacy(tmp_path / "out")[2]["embeddings"]["a"]] == [
        int, float, int, float]


# -- the round-trip property ----------------------------------------------------------------

KNOWN_KEYS = {"id", "content", "created", "access_count", "strength", "last_accessed",
              "source", "category", "confidence", "source_id", "target_id", "assoc_type",
              "weight", "last_used"}
# No lone surrogates (not Unicode) and no NUL: ids cannot hold it, nor can values kept in props
# (a store rule; the import refuses both with a clear error, tested below).
valid_chars = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
ids = st.one_of(
    st.sampled_from(["a", "b", "a:b", ":", "b:", "x:y:z", "∂", "Ünï:cödé"]),
    st.text(valid_chars, min_size=1, max_size=12),
)
finite = st.floats(allow_nan=False, allow_infinity=False)
# The store also refuses the six characters \u0000 in props (it looks for NUL in its JSON text).
props_text = st.text(valid_chars, max_size=8).filter(lambda t: "\\u0000" not in t)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), finite, props_text)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        props_text, inner, max_size=3), max_leaves=6)
timestamps = st.one_of(
    st.none(), finite, st.integers(), st.integers(-2**40, 2**40),
    st.datetimes().map(lambda d: d.isoformat()), props_text,
)
numbers = st.one_of(st.none(), finite, st.integers(), st.booleans())
texts = st.one_of(st.none(), st.text(max_size=20), st.integers())
extras = st.dictionaries(props_text.filter(lambda k: k not in KNOWN_KEYS | {""}),
                         json_values, max_size=2)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


concept_fields = optional(content=texts, created=timestamps, access_count=numbers,
                          strength=numbers, last_accessed=timestamps, source=texts,
                          category=texts, confidence=numbers)
association_fields = optional(weight=numbers, confidence=numbers, created=timestamps,
                              last_used=timestamps)


@st.composite
def legacy_directories(draw: st.DrawFn) -> list[Any]:
    keys = draw(st.lists(ids, min_size=1, max_size=6, unique=True))
    concepts = {}
    for key in keys:
        record = {"id": draw(st.sampled_from([key, key, "other", None]))}
        if record["id"] is None:
            del record["id"]
        concepts[key] = {**record, **draw(concept_fields), **draw(extras)}
    associations: dict[str, Any] = {}
    for src, dst in draw(st.lists(st.tuples(st.sampled_from(keys), st.sampled_from(keys)),
                                  max_size=6, unique=True)):
        record = {"source_id": src, "target_id": dst,
                  "assoc_type": draw(st.sampled_from(ASSOC_TYPES) | st.integers(0, 6))}
        key = draw(st.sampled_from([f"{src}:{dst}", f"{src}:{dst}", f"{src}->{dst}"]))
        associations.setdefault(key, {**record, **draw(association_fields), **draw(extras)})
    dim = draw(st.sampled_from([4, 4, 4, 384]))
    # Magnitudes are bounded: the index casts to float32 and overflows past ~1e19 (core bug).
    values = st.one_of(st.floats(-1e6, 1e6), st.integers(-2**20, 2**20))
    vectors = {key: draw(st.lists(values, min_size=dim, max_size=dim))
               for key in draw(st.lists(st.sampled_from(keys), unique=True))}
    embeddings = {"provider": draw(props_text), "embeddings": vectors,
                  **draw(st.sampled_from([{}, {"vocabulary": {}}])),
                  **draw(st.dictionaries(st.sampled_from(["vocabulary", "version"]),
                                         json_values, max_size=1))}
    return [concepts, associations, embeddings]


_examples = itertools.count()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(documents=legacy_directories())
def test_any_legacy_directory_round_trips_exactly(tmp_path: Path, documents: list[Any]) -> None:
    work = tmp_path / str(next(_examples))
    source = write_legacy(work / "in", *documents)
    with loomdb.open(work / "store", durability="off") as db:
        import_legacy(db, source)
        counts = export_legacy(db, work / "out")
    exported = read_legacy(work / "out")
    assert exported == read_legacy(source)
    assert same_types(exported, read_legacy(source))
    assert counts["concepts"] == len(documents[0])
    assert counts["skipped_edges"] == 0


def same_types(left: Any, right: Any) -> bool:
    """Equal values of equal types all the way down (1 == 1.0 == True would hide a change),
    and -0.0 keeps its sign."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same_types(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same_types, left, right))
    if isinstance(left, float):
        return left == right and math.copysign(1.0, left) == math.copysign(1.0, right)
    return bool(left == right)


# -- malformed input ------------------------------------------------------------------------


def good() -> list[Any]:
    return [dict(d) for d in sample()]


def with_change(change: Any) -> list[Any]:
    documents = good()
    change(documents)
    return documents


MALFORMED: dict[str, tuple[Any, type[LoomError], str]] = {
    "concepts not an object": (with_change(lambda d: d.__setitem__(0, [1, 2])),
                               InvalidInput, "concepts.json"),
    "concept not an object": (with_change(lambda d: d[0].__setitem__("bad", "text")),
                              InvalidInput, "'bad'"),
    "empty concept id": (with_change(lambda d: d[0].__setitem__("", {"content": "x"})),
                         InvalidInput, "concepts.json"),
    "reserved id": (with_change(lambda d: d[0].__setitem__(legacy.records.HEADER_ID, {})),
                    InvalidInput, "reserved"),
    "unknown concept": (with_change(lambda d: d[1]["c1:a:b"].__setitem__("target_id", "nope")),
                        InvalidInput, "'c1:a:b'"),
    "missing assoc_type": (with_change(lambda d: d[1]["renamed"].pop("assoc_type")),
                           InvalidInput, "'renamed'"),
    "source_id not a string": (with_change(lambda d: d[1]["renamed"].__setitem__(
        "source_id", 5)), InvalidInput, "associations.json"),
    "duplicate association": (with_change(lambda d: d[1].__setitem__("copy", d[1]["c1:a:b"])),
                              InvalidInput, "'copy'"),
    "wrong dimension": (with_change(lambda d: d[2]["embeddings"].__setitem__("c3", [1.0])),
                        DimensionMismatch, "'c3'"),
    "embedding of no concept": (with_change(lambda d: d[2]["embeddings"].__setitem__(
        "ghost", [1.0, 2.0, 3.0, 4.0])), InvalidInput, "'ghost'"),
    "boolean in embedding": (with_change(lambda d: d[2]["embeddings"].__setitem__(
        "c3", [True, 2.0, 3.0, 4.0])), InvalidInput, "'c3'"),
    "text in embedding": (with_change(lambda d: d[2]["embeddings"].__setitem__(
        "c3", ["1", 2.0, 3.0, 4.0])), InvalidInput, "'c3'"),
    "embeddings not an object": (with_change(lambda d: d[2].__setitem__("embeddings", [])),
                                 InvalidInput, "embeddings.json"),
    "NUL in a kept value": (with_change(lambda d: d[0]["c3"].__setitem__("note", "a\x00b")),
                            InvalidInput, "'c3'"),
    "lone surrogate": (with_change(lambda d: d[0]["c3"].__setitem__("content", "\ud800")),
                       InvalidInput, "'c3'"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_directory_is_refused_and_changes_nothing(
    db: Database, tmp_path: Path, case: str
) -> None:
    documents, error, mentioned = MALFORMED[case]
    db.add_node("existing", text="was here before")
    before = (db.count(), db.stats()["edges"], db.spaces(), db.seq)
    with pytest.raises(error) as caught:
        import_legacy(db, write_legacy(tmp_path / "in", *documents))
    assert mentioned in str(caught.value)
    assert (db.count(), db.stats()["edges"], db.spaces(), db.seq) == before


@pytest.mark.parametrize(("content", "mentioned"), [
    ("{not json", "concepts.json is not valid JSON"),
    ('{"c": {"strength": NaN}}', "NaN"),
    ('{"c": {"strength": Infinity}}', "Infinity"),
    (b'{"c": {"content": "\xff"}}', "concepts.json is not valid JSON"),
])
def test_unreadable_json_is_refused(
    db: Database, tmp_path: Path, content: str | bytes, mentioned: str
) -> None:
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "concepts.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InvalidInput, match=mentioned):
        import_legacy(db, tmp_path / "in")
    assert db.count() == 0


def test_number_beyond_float_range_is_refused(db: Database, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "concepts.json").write_text('{"c1": {"created": 1e400}}')
    with pytest.raises(InvalidInput, match=r"concepts.json entry 'c1': inf is not a finite"):
        import_legacy(db, tmp_path / "in")
    assert db.count() == 0


def test_directory_without_concepts_is_refused(db: Database, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a legacy directory"):
        import_legacy(db, tmp_path)


def test_store_disagreements_roll_everything_back(db: Database, tmp_path: Path) -> None:
    source = write_legacy(tmp_path / "in", *sample())
    import_legacy(db, source)
    seq = db.seq
    with pytest.raises(Conflict):
        import_legacy(db, source)
    assert db.seq == seq
    _, _, embeddings = sample()
    other = write_legacy(tmp_path / "other", {"n": {"content": "n"}}, None,
                         {**embeddings, "provider": "another-model",
                          "embeddings": {"n": [1.0, 2.0, 3.0, 4.0]}})
    with pytest.raises(ModelMismatch):
        import_legacy(db, other)
    wider = write_legacy(tmp_path / "wider", {"w": {"content": "w"}}, None,
                         {**embeddings, "embeddings": {"w": [1.0] * 5}})
    with pytest.raises(DimensionMismatch):
        import_legacy(db, wider)
    assert db.seq == seq and not db.has_node("n") and not db.has_node("w")


def test_unwritable_target_is_a_loom_error(db: Database, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(LoomError, match="cannot write the legacy files"):
        export_legacy(db, tmp_path / "a-file")


def test_public_names() -> None:
    import loomdb.interchange

    assert loomdb.interchange.__all__ == ["export_legacy", "import_legacy"]
