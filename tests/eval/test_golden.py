"""Reading golden sets: every accepted form, and a clear error naming the line for bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loomdb.errors import InvalidFilter, InvalidInput
from loomdb.eval import GoldDocument, parse_golden, read_golden
from loomdb.model import Citation


def lines(*items: object) -> list[str]:
    return [item if isinstance(item, str) else json.dumps(item) for item in items]


def test_every_form_is_read(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines(
        {"query": "who discovered radium", "gold_ids": ["c1", "c2"]},
        "",
        {"query": "radium half-life", "gold_ids": {"c3": 2, "c4": 1, "c5": 0}, "id": "q2",
         "answers": ["1,600 years"]},
        {"query": "Solvay", "gold": [{"document": "solvay.pdf", "page": 2},
                                     {"document": "nobel", "grade": 3}],
         "where": {"props.lang": "en"}, "kind": "*"},
    )).encode())
    first, graded, documents = read_golden(path)
    assert (first.line, first.query, dict(first.gold_ids)) == (1, "who discovered radium",
                                                               {"c1": 1.0, "c2": 1.0})
    assert first.kind is None and first.where is None and first.relevant == 2
    assert graded.line == 3 and graded.id == "q2" and graded.relevant == 2
    assert sorted(graded.grades) == [0.0, 1.0, 2.0]
    assert documents.gold_documents == (GoldDocument("solvay.pdf", 2), GoldDocument("nobel",
                                                                                    None, 3.0))
    assert documents.where == {"props.lang": "en"} and documents.kind == "*"


def test_a_gold_document_matches_its_citations() -> None:
    page = GoldDocument("a.pdf", 2)
    assert page.cited_by(Citation("a.pdf", 2, 0, 10))
    assert not page.cited_by(Citation("a.pdf", 3)) and not page.cited_by(None)
    assert GoldDocument("a.pdf").cited_by(Citation("a.pdf", 7))
    assert not GoldDocument("a.pdf").cited_by(Citation("b.pdf", 7))


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"gold_ids": ["a"]}', "query must be a non-empty string"),
    ('{"query": "  ", "gold_ids": ["a"]}', "query must be a non-empty string"),
    ('{"query": 7, "gold_ids": ["a"]}', "query must be a non-empty string"),
    ('{"query": "q"}', "exactly one of gold_ids"),
    ('{"query": "q", "gold_ids": ["a"], "gold": [{"document": "d"}]}', "exactly one of"),
    ('{"query": "q", "gold_ids": "a"}', "gold_ids must be a list"),
    ('{"query": "q", "gold_ids": []}', "no gold answer has a grade above 0"),
    ('{"query": "q", "gold_ids": {"a": 0}}', "no gold answer has a grade above 0"),
    ('{"query": "q", "gold_ids": {"a": -1}}', "finite number >= 0"),
    ('{"query": "q", "gold_ids": {"a": true}}', "finite number >= 0"),
    ('{"query": "q", "gold_ids": {"a": "high"}}', "finite number >= 0"),
    ('{"query": "q", "gold_ids": {"a": NaN}}', "not valid JSON"),
    ('{"query": "q", "gold_ids": {"a": 1e999}}', "finite number >= 0"),
    ('{"query": "q", "gold_ids": [7]}', "a gold id must be a non-empty string"),
    ('{"query": "q", "gold_ids": ["a\\u0000b"]}', "without NUL"),
    ('{"query": "q", "gold_ids": ["\\ud800"]}', "lone surrogate"),
    ('{"query": "q", "gold": []}', "gold must be a list of 1"),
    ('{"query": "q", "gold": ["d.pdf"]}', "must be an object with a document"),
    ('{"query": "q", "gold": [{"page": 2}]}', "a gold document must be a non-empty string"),
    ('{"query": "q", "gold": [{"document": "d", "page": "2"}]}', "page must be an integer"),
    ('{"query": "q", "gold": [{"document": "d", "page": true}]}', "page must be an integer"),
    ('{"query": "q", "gold_ids": ["a"], "where": "kind = chunk"}', "where must be a filter"),
    ('{"query": "q", "gold_ids": ["a"], "kind": 3}', "kind must be a non-empty string"),
    ('{"query": "q", "gold_ids": ["a"], "id": ""}', "id must be a non-empty string"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_a_bad_line_names_its_number(line: str, message: str) -> None:
    good = '{"query": "fine", "gold_ids": ["x"]}'
    with pytest.raises(InvalidInput, match=f"^line 3: .*{message}") as caught:
        parse_golden([good, "", line, good])
    assert caught.value.code == "invalid_input"


def test_a_bad_filter_is_an_invalid_filter_naming_the_line() -> None:
    hostile = {"query": "q", "gold_ids": ["a"], "where": {"text; DROP TABLE nodes": 1}}
    with pytest.raises(InvalidFilter, match=r"^line 1: "):
        parse_golden(lines(hostile))


def test_undecodable_bytes_and_oversized_lines_name_their_line() -> None:
    good = b'{"query": "fine", "gold_ids": ["x"]}\n'
    with pytest.raises(InvalidInput, match=r"^line 2: not UTF-8"):
        parse_golden([good, b'{"query": "caf\xe9", "gold_ids": ["x"]}\n'])
    with pytest.raises(InvalidInput, match=r"^line 1: longer than"):
        parse_golden([b'{"query": "' + b"a" * (1 << 20) + b'", "gold_ids": ["x"]}'])
    with pytest.raises(InvalidInput, match="at most 10,000 characters"):
        parse_golden(lines({"query": "a" * 10_001, "gold_ids": ["x"]}))


def test_an_empty_golden_set_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n  \n")
    with pytest.raises(InvalidInput, match="no queries"):
        read_golden(path)


def test_hostile_text_stays_data() -> None:
    hostile = ['" OR 1=1; DROP TABLE nodes; --', "NEAR(radium curie) AND title:* ^ {}",
               "<script>alert(1)</script>", "$where: function() { return true }"]
    read = parse_golden(lines(*({"query": q, "gold_ids": [q]} for q in hostile)))
    assert [g.query for g in read] == hostile
    assert [list(g.gold_ids) for g in read] == [[q] for q in hostile]
